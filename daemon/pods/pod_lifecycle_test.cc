// The pod state machine (pod_lifecycle.cc) through the Manager, with real QEMU under TCG:
// start, stop, kill, the restart policy, forced removal, and a guest the channel drops.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include "daemon/pods/pods_test_fixture.h"
#include "tests/support/bus.h"

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;
using store::PodState;
using testing_support::PodsTest;

TEST_F(PodsTest, StartStopRemoveWithQemu) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("web")).ok());
  Status started = call([&](Manager::Done d) { m->start_pod("web", d); });
  ASSERT_TRUE(started.ok()) << started.error().describe() << "\n"
                            << m->pod_log("web", 4096).value();
  EXPECT_EQ(state(*m, "web"), PodState::kRunning);
  EXPECT_GT(m->find("web")->started_at_us.value_or(0), 0);
  EXPECT_EQ(m->running_count(), 1u);

  Status again = call([&](Manager::Done d) { m->start_pod("web", d); });
  EXPECT_EQ(again.error().code, "pods.invalid_state");
  Status remove = call([&](Manager::Done d) { m->remove_pod("web", false, d); });
  EXPECT_EQ(remove.error().code, "pods.invalid_state");

  // Graceful stop (the guest may not be up yet to see the button: then SIGKILL after 2 s).
  Status stopped = call([&](Manager::Done d) { m->stop_pod("web", d); });
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(state(*m, "web"), PodState::kExited);
  ASSERT_TRUE(m->find("web")->exit_status.has_value());

  auto log = m->pod_log("web", 1 << 20);
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("==> serial.log <=="), std::string::npos);

  std::string dir = dir_.path() + "/run/pods/web";
  EXPECT_TRUE(std::filesystem::exists(dir));
  Status removed = call([&](Manager::Done d) { m->remove_pod("web", false, d); });
  ASSERT_TRUE(removed.ok()) << removed.error().describe();
  EXPECT_EQ(m->find("web"), nullptr);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

// The vsock channel for real: vhost-vsock-pci with the pod's CID, the agent listening in the
// guest, confpodd connecting to it, the container's output arriving; then a new manager (a
// confpodd restart) reaches the running agent again. Needs /dev/vhost-vsock, which only a
// host running VMs has; without it, the channel is the virtio-serial one every other test
// here uses (and PodsTest.AVsockPodWithoutVhostVsockFailsToStartSayingWhy covers the refusal).
TEST_F(PodsTest, AVsockPodRunsAndIsReachedAgainAfterARestart) {
  if (!testing_support::host_probe().dev_vhost_vsock)
    GTEST_SKIP() << "no /dev/vhost-vsock on this machine";
  auto o = options();
  o.config.channel = "vsock";
  // CIDs are host-wide: another test process may run vsock pods at the same time.
  o.config.vsock_cid_first = 100000 + static_cast<std::uint32_t>(::getpid());
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  auto created = m->create_pod(spec("vs"));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  ASSERT_EQ(created->vsock_cid, o.config.vsock_cid_first);
  Status started = call([&](Manager::Done d) { m->start_pod("vs", d); });
  ASSERT_TRUE(started.ok()) << started.error().describe() << "\n" << m->pod_log("vs", 4096).value();
  const std::string containers_log = dir_.path() + "/run/pods/vs/containers.log";
  auto ready = [&] {
    return testing::read_text_file(containers_log).find(testing::kServingReady) !=
           std::string::npos;
  };
  ASSERT_TRUE(run_until(ready, 180s)) << m->pod_log("vs", 1 << 16).value();
  m.reset();  // the daemon goes away; the VM and its agent stay

  auto again = make_manager(o);
  ASSERT_TRUE(again);
  EXPECT_EQ(state(*again, "vs"), PodState::kRunning);
  const std::string agent_log = dir_.path() + "/run/pods/vs/agent.log";
  // The agent greets the new connection: proof the link reached it over vsock again.
  auto greeted_twice = [&] {
    const std::string log = testing::read_text_file(agent_log);
    const auto first = log.find("agent: hello");
    return first != std::string::npos && log.find("agent: hello", first + 1) != std::string::npos;
  };
  EXPECT_TRUE(run_until(greeted_twice, 30s)) << testing::read_text_file(agent_log);
  ASSERT_TRUE(call([&](Manager::Done d) { again->kill_pod("vs", d); }).ok());
}

TEST_F(PodsTest, KillAndRestartPolicyAndForceRemove) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("job", "on-failure")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("job", d); }).ok());
  pid_t first = qemu_pid("job");
  ASSERT_GT(first, 0);

  // An unrequested death (SIGKILL from outside): failed, then restarted by on-failure.
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(run_until([&] { return state(*m, "job") == PodState::kFailed; }));
  EXPECT_EQ(m->find("job")->exit_status, 137);
  ASSERT_TRUE(run_until([&] { return state(*m, "job") == PodState::kRunning; }));

  // A requested kill ends in "exited" and is not restarted.
  ASSERT_TRUE(call([&](Manager::Done d) { m->kill_pod("job", d); }).ok());
  EXPECT_EQ(state(*m, "job"), PodState::kExited);
  EXPECT_EQ(m->find("job")->exit_status, 137);
  run_until([] { return false; }, 500ms);
  EXPECT_EQ(state(*m, "job"), PodState::kExited);

  // Force remove of a running pod kills it first.
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("job", d); }).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("job", true, d); }).ok());
  EXPECT_EQ(m->find("job"), nullptr);
}

// A Kill during a graceful stop ends the pod at once, not after the stop's grace period (the
// stop runs on a worker that owns the VM; the kill still reaches QEMU through the pidfd).
TEST_F(PodsTest, AKillDuringAStopEndsThePodAtOnce) {
  ManagerOptions o = options();
  o.config.stop_timeout_seconds = 120;  // the guest is still booting: it would wait all of it
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("slow")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("slow", d); }).ok());
  std::optional<Status> stopped;
  m->stop_pod("slow", [&](Status s) { stopped = std::move(s); });
  ASSERT_TRUE(run_until([&] { return state(*m, "slow") == PodState::kStopping; }, 10s));
  auto asked = std::chrono::steady_clock::now();
  Status killed = call([&](Manager::Done d) { m->kill_pod("slow", d); });
  ASSERT_TRUE(killed.ok()) << killed.error().describe();
  ASSERT_TRUE(run_until([&] { return stopped.has_value(); }, 30s));
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 60s);
  EXPECT_EQ(state(*m, "slow"), PodState::kExited);
  EXPECT_EQ(m->find("slow")->exit_status, 137);
}

// The agent channel drops a guest that breaks it (here: no hello in time): the Manager kills
// the VM, the pod fails with the reason in its agent.log, and its restart policy applies.
TEST_F(PodsTest, AGuestDroppedByTheChannelFailsThePod) {
  ManagerOptions o = options();
  o.agent_hello_timeout = 300ms;  // a TCG guest needs seconds to boot its agent
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("mute")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("mute", d); }).ok());
  pid_t qemu = qemu_pid("mute");
  ASSERT_GT(qemu, 0);
  ASSERT_TRUE(run_until([&] { return state(*m, "mute") == PodState::kFailed; }, 30s));
  EXPECT_EQ(m->find("mute")->exit_status, 137);
  EXPECT_NE(::kill(qemu, 0), 0) << "the VM must be gone";
  std::ifstream log(dir_.path() + "/run/pods/mute/agent.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("the agent sent nothing for 300 ms; link closed"), std::string::npos) << text;
}

}  // namespace
}  // namespace confpod::pods
