// The pod lifecycle on the libvirt backend ([vmm] backend = "libvirt"): the same state machine
// as on QEMU, driven through libvirt. First against libvirt's in-process test:///default
// driver (its domains run without a guest: the lifecycle only), then against a real libvirtd
// (session mode as nobody, tests/support/libvirtd.h) running the real guest under TCG.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "daemon/pods/pod_vm.h"
#include "daemon/pods/pods_test_fixture.h"
#include "tests/support/libvirtd.h"
#include "vmm/libvirt_backend.h"

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;
using store::PodState;
using testing_support::PodsTest;

constexpr const char* kTestUri = "test:///default";

class LibvirtPodsTest : public PodsTest {
 protected:
  void SetUp() override {
    PodsTest::SetUp();
    // As confpodd does (daemon/confpodd.cc): libvirt's client writes to a libvirtd that went
    // away without MSG_NOSIGNAL.
    ::signal(SIGPIPE, SIG_IGN);
    // test:///default keeps its domains while a connection to it is open: this one, for the
    // whole test, stands for libvirtd's lifetime.
    auto conn = vmm::LibvirtConnection::connect(kTestUri);
    ASSERT_TRUE(conn.ok()) << conn.error().describe();
    test_driver_.emplace(std::move(*conn));
  }
  std::optional<vmm::LibvirtConnection> test_driver_;

  ManagerOptions libvirt_options(const std::string& uri) {
    ManagerOptions o = options();
    o.config.backend = "libvirt";
    o.config.libvirt_uri = uri;
    return o;
  }
  // The state libvirt has for the pod's domain, or nullopt when it has no such domain.
  std::optional<vmm::DomainState> domain_state(const std::string& uri, const std::string& pod) {
    auto conn = vmm::LibvirtConnection::connect(uri);
    if (!conn.ok()) return std::nullopt;
    auto domain = conn->lookup(libvirt_domain_name(pod));
    if (!domain.ok()) return std::nullopt;
    auto state = domain->state();
    return state.ok() ? std::optional(*state) : std::nullopt;
  }
};

TEST_F(LibvirtPodsTest, StartStopExitReattachAndRemoveThroughLibvirt) {
  auto m = make_manager(libvirt_options(kTestUri));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("lv-life", "on-failure")).ok());
  EXPECT_FALSE(domain_state(kTestUri, "lv-life")) << "defined only when it starts";
  Status started = call([&](Manager::Done d) { m->start_pod("lv-life", d); });
  ASSERT_TRUE(started.ok()) << started.error().describe();
  EXPECT_EQ(state(*m, "lv-life"), PodState::kRunning);
  EXPECT_EQ(domain_state(kTestUri, "lv-life"), vmm::DomainState::kRunning);
  EXPECT_TRUE(std::filesystem::is_directory(dir_.path() + "/run/pods/lv-life/vm"));

  // A graceful stop: libvirt's shutdown, which this driver's domain obeys.
  Status stopped = call([&](Manager::Done d) { m->stop_pod("lv-life", d); });
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(state(*m, "lv-life"), PodState::kExited);
  EXPECT_EQ(m->find("lv-life")->exit_status, 0);
  EXPECT_EQ(domain_state(kTestUri, "lv-life"), vmm::DomainState::kShutoff) << "kept defined";

  // An outside destroy (virsh destroy) is seen by the exit poll: failed, then restarted by
  // its on-failure policy.
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("lv-life", d); }).ok());
  {
    auto conn = vmm::LibvirtConnection::connect(kTestUri);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(conn->lookup(libvirt_domain_name("lv-life"))->destroy().ok());
  }
  ASSERT_TRUE(run_until([&] { return state(*m, "lv-life") == PodState::kFailed; }, 10s));
  EXPECT_EQ(m->find("lv-life")->exit_status, 137);
  ASSERT_TRUE(run_until([&] { return state(*m, "lv-life") == PodState::kRunning; }, 10s));

  // confpodd restarts: the running pod's domain is re-attached by name, and a kill of it ends
  // the pod "exited" (asked for), not restarted.
  m.reset();
  EXPECT_EQ(domain_state(kTestUri, "lv-life"), vmm::DomainState::kRunning) << "outlives confpodd";
  m = make_manager(libvirt_options(kTestUri));
  ASSERT_TRUE(m);
  EXPECT_EQ(state(*m, "lv-life"), PodState::kRunning);
  ASSERT_TRUE(call([&](Manager::Done d) { m->kill_pod("lv-life", d); }).ok());
  EXPECT_EQ(state(*m, "lv-life"), PodState::kExited);
  EXPECT_EQ(m->find("lv-life")->exit_status, 137);
  EXPECT_EQ(domain_state(kTestUri, "lv-life"), vmm::DomainState::kShutoff);

  // Removing the pod undefines its domain.
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("lv-life", false, d); }).ok());
  EXPECT_FALSE(domain_state(kTestUri, "lv-life"));
}

// The domain stopped while confpodd was down: the restarted daemon finds it stopped and says
// how, from libvirt's record.
TEST_F(LibvirtPodsTest, ADomainThatEndedWhileConfpoddWasDownIsAccountedFor) {
  auto m = make_manager(libvirt_options(kTestUri));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("lv-down")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("lv-down", d); }).ok());
  m.reset();
  {
    auto conn = vmm::LibvirtConnection::connect(kTestUri);
    ASSERT_TRUE(conn->lookup(libvirt_domain_name("lv-down"))->shutdown().ok());
  }
  m = make_manager(libvirt_options(kTestUri));
  ASSERT_TRUE(m);
  ASSERT_TRUE(run_until([&] { return state(*m, "lv-down") == PodState::kExited; }, 5s))
      << store::to_string(state(*m, "lv-down"));
  EXPECT_EQ(m->find("lv-down")->exit_status, 0);
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("lv-down", false, d); }).ok());
  EXPECT_FALSE(domain_state(kTestUri, "lv-down"));
}

// confpodd died while stopping the pod, and the domain was shut off before it came back: the
// stop ended as asked ("exited", not restarted), however libvirt says it ended.
TEST_F(LibvirtPodsTest, AStopThatFinishedWhileConfpoddWasDownEndsExited) {
  auto m = make_manager(libvirt_options(kTestUri));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("lv-stopping", "always")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("lv-stopping", d); }).ok());
  m.reset();
  {
    auto store = store::Store::open(dir_.path() + "/state/confpod.db");
    ASSERT_TRUE(store.ok()) << store.error().describe();
    auto found = store->get_pod("lv-stopping");
    ASSERT_TRUE(found.ok() && found->has_value());
    store::PodRecord record = **found;
    record.state = PodState::kStopping;
    ASSERT_TRUE(store->update_pod(record).ok());
    auto conn = vmm::LibvirtConnection::connect(kTestUri);
    ASSERT_TRUE(conn->lookup(libvirt_domain_name("lv-stopping"))->destroy().ok());
  }
  m = make_manager(libvirt_options(kTestUri));
  ASSERT_TRUE(m);
  ASSERT_TRUE(run_until([&] { return state(*m, "lv-stopping") == PodState::kExited; }, 5s))
      << store::to_string(state(*m, "lv-stopping"));
  run_until([] { return false; }, 500ms);  // a restart (policy "always") would start by now
  EXPECT_EQ(state(*m, "lv-stopping"), PodState::kExited);
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("lv-stopping", false, d); }).ok());
}

TEST_F(LibvirtPodsTest, AnUnreachableLibvirtFailsTheStartAndTheDaemonGoesOn) {
  auto m = make_manager(libvirt_options("qemu+unix:///session?socket=/nonexistent/libvirt-sock"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("lv-nowhere")).ok());
  Status started = call([&](Manager::Done d) { m->start_pod("lv-nowhere", d); });
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code.rfind("vmm.libvirt.", 0), 0u) << started.error().code;
  EXPECT_EQ(state(*m, "lv-nowhere"), PodState::kFailed);
  EXPECT_NE(m->find("lv-nowhere")->exit_reason.find("start failed"), std::string::npos);
  ManagerOptions unknown_user = libvirt_options(kTestUri);
  unknown_user.config.libvirt_qemu_user = "no-such-user-here";
  auto second = make_manager(unknown_user);
  ASSERT_TRUE(second);
  Status refused = call([&](Manager::Done d) { second->start_pod("lv-nowhere", d); });
  EXPECT_EQ(refused.error().code, "pods.libvirt_user");
  ASSERT_TRUE(call([&](Manager::Done d) { second->remove_pod("lv-nowhere", false, d); }).ok());
}

// --- a real libvirtd ---------------------------------------------------------------------------
// The real guest under TCG, started by libvirt's QEMU as nobody: the agent says hello over the
// channel libvirt created in the pod's vm/ directory, the container runs, its output reaches
// the pod's log; the pod stops through libvirt and its domain goes with it. The session
// libvirtd also goes away and comes back meanwhile. Against a session
// libvirtd (as nobody) and a system one (root, as on a host: qemu:///system, DAC labelling).
class RealLibvirtdPodsTest : public LibvirtPodsTest,
                             public ::testing::WithParamInterface<testing::TestLibvirtd::Mode> {};

TEST_P(RealLibvirtdPodsTest, ARealGuestRunsItsContainerUnderLibvirtd) {
  if (auto why = testing::TestLibvirtd::unavailable()) GTEST_SKIP() << *why;
  testing::TestLibvirtd libvirtd(GetParam());
  if (libvirtd.cannot_mount())
    GTEST_SKIP() << "no private mount namespace here:\n" << libvirtd.log();
  ASSERT_TRUE(libvirtd.started()) << libvirtd.log();
  // What its QEMU (nobody) opens: the guest image and the container image, readable, and the
  // runtime directory, traversable.
  const std::string vm_files = libvirtd.dir() + "/vm";
  testing::GuestImage image = testing::guest_image();
  for (const auto& [from, to] : {std::pair{image.kernel, vm_files + "/vmlinuz"},
                                 std::pair{image.initrd, vm_files + "/initrd.img"}}) {
    std::filesystem::copy_file(from, to);
    ASSERT_EQ(::chmod(to.c_str(), 0644), 0);
  }
  testing::OciImage hello = testing::hello_image(vm_files + "/hello.tar");
  ASSERT_EQ(::chmod(hello.archive.c_str(), 0644), 0);
  if (GetParam() == testing::TestLibvirtd::Mode::kSession) {
    ASSERT_EQ(::chmod(dir_.path().c_str(), 0711), 0);
  }

  ManagerOptions o = libvirt_options(libvirtd.uri());
  // A session libvirtd is nobody itself: it needs the pod's vm/ directory. A system one (root)
  // creates the channel socket and the console log and hands QEMU their descriptors, so the
  // pod's directories stay root's.
  const bool session = GetParam() == testing::TestLibvirtd::Mode::kSession;
  if (session) o.config.libvirt_qemu_user = "nobody";
  o.config.stop_timeout_seconds = 60;  // the guest powers off on its own (status 0)
  o.config.host.kernel = vm_files + "/vmlinuz";
  o.config.host.initrd = vm_files + "/initrd.img";
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  const std::string pod_spec =
      "name = \"lv-real\"\ntee = \"none\"\n[vm]\nvcpus = 1\nmemory_mib = 256\n"
      "[[containers]]\nname = \"app\"\nimage = \"oci-archive:" +
      hello.archive + "@" + hello.digest +
      "\"\ncommand = [\"/bin/sh\", \"-c\", \"trap 'exit 0' TERM; echo " + testing::kServingReady +
      "; while :; do sleep 1; done\"]\n";
  ASSERT_TRUE(m->create_pod(pod_spec).ok());
  Status started = call([&](Manager::Done d) { m->start_pod("lv-real", d); });
  ASSERT_TRUE(started.ok()) << started.error().describe() << "\n" << libvirtd.log();
  const pid_t qemu = libvirtd.qemu_pid(libvirt_domain_name("lv-real"));
  ASSERT_GT(qemu, 0);
  struct stat st {};
  ASSERT_EQ(::stat(("/proc/" + std::to_string(qemu)).c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, testing::TestLibvirtd::kUid) << "libvirt's QEMU, not confpodd's";
  struct stat vm_dir {};
  ASSERT_EQ(::stat((dir_.path() + "/run/pods/lv-real/vm").c_str(), &vm_dir), 0);
  EXPECT_EQ(vm_dir.st_uid, session ? testing::TestLibvirtd::kUid : 0u);
  EXPECT_EQ(vm_dir.st_mode & 07777, 0700u);

  const std::string ready = "==> containers.log <==\n" + std::string(testing::kServingReady);
  std::string log;
  bool ran = run_until(
      [&] {
        auto text = m->pod_log("lv-real", 1 << 20);
        log = text.ok() ? *text : text.error().describe();
        return log.find(ready) != std::string::npos;
      },
      120s);
  ASSERT_TRUE(ran) << log;
  EXPECT_NE(log.find("==> serial.log <==\n"), std::string::npos);

  if (session) {
    // libvirtd goes away (an upgrade) and comes back: the pod runs on, unaccounted for by
    // nobody; its exit poll finds the domain again on a new connection.
    libvirtd.stop();
    run_until([] { return false; }, 1500ms);
    EXPECT_EQ(state(*m, "lv-real"), PodState::kRunning) << "libvirtd's absence is no exit";
    EXPECT_EQ(::kill(qemu, 0), 0) << "QEMU runs on without libvirtd";
    ASSERT_TRUE(libvirtd.start_again()) << libvirtd.log();
    run_until([] { return false; }, 1000ms);
    EXPECT_EQ(state(*m, "lv-real"), PodState::kRunning);
  }

  // A graceful stop through libvirt (on a new connection after the restart): the agent stops
  // the container, which exits 0, and the guest powers off.
  Status stopped = call([&](Manager::Done d) { m->stop_pod("lv-real", d); });
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(state(*m, "lv-real"), PodState::kExited);
  EXPECT_EQ(m->find("lv-real")->exit_status, 0) << m->pod_log("lv-real", 1 << 16).value();
  for (int i = 0; i < 100 && ::kill(qemu, 0) == 0; ++i) ::usleep(20'000);
  EXPECT_NE(::kill(qemu, 0), 0) << "QEMU must be gone";
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("lv-real", false, d); }).ok());
  EXPECT_FALSE(domain_state(libvirtd.uri(), "lv-real"));
}

INSTANTIATE_TEST_SUITE_P(Libvirtd, RealLibvirtdPodsTest,
                         ::testing::Values(testing::TestLibvirtd::Mode::kSession,
                                           testing::TestLibvirtd::Mode::kSystem),
                         [](const auto& info) {
                           return info.param == testing::TestLibvirtd::Mode::kSystem ? "System"
                                                                                     : "Session";
                         });

}  // namespace
}  // namespace confpod::pods
