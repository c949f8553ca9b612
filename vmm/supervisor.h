// Supervisor: runs one QEMU process and follows it until it exits.
//
// start() spawns QEMU from an argv with posix_spawn (no shell, no fork of the daemon) in a new
// session (its own process group), stdin /dev/null, stdout+stderr appended to a log file,
// every other fd closed, signal mask and dispositions reset. It writes a pidfile and connects
// QMP.
//
// QEMU deliberately outlives the supervisor: no PR_SET_PDEATHSIG, and the destructor leaves
// the process running. When the daemon restarts, attach(pidfile, qmp_socket) finds it again:
// the pid must be alive and must be the QEMU we started, not a recycled pid, so we pin it
// with a pidfd first and then check that /proc/<pid>/cmdline serves our QMP socket (libvirt
// makes the same kind of check against /proc/<pid>/exe).
// After attach we are usually not QEMU's parent, so exit is detected with a pidfd
// (pidfd_open, Linux >= 5.3), and the exit status is known only if we can still reap it
// (we are its parent or a child subreaper); otherwise the cause comes from QMP events.
//
// Errors:
//   vmm.supervisor.argv      empty argv / argv[0] not an absolute executable path
//   vmm.supervisor.io        log file, pidfile, /dev/null, spawn attribute failures
//   vmm.supervisor.exec      posix_spawn or its execve failed (message has errno text)
//   vmm.supervisor.early_exit QEMU exited before QMP answered (message has the log tail)
//   vmm.supervisor.socket_in_use the QMP socket is already served by a live process
//   vmm.supervisor.attach    pidfile missing/garbled, pid dead, or not our QEMU
//   vmm.supervisor.timeout   wait_exit deadline passed
//   vmm.qmp.*                from the QMP client
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "vmm/qemu_argv.h"
#include "vmm/qmp.h"

namespace confpod::vmm {

enum class ExitCause {
  kGuestShutdown,       // SHUTDOWN event, guest-initiated (poweroff in the guest, ACPI powerdown)
  kGuestReset,          // SHUTDOWN reason guest-reset with -no-reboot
  kGuestPanic,          // SHUTDOWN reason guest-panic (pvpanic, -action panic=shutdown)
  kHostQuit,            // SHUTDOWN reason host-qmp-quit: someone sent QMP "quit"
  kHostSignal,          // SHUTDOWN reason host-signal: QEMU got SIGTERM/SIGINT/SIGHUP
  kKilledBySupervisor,  // we sent SIGKILL (stop() timeout or kill())
  kSignaled,            // died of a signal we did not send (crash, OOM killer, admin kill -9)
  kExitedWithError,     // exit code != 0 without a SHUTDOWN event (bad argv, init failure)
  kExitedUnknown,       // gone, no SHUTDOWN event and no exit status (re-attached, not parent)
};

std::string to_string(ExitCause cause);

struct ExitInfo {
  ExitCause cause = ExitCause::kExitedUnknown;
  std::optional<int> exit_code;  // when we reaped it and it exited
  std::optional<int> signal;     // when we reaped it and a signal ended it
  std::string shutdown_reason;   // SHUTDOWN event "reason" ("guest-shutdown", ...), if seen
  bool shutdown_event_seen = false;
};

struct SupervisorOptions {
  std::vector<std::string> argv;  // argv[0]: absolute path of the QEMU binary
  std::string qmp_socket;         // the unix socket the argv's -qmp / -chardev serves, with
                                  // kQmpServerOptions
  std::string pidfile;            // written by start() (atomically), read by attach()
  std::string log_file;           // QEMU's stdout+stderr, appended
  std::chrono::milliseconds qmp_timeout{std::chrono::seconds(30)};
};

class Supervisor {
 public:
  using Clock = std::chrono::steady_clock;

  static Result<Supervisor> start(const SupervisorOptions& options);
  static Result<Supervisor> attach(
      const std::string& pidfile, const std::string& qmp_socket,
      std::chrono::milliseconds qmp_timeout = std::chrono::seconds(10));

  Supervisor(Supervisor&&) = default;
  Supervisor& operator=(Supervisor&&) = default;
  // Leaves QEMU running (re-attach design); reaps it if it already exited and we are parent.
  ~Supervisor();

  pid_t pid() const { return pid_; }
  bool is_parent() const { return is_parent_; }
  QmpClient& qmp() { return *qmp_; }

  // The QMP events that arrived since the last call, read without blocking: for a caller that
  // watches qmp_fd() (readable: events or EOF) so that a guest's panic or shutdown is seen as
  // it happens. The exit classification still sees the SHUTDOWN event taken here.
  std::vector<QmpEvent> take_new_events();
  int qmp_fd() const { return qmp_ ? qmp_->fd() : -1; }
  bool qmp_closed() const { return !qmp_ || qmp_->closed(); }

  // query-status: "running", "paused", "shutdown", ...
  Result<std::string> status();
  // The exit once it happened (non-blocking); nullopt while QEMU runs.
  Result<std::optional<ExitInfo>> poll_exit();
  // Waits for QEMU to exit on its own, collecting QMP events meanwhile.
  Result<ExitInfo> wait_exit(std::chrono::milliseconds timeout);
  // Graceful stop: system_powerdown, wait up to `grace` for the guest to power off, then
  // SIGKILL the process group. Returns how it ended.
  Result<ExitInfo> stop(std::chrono::milliseconds grace);
  // SIGKILL the process group now and wait for the exit.
  Result<ExitInfo> kill();

 private:
  Supervisor() = default;
  Status send_kill();
  Result<ExitInfo> finish_exit();  // after the pidfd fired: reap, drain QMP, classify

  pid_t pid_ = -1;
  bool is_parent_ = false;
  bool killed_by_us_ = false;
  UniqueFd pidfd_;
  std::optional<QmpClient> qmp_;
  std::optional<ExitInfo> exit_;
  std::optional<QmpEvent> shutdown_event_;  // the last SHUTDOWN take_new_events() handed out
  std::string pidfile_;
};

namespace detail {
// Identity check used by attach(): /proc/<pid>/cmdline (under proc_root) holds an argument
// that contains qmp_socket. Exposed for tests.
Status check_qemu_identity(const std::string& proc_root, pid_t pid, const std::string& qmp_socket);
// Reads a pidfile: decimal pid, optional trailing newline, nothing else.
Result<pid_t> read_pidfile(const std::string& path);
}  // namespace detail

}  // namespace confpod::vmm
