// End to end: a real pod under QEMU TCG (tee none) whose container gets its secret from the
// KBS the daemon embeds. Real dbus-daemon, real confpodd, real confpodctl, the real guest
// (init + agent), the busybox hello image that examples/hello/build-image makes.
//
//   - the hello pod prints the SHA-256 of its secret and a greeting, and exits 0;
//   - an image archive changed after its digest was pinned is refused by the agent;
//   - init-data the host altered is refused by the agent (the test plays the hostile host on
//     the channel), and the KBS releases nothing against it;
//   - a resource the spec does not list is refused by the KBS.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "attest/kbs/kbs_test_util.h"
#include "daemon/kbs/test_client.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "guest/protocol/messages.h"
#include "tests/support/bus.h"
#include "tests/support/process.h"
#include "vmm/channel.h"
#include "vmm/qemu_argv.h"
#include "vmm/supervisor.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;
using testing::ProcessResult;

const std::string kResource = "default/hello/greeting";
const std::string kUnlisted = "default/hello/other";
const std::string kSecret = "the class-3 greeting key\n";

std::string hello_spec(const std::string& name, const testing::OciImage& image) {
  return "name = \"" + name + "\"\ntee = \"none\"\n[vm]\nvcpus = 1\nmemory_mib = 256\n" +
         "[[containers]]\nname = \"hello\"\nimage = \"oci-archive:" + image.archive + "@" +
         image.digest + "\"\nenv = { SECRET_FILE = \"/run/secrets/greeting\" }\n" +
         "[[secrets]]\nresource = \"" + kResource + "\"\npath = \"/run/secrets/greeting\"\n";
}

class HelloPodTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bus_ = new testing::PrivateBus();
    port_ = testing::free_loopback_port();
    testing::DaemonOptions options;
    // As shipped: tee-none pods on KVM where a test guest boots under it, TCG otherwise.
    options.accel = "auto";
    options.kbs_toml =
        "[kbs]\nenabled = true\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n";
    daemon_ = new testing::DaemonProcess(*bus_, options);
    image_dir_ = new testing::TempDir();
    image_ = new testing::OciImage(testing::hello_image(image_dir_->path() + "/hello.tar"));
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete bus_;
    delete image_;
    delete image_dir_;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "confpodd log:\n" << daemon_->log();
  }

  static ProcessResult ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CONFPODCTL_PATH, "--address", bus_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_process(argv);
  }
  static nlohmann::json inspect(const std::string& name) {
    auto r = ctl({"inspect", name});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json() : j;
  }
  static std::string state(const std::string& name) {
    auto j = inspect(name);
    return j.is_object() && j.contains("State") ? j["State"].get<std::string>() : "";
  }
  // Runs the spec with confpodctl run and waits (TCG boot + unpack) until the pod ended.
  static nlohmann::json run_to_end(const std::string& name, const std::string& spec) {
    testing::TempDir dir;
    std::string path = dir.write(name + ".toml", spec);
    auto run = ctl({"run", path});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    bool ended = testing::wait_until(
        [&] {
          std::string s = state(name);
          return s == "exited" || s == "failed";
        },
        180s);
    EXPECT_TRUE(ended) << "pod " << name << " still " << state(name) << "\n"
                       << ctl({"logs", name}).out;
    return inspect(name);
  }
  static void put_secret(const std::string& path, const std::string& value) {
    testing::TempDir dir;
    auto put = ctl({"secret", "put", path, dir.write("secret", value)});
    ASSERT_EQ(put.exit_code, 0) << put.err;
  }

  static testing::PrivateBus* bus_;
  static testing::DaemonProcess* daemon_;
  static testing::TempDir* image_dir_;
  static testing::OciImage* image_;
  static int port_;
};
testing::PrivateBus* HelloPodTest::bus_ = nullptr;
testing::DaemonProcess* HelloPodTest::daemon_ = nullptr;
testing::TempDir* HelloPodTest::image_dir_ = nullptr;
testing::OciImage* HelloPodTest::image_ = nullptr;
int HelloPodTest::port_ = 0;

TEST_F(HelloPodTest, ContainerGetsItsSecretFromTheKbsAndExitsZero) {
  put_secret(kResource, kSecret);
  nlohmann::json pod = run_to_end("hello", hello_spec("hello", *image_));
  std::string logs = ctl({"logs", "hello"}).out;
  EXPECT_EQ(pod.value("State", ""), "exited") << logs;
  EXPECT_EQ(pod.value("ExitStatus", -2), 0) << pod.dump() << "\n" << logs;
  const std::string hash = to_hex(crypto::sha256(as_bytes(kSecret)));
  EXPECT_NE(logs.find("secret sha256: " + hash), std::string::npos) << logs;
  EXPECT_NE(logs.find("hello from confpod pod hello"), std::string::npos) << logs;
  EXPECT_NE(logs.find("init-data-verified"), std::string::npos) << logs;
  // The secret itself went only into the guest: not the daemon's log, not the pod's.
  EXPECT_EQ(daemon_->log().find(kSecret), std::string::npos);
  EXPECT_EQ(logs.find(kSecret), std::string::npos);
  EXPECT_EQ(ctl({"rm", "hello"}).exit_code, 0);
  // accel = "auto": the daemon said which accelerator and why, and it is TCG without /dev/kvm.
  const std::string log = daemon_->log();
  const std::size_t said = log.find("tee-none pods use ");
  ASSERT_NE(said, std::string::npos) << log;
  if (::access("/dev/kvm", F_OK) != 0) {
    EXPECT_EQ(log.compare(said, 21, "tee-none pods use tcg"), 0) << log.substr(said, 200);
  }
}

TEST_F(HelloPodTest, ImageChangedAfterItsDigestWasPinnedIsRefusedByTheAgent) {
  put_secret(kResource, kSecret);
  // Same pinned digest, one byte of the archive changed (in the middle: the layer blob is
  // nearly all of it).
  std::string tampered = image_dir_->path() + "/tampered.tar";
  std::filesystem::copy_file(image_->archive, tampered,
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::fstream f(tampered, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    auto middle = static_cast<std::streamoff>(f.tellg()) / 2;
    f.seekg(middle);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(middle);
    f.write(&c, 1);
  }
  testing::OciImage image{tampered, image_->digest};
  nlohmann::json pod = run_to_end("tampered", hello_spec("tampered", image));
  std::string logs = ctl({"logs", "tampered"}).out;
  EXPECT_EQ(pod.value("State", ""), "failed") << logs;
  EXPECT_EQ(pod.value("ExitStatus", -2), 125) << logs;
  EXPECT_NE(logs.find("agent.image"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("hello from confpod"), std::string::npos) << logs;
  EXPECT_EQ(ctl({"rm", "tampered"}).exit_code, 0);
}

// A container that fails makes the pod fail (the agent's status is the pod's ExitStatus), and
// restart = "on-failure" starts it again.
TEST_F(HelloPodTest, FailingContainerFailsThePodAndOnFailureRestartsIt) {
  const std::string spec =
      "name = \"flaky\"\ntee = \"none\"\nrestart = \"on-failure\"\n[vm]\nvcpus = 1\n"
      "memory_mib = 256\n[[containers]]\nname = \"flaky\"\nimage = \"oci-archive:" +
      image_->archive + "@" + image_->digest +
      "\"\ncommand = [\"/bin/sh\", \"-c\", \"echo attempt; exit 4\"]\n";
  testing::TempDir dir;
  ASSERT_EQ(ctl({"run", dir.write("flaky.toml", spec)}).exit_code, 0);
  const std::string log = daemon_->runtime_dir() + "/pods/flaky/containers.log";
  auto attempts = [&] {
    std::string text = testing::read_text_file(log);
    std::size_t n = 0;
    for (std::size_t at = text.find("attempt\n"); at != std::string::npos;
         at = text.find("attempt\n", at + 1))
      ++n;
    return n;
  };
  EXPECT_TRUE(testing::wait_until([&] { return attempts() >= 2; }, 180s))
      << ctl({"logs", "flaky"}).out;
  // Between runs the pod showed the container's status.
  std::string agent_log = testing::read_text_file(daemon_->runtime_dir() + "/pods/flaky/agent.log");
  EXPECT_NE(agent_log.find("container flaky exited with status 4"), std::string::npos) << agent_log;
  EXPECT_NE(agent_log.find("pod exited with status 4"), std::string::npos) << agent_log;
  EXPECT_NE(daemon_->log().find("restart scheduled"), std::string::npos);
  EXPECT_EQ(ctl({"rm", "--force", "flaky"}).exit_code, 0);
}

// The test is the host: it launches the pod's VM exactly as the daemon would (same init-data
// digest bound at launch) and then hands the agent a different init-data document.
TEST_F(HelloPodTest, InitDataAlteredByTheHostIsRefusedByTheAgentAndTheKbs) {
  put_secret(kResource, kSecret);
  put_secret(kUnlisted, "not for this pod");
  auto spec = spec::parse_pod_spec(hello_spec("altered", *image_));
  ASSERT_TRUE(spec.ok()) << spec.error().describe();
  // The daemon knows the pod (so the KBS has its reference values) but does not run it.
  testing::TempDir dir;
  ASSERT_EQ(ctl({"create", dir.write("altered.toml", hello_spec("altered", *image_))}).exit_code,
            0);

  testing::GuestImage guest = testing::guest_image();
  spec::HostDefaults host;
  host.accel = "tcg";
  host.allow_insecure_tee = true;
  host.kernel = guest.kernel;
  host.initrd = guest.initrd;
  host.kernel_cmdline = "console=ttyS0 quiet panic=-1";
  host.runtime_dir = dir.path();
  host.kbs_guest_url = "http://10.0.2.2:" + std::to_string(port_);
  const std::string genuine = spec::init_data_text(*spec, host);
  std::string altered = genuine;
  // The host slips in an environment variable the tenant never wrote.
  auto at = altered.find("\"SECRET_FILE\"");
  ASSERT_NE(at, std::string::npos) << altered;
  altered.insert(at, "\"LD_PRELOAD\":\"/tmp/x.so\",");
  ASSERT_TRUE(guest::parse_init_data(altered).ok());

  auto vm = spec::vm_config_from_spec(*spec, host, genuine);
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  std::filesystem::create_directories(spec::pod_paths(dir.path(), "altered").vm_dir);
  auto argv = vmm::qemu_argv(*vm);
  ASSERT_TRUE(argv.ok()) << argv.error().describe();
  vmm::SupervisorOptions options;
  options.argv = *argv;
  options.qmp_socket = vm->qmp_socket;
  options.pidfile = vm->pidfile;
  options.log_file = dir.path() + "/qemu.log";
  auto sup = vmm::Supervisor::start(options);
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  auto channel = vmm::GuestChannel::connect(vm->channels[0].socket_path, 10s);
  ASSERT_TRUE(channel.ok()) << channel.error().describe();
  auto hello = channel->read_frame(120s);
  ASSERT_TRUE(hello.ok()) << hello.error().describe() << testing::read_text_file(vm->serial_log);
  guest::HostMessage init;
  init.kind = guest::HostMessage::Kind::kInitData;
  init.init_data = altered;
  ASSERT_TRUE(channel->write_frame(guest::to_payload(init), 10s).ok());

  std::vector<guest::GuestMessage> said;
  while (true) {
    auto frame = channel->read_frame(60s);
    if (!frame.ok()) break;  // the agent powered the VM off: QEMU closed the socket
    auto message = guest::parse_guest_message(*frame);
    ASSERT_TRUE(message.ok()) << message.error().describe();
    said.push_back(*message);
  }
  bool refused = false, started = false;
  std::int64_t pod_exit = -1;
  for (const auto& m : said) {
    if (m.kind == guest::GuestMessage::Kind::kError && m.code == "agent.init_data.mismatch")
      refused = true;
    if (m.kind == guest::GuestMessage::Kind::kStatus && m.state == "container-started")
      started = true;
    if (m.kind == guest::GuestMessage::Kind::kPodExit) pod_exit = m.status;
  }
  EXPECT_TRUE(refused) << testing::read_text_file(vm->serial_log);
  EXPECT_FALSE(started);
  EXPECT_EQ(pod_exit, 125);
  auto exit = sup->wait_exit(30s);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_EQ(exit->cause, vmm::ExitCause::kGuestShutdown) << vmm::to_string(exit->cause);

  // The KBS: the altered document gets nothing, the genuine one gets the listed secret only.
  httplib::Client cli("127.0.0.1", port_);
  auto key = kbs::testing::make_ec_tee_key();
  auto h = kbs_http::testing::sample_handshake(cli, key.jwk, altered, kResource);
  EXPECT_NE(h.attest, 200) << h.error;
  EXPECT_NE(h.resource, 200);
  auto good = kbs_http::testing::sample_handshake(cli, key.jwk, genuine, kResource);
  EXPECT_EQ(good.resource, 200) << good.error;
  auto unlisted = kbs_http::testing::sample_handshake(cli, key.jwk, genuine, kUnlisted);
  EXPECT_EQ(unlisted.attest, 200) << unlisted.error;
  EXPECT_EQ(unlisted.resource, 403) << unlisted.error;
  EXPECT_EQ(kbs_http::testing::error_kind(unlisted.error), "PolicyDeny") << unlisted.error;
  EXPECT_EQ(ctl({"rm", "altered"}).exit_code, 0);
}

}  // namespace
}  // namespace confpod
