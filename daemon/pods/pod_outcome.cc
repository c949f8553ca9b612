#include "daemon/pods/pod_outcome.h"

#include <signal.h>

#include <algorithm>

namespace confpod::pods {

std::int64_t exit_status_of(const vmm::ExitInfo& info) {
  if (info.exit_code) return *info.exit_code;
  if (info.signal) return 128 + *info.signal;
  if (info.cause == vmm::ExitCause::kKilledBySupervisor) return 128 + SIGKILL;
  // QEMU exits 0 after a SHUTDOWN it acts on; after re-attach we cannot reap it to see that.
  if (info.shutdown_event_seen &&
      (info.shutdown_reason == "guest-shutdown" || info.shutdown_reason == "host-qmp-quit" ||
       info.shutdown_reason == "host-signal"))
    return 0;
  return -1;
}

ExitOutcome exit_outcome(const ExitFacts& f) {
  ExitOutcome out;
  out.status = exit_status_of(f.vm);
  if (out.status == -1 && f.sigkill_sent) out.status = 128 + SIGKILL;
  bool clean = f.vm.cause == vmm::ExitCause::kGuestShutdown;
  const bool agent_said = f.agent_status.has_value() && !f.sigkill_sent;
  if (agent_said) {
    out.status = *f.agent_status;
    clean = *f.agent_status == 0;
  }
  out.state = f.stop_requested || clean ? store::PodState::kExited : store::PodState::kFailed;
  if (!f.failure_reason.empty()) {
    out.state = store::PodState::kFailed;
    out.reason = f.failure_reason;
  } else if (f.vm.cause == vmm::ExitCause::kGuestPanic) {
    out.reason = "guest kernel panic";
  } else if (agent_said) {
    out.reason = f.agent_reason;
  }
  return out;
}

std::optional<std::chrono::milliseconds> restart_delay(spec::RestartPolicy policy, bool failed,
                                                       std::chrono::steady_clock::duration ran_for,
                                                       unsigned& quick_failures,
                                                       const RestartTiming& timing) {
  if (policy == spec::RestartPolicy::kNo) return std::nullopt;
  if (policy == spec::RestartPolicy::kOnFailure && !failed) return std::nullopt;
  if (ran_for >= timing.reset_after) quick_failures = 0;
  auto delay = timing.delay;
  for (unsigned i = 0; i < quick_failures && delay < timing.delay_max; ++i) delay *= 2;
  delay = std::min(delay, timing.delay_max);
  quick_failures = std::min(quick_failures + 1, 32u);
  return delay;
}

}  // namespace confpod::pods
