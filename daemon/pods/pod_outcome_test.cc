#include "daemon/pods/pod_outcome.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;

TEST(ExitStatusOf, FromWhatTheSupervisorSaw) {
  vmm::ExitInfo info;
  EXPECT_EQ(exit_status_of(info), -1);
  info.exit_code = 3;
  EXPECT_EQ(exit_status_of(info), 3);
  info.exit_code.reset();
  info.signal = SIGSEGV;
  EXPECT_EQ(exit_status_of(info), 128 + SIGSEGV);
  info.signal.reset();
  info.cause = vmm::ExitCause::kKilledBySupervisor;
  EXPECT_EQ(exit_status_of(info), 137);
  info.cause = vmm::ExitCause::kGuestShutdown;
  info.shutdown_event_seen = true;
  info.shutdown_reason = "guest-shutdown";
  EXPECT_EQ(exit_status_of(info), 0);
  info.shutdown_reason = "guest-panic";
  EXPECT_EQ(exit_status_of(info), -1);
}

ExitFacts guest_powered_off() {
  ExitFacts f;
  f.vm.cause = vmm::ExitCause::kGuestShutdown;
  f.vm.exit_code = 0;
  return f;
}

TEST(ExitOutcome, ACleanPowerOffWithoutTheAgentsWordExits) {
  ExitOutcome o = exit_outcome(guest_powered_off());
  EXPECT_EQ(o.state, store::PodState::kExited);
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.reason, "");
}

TEST(ExitOutcome, TheAgentsStatusAndReasonBeatQemus) {
  ExitFacts f = guest_powered_off();
  f.agent_status = 137;
  f.agent_reason = "oom";
  ExitOutcome o = exit_outcome(f);
  EXPECT_EQ(o.state, store::PodState::kFailed) << "a clean QEMU exit after a failed container";
  EXPECT_EQ(o.status, 137);
  EXPECT_EQ(o.reason, "oom");
  f.agent_status = 0;
  f.agent_reason = "";
  EXPECT_EQ(exit_outcome(f).state, store::PodState::kExited);
}

TEST(ExitOutcome, OurKillOverridesTheAgentAndARequestedEndExits) {
  ExitFacts f;
  f.vm.cause = vmm::ExitCause::kExitedUnknown;
  f.sigkill_sent = true;
  f.agent_status = 0;  // said before the kill: not how it ended
  ExitOutcome killed = exit_outcome(f);
  EXPECT_EQ(killed.status, 128 + SIGKILL);
  EXPECT_EQ(killed.state, store::PodState::kFailed);
  f.stop_requested = true;
  EXPECT_EQ(exit_outcome(f).state, store::PodState::kExited) << "Kill asked for this end";
}

TEST(ExitOutcome, ADroppedGuestFailsWithItsReasonEvenWhenStopped) {
  ExitFacts f;
  f.sigkill_sent = true;
  f.stop_requested = true;
  f.failure_reason = "agent sent an oversize frame";
  ExitOutcome o = exit_outcome(f);
  EXPECT_EQ(o.state, store::PodState::kFailed);
  EXPECT_EQ(o.reason, "agent sent an oversize frame");
}

TEST(ExitOutcome, AGuestKernelPanicIsNamed) {
  ExitFacts f;
  f.vm.cause = vmm::ExitCause::kGuestPanic;
  ExitOutcome o = exit_outcome(f);
  EXPECT_EQ(o.state, store::PodState::kFailed);
  EXPECT_EQ(o.reason, "guest kernel panic");
}

TEST(RestartDelay, PolicyDecidesWhetherAndBackOffHowLong) {
  RestartTiming t{1000ms, 5000ms, 10000ms};
  unsigned quick = 0;
  EXPECT_FALSE(restart_delay(spec::RestartPolicy::kNo, true, 0s, quick, t));
  EXPECT_FALSE(restart_delay(spec::RestartPolicy::kOnFailure, false, 0s, quick, t));
  EXPECT_EQ(quick, 0u) << "no restart counts nothing";
  // Quick failures double the delay up to the cap.
  std::vector<long> delays;
  for (int i = 0; i < 5; ++i)
    delays.push_back(restart_delay(spec::RestartPolicy::kOnFailure, true, 1s, quick, t)->count());
  EXPECT_EQ(delays, (std::vector<long>{1000, 2000, 4000, 5000, 5000}));
  // A long run resets the back-off; "always" restarts a clean exit too.
  EXPECT_EQ(restart_delay(spec::RestartPolicy::kAlways, false, 10s, quick, t), 1000ms);
  EXPECT_EQ(quick, 1u);
}

}  // namespace
}  // namespace confpod::pods
