// End to end: what a pod's containers may do, in real QEMU guests (TCG here, KVM where it
// runs), through the real daemon (docs/containers.md). The probe image carries
// tests/support/probe.cc, which reports the kernel's own answers from inside a container.
//
// One daemon, two pods booted side by side (their boots overlap), every assertion on what they
// left in their logs:
//   - "confined": an init container runs first; a container as uid 1000 and one as root with
//     the default capabilities and seccomp filter cannot write /, mount, load a module or
//     reboot; one with CAP_SYS_ADMIN added and seccomp = "unconfined" can mount; a container
//     over its memory limit is killed and reported oom (the pod's ExitStatus 137); a
//     cpu-limited one stays under its limit; two containers talk over localhost; a secret
//     reaches a container as an environment variable.
//   - "initfail": an init container fails, so the pod ends with its status and the main
//     container never starts.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>

#include "tests/support/bus.h"
#include "tests/support/bus_calls.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> probe_fields(const std::string& log, const std::string& tag) {
  std::map<std::string, std::string> m;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(tag + ".", 0) != 0) continue;
    auto eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(tag.size() + 1, eq - tag.size() - 1)] = line.substr(eq + 1);
  }
  return m;
}

class ContainersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bus_ = new testing::PrivateBus();
    testing::DaemonOptions options;
    options.accel = "auto";
    options.kbs_toml = "[kbs]\nenabled = true\nlisten = \"127.0.0.1:" +
                       std::to_string(testing::free_loopback_port()) + "\"\n";
    daemon_ = new testing::DaemonProcess(*bus_, options);
    image_dir_ = new testing::TempDir();
    image_ = new testing::OciImage(testing::probe_image(image_dir_->path() + "/probe.tar"));
    auto bus = testing::open_bus(*bus_);
    const std::string token = "e2e-token-value";
    auto stored = testing::set_resource(bus.get(), "default/e2e/token", token);
    ASSERT_TRUE(stored.ok) << stored.error_message;
    for (const auto& [name, spec] : {std::pair{"confined", confined_spec()},
                                     std::pair{"initfail", initfail_spec()}}) {
      auto created = testing::call_s(bus.get(), "CreatePod", spec);
      ASSERT_TRUE(created.ok) << created.error_message << "\n" << spec;
      auto started = testing::call_s(bus.get(), "StartPod", name);
      ASSERT_TRUE(started.ok) << started.error_message;
    }
    // Both pods end by themselves (every container exits).
    ASSERT_TRUE(testing::wait_for(
        [&] {
          int ended = 0;
          for (const auto& pod : testing::list_pods(bus.get()))
            ended += pod.state == "exited" || pod.state == "failed";
          return ended == 2;
        },
        600s))
        << daemon_->log();
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

  static std::string image_ref() {
    return "oci-archive:" + image_->archive + "@" + image_->digest;
  }

  static std::string container(const std::string& table, const std::string& name,
                               const std::string& command, const std::string& extra = "") {
    return "\n[[" + table + "]]\nname = \"" + name + "\"\nimage = \"" + image_ref() +
           "\"\ncommand = " + command + "\n" + extra;
  }

  static std::string confined_spec() {
    return "name = \"confined\"\ntee = \"none\"\n" +
           container("init_containers", "prep", R"(["/bin/sh", "-c", "echo prep.ran=yes"])") +
           container("containers", "restricted",
                     R"(["/bin/confpod-probe", "-t", "restricted", "privileges"])",
                     "user = \"1000:1000\"\n") +
           container("containers", "rootdefault",
                     R"(["/bin/confpod-probe", "-t", "rootdefault", "privileges"])",
                     "read_only_rootfs = true\ntmpfs = [\"/tmp\"]\n") +
           container("containers", "admin", R"(["/bin/confpod-probe", "-t", "admin", "privileges"])",
                     "cap_add = [\"SYS_ADMIN\", \"sys_boot\"]\nseccomp = \"unconfined\"\n") +
           container("containers", "hog", R"(["/bin/confpod-probe", "-t", "hog", "alloc", "256"])",
                     "memory_mib = 48\n") +
           container("containers", "spin", R"(["/bin/confpod-probe", "-t", "spin", "burn", "3"])",
                     "cpus = 0.2\n") +
           container("containers", "server", R"(["/bin/sh", "-c", "echo pong | nc -l -p 8081"])") +
           container("containers", "client",
                     R"(["/bin/sh", "-c", "sleep 2; echo client.got=$(nc 127.0.0.1 8081); echo client.secret=$TOKEN"])") +
           "\n[[secrets]]\nresource = \"default/e2e/token\"\nenv = \"TOKEN\"\n";
  }

  static std::string initfail_spec() {
    return "name = \"initfail\"\ntee = \"none\"\n[vm]\nmemory_mib = 256\n" +
           container("init_containers", "setup", R"(["/bin/sh", "-c", "echo setup.ran=yes; exit 3"])") +
           container("containers", "main", R"(["/bin/sh", "-c", "echo main.ran=yes"])");
  }

  static std::string log_of(const std::string& pod) {
    auto bus = testing::open_bus(*bus_);
    auto reply = testing::call(bus.get(), testing::kManagerPath, testing::kManagerInterface,
                               "GetPodLog", [&](sd_bus_message* m) {
                                 return sd_bus_message_append(m, "st", pod.c_str(),
                                                              std::uint64_t{1} << 20);
                               });
    EXPECT_TRUE(reply.ok) << reply.error_message;
    return reply.ok ? testing::read_string(reply) : "";
  }

  static inline testing::PrivateBus* bus_ = nullptr;
  static inline testing::DaemonProcess* daemon_ = nullptr;
  static inline testing::TempDir* image_dir_ = nullptr;
  static inline testing::OciImage* image_ = nullptr;
};

TEST_F(ContainersTest, NonRootContainerCannotDoPrivilegedThings) {
  auto f = probe_fields(log_of("confined"), "restricted");
  EXPECT_EQ(f["uid"], "1000");
  EXPECT_EQ(f["write_root"], "EACCES");
  EXPECT_EQ(f["mount"], "EPERM");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["reboot"], "EPERM");
  EXPECT_EQ(f["unshare"], "EPERM");
  EXPECT_EQ(f["CapEff"], "0000000000000000");
  EXPECT_EQ(f["NoNewPrivs"], "1");
  EXPECT_EQ(f["Seccomp"], "2");
}

TEST_F(ContainersTest, RootContainerHasTheDefaultSetAndAReadOnlyRoot) {
  auto f = probe_fields(log_of("confined"), "rootdefault");
  EXPECT_EQ(f["uid"], "0");
  EXPECT_EQ(f["write_root"], "EROFS");
  EXPECT_EQ(f["mount"], "EPERM");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["reboot"], "EPERM");
  EXPECT_EQ(f["clone_newuser"], "EPERM");
  EXPECT_EQ(f["CapEff"], "00000000a80425fb");
  EXPECT_EQ(f["Seccomp"], "2");
}

// The spec's additions are real: the same probe may mount, and reboot gets past the
// capability check to the bad magic (EINVAL); a module still may not be loaded.
TEST_F(ContainersTest, AddedCapabilitiesWithoutTheFilterAllowWhatTheyName) {
  auto f = probe_fields(log_of("confined"), "admin");
  EXPECT_EQ(f["mount"], "ok");
  EXPECT_EQ(f["reboot"], "EINVAL");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["Seccomp"], "0");
}

TEST_F(ContainersTest, OverItsMemoryLimitIsKilledAndReportedOom) {
  const std::string log = log_of("confined");
  EXPECT_EQ(log.find("hog.allocated all"), std::string::npos) << log;
  EXPECT_NE(log.find("container hog exited with status 137 (oom"), std::string::npos) << log;
  EXPECT_NE(log.find("pod exited with status 137 (oom)"), std::string::npos) << log;
  auto bus = testing::open_bus(*bus_);
  const std::string path = "/org/confpod1/pod/confined";
  EXPECT_EQ(testing::get_trivial_property<std::int32_t>(bus.get(), path, "ExitStatus", 'i'), 137);
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "State"), "failed");
}

TEST_F(ContainersTest, CpuLimitedContainerStaysUnderItsLimit) {
  auto f = probe_fields(log_of("confined"), "spin");
  ASSERT_FALSE(f["cpu_ms"].empty()) << log_of("confined");
  const double cpu = std::stod(f["cpu_ms"]);
  const double wall = std::stod(f["wall_ms"]);
  ASSERT_GT(wall, 2500);
  // cpus = 0.2: a spinning process gets at most a fifth of a CPU (with slack for accounting);
  // unlimited, it would get most of one.
  std::cout << "spin: cpu " << cpu << " ms in " << wall << " ms (" << cpu / wall << ")\n";
  EXPECT_LT(cpu / wall, 0.3);
  EXPECT_GT(cpu / wall, 0.05);
}

TEST_F(ContainersTest, ContainersShareLocalhostAndInitRunsFirst) {
  const std::string log = log_of("confined");
  EXPECT_NE(log.find("client.got=pong"), std::string::npos) << log;
  // The secret for env reached the container's environment.
  EXPECT_NE(log.find("client.secret=e2e-token-value"), std::string::npos) << log;
  const auto prep = log.find("prep.ran=yes");
  ASSERT_NE(prep, std::string::npos) << log;
  for (const char* tag : {"restricted.", "rootdefault.", "client.got"})
    EXPECT_LT(prep, log.find(tag)) << tag << " before the init container's output:\n" << log;
}

TEST_F(ContainersTest, FailedInitContainerStopsThePodBeforeTheOthers) {
  const std::string log = log_of("initfail");
  EXPECT_NE(log.find("setup.ran=yes"), std::string::npos) << log;
  EXPECT_EQ(log.find("main.ran=yes"), std::string::npos) << log;
  auto bus = testing::open_bus(*bus_);
  const std::string path = "/org/confpod1/pod/initfail";
  EXPECT_EQ(testing::get_trivial_property<std::int32_t>(bus.get(), path, "ExitStatus", 'i'), 3);
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "State"), "failed");
}

}  // namespace
}  // namespace confpod
