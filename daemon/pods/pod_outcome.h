// How a pod's run ended and what follows, as pure functions of what was seen: the final
// state, status and reason of a VM that exited, and the restart policy's back-off. The
// manager feeds them; pod_outcome_test.cc tests every rule without a VM.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "daemon/spec/spec.h"
#include "daemon/store/store.h"
#include "vmm/supervisor.h"

namespace confpod::pods {

// The exit status recorded for an ExitInfo: the exit code, 128+signal, 137 for our own
// SIGKILL when we could not reap, 0 after a SHUTDOWN event QEMU exits cleanly on
// (guest-shutdown, host-qmp-quit, host-signal), else -1 (unknown).
std::int64_t exit_status_of(const vmm::ExitInfo& info);

// What is known when a pod's VM is gone.
struct ExitFacts {
  vmm::ExitInfo vm;                          // QEMU's end, as the supervisor classified it
  std::optional<std::int64_t> agent_status;  // the agent's pod-exit, if it came
  std::string agent_reason;                  // and its reason ("oom", ...)
  bool sigkill_sent = false;                 // confpodd killed the VM
  bool stop_requested = false;               // Stop/Kill/Remove(force) asked for the end
  std::string failure_reason;                // why confpodd killed it (the guest broke the link)
};

struct ExitOutcome {
  store::PodState state = store::PodState::kFailed;  // kExited or kFailed
  std::int64_t status = -1;
  std::string reason;
};

// The agent's word on how the containers ended beats QEMU's (a guest that powers off after a
// failed container is a clean QEMU exit but a failed pod), unless confpodd killed the VM. A
// requested end is "exited" whatever the status; a guest confpodd dropped is "failed" with
// its reason; a guest kernel panic says so.
ExitOutcome exit_outcome(const ExitFacts& facts);

struct RestartTiming {
  std::chrono::milliseconds delay{1000};         // first delay
  std::chrono::milliseconds delay_max{30000};    // cap of the doubling
  std::chrono::milliseconds reset_after{10000};  // a run this long resets the back-off
};

// Whether a pod that ended on its own (not by request) restarts, and after how long:
// "always", or "on-failure" when it failed; the delay doubles per consecutive quick failure
// (`quick_failures`, updated here) up to the cap.
std::optional<std::chrono::milliseconds> restart_delay(spec::RestartPolicy policy, bool failed,
                                                       std::chrono::steady_clock::duration ran_for,
                                                       unsigned& quick_failures,
                                                       const RestartTiming& timing);

}  // namespace confpod::pods
