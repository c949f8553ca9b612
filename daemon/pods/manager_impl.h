// Private to daemon/pods: the Manager's state (the pod table, each pod's VM, link
// and waiters) shared by manager.cc (creation, recovery, the public operations) and
// pod_lifecycle.cc (start, run, exit, restart, stop, remove: the state machine). Everything
// here runs on the loop thread, except what LoopJobs runs on its workers.
#pragma once

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/unique_fd.h"
#include "daemon/net/networking.h"
#include "daemon/pods/guest_link.h"
#include "daemon/pods/loop_jobs.h"
#include "daemon/pods/manager.h"
#include "daemon/pods/pod_vm.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "daemon/store/group_commit.h"

namespace confpod::pods {

using SteadyClock = std::chrono::steady_clock;

// Raw syscalls: glibc 2.36's <sys/pidfd.h> declares these without C linkage for C++.
inline int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }

inline std::int64_t now_realtime_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

inline Error invalid_state(const store::PodRecord& pod, std::string_view what) {
  return make_error("pods.invalid_state", "pod " + pod.name + " is " +
                                              std::string(store::to_string(pod.state)) + ": " +
                                              std::string(what));
}

inline net::Lease lease_of(const store::PodRecord& record) {
  return {record.network, record.address, record.address6, record.mac};
}

inline bool is_active(store::PodState state) {
  return state == store::PodState::kStarting || state == store::PodState::kRunning ||
         state == store::PodState::kStopping;
}

struct Pod {
  std::uint64_t id = 0;
  store::PodRecord record;
  std::optional<spec::PodSpec> spec;  // nullopt when the stored spec no longer parses
  std::string spec_error;
  std::string log_id;  // POD_ID of its journal entries (pod_log_id)
  Manager::Impl* impl = nullptr;

  // While the VM runs and no worker owns it: the VM, our pidfd on its QEMU (confpodd's own
  // QEMU only) and the exit watch (that pidfd, or a timer polling libvirt).
  std::optional<PodVm> vm;
  UniqueFd pidfd;
  pid_t qemu_pid = -1;          // what pidfd was opened on (its process group is QEMU's)
  bool vm_unreachable = false;  // libvirt did not answer the last exit poll
  EventSourcePtr exit_watch;
  EventSourcePtr qmp_watch;  // QMP events as they come (watch_qmp)
  EventSourcePtr restart_timer;
  std::unique_ptr<GuestLink> link;  // the agent channel while the VM runs

  bool job = false;                // a worker thread is starting the VM / owns it
  bool stop_requested = false;     // Stop/Kill/Remove(force): ends "exited", never restarted
  bool kill_pending = false;       // Kill arrived while starting: kill once QEMU is up
  bool sigkill_sent = false;       // we sent SIGKILL ourselves
  bool remove_after_exit = false;  // Remove(force): remove once exited
  std::string failure_reason;      // why confpodd killed it (the guest broke the channel)
  std::vector<Manager::Done> start_waiters, exit_waiters, remove_waiters;

  unsigned quick_failures = 0;  // consecutive short runs (restart back-off)
  SteadyClock::time_point run_since{};
};

struct Manager::Impl {
  sd_event* event = nullptr;
  ManagerOptions options;
  // Before `store`, whose connection reports its commits here: destroyed after it.
  std::unique_ptr<store::GroupCommit> group_commit;
  store::Store store;
  EventSourcePtr group_commit_watch;  // group_commit's ready_fd on the loop
  Measurer measurer;  // one cache of expected measurements for the daemon's lifetime
  std::unique_ptr<net::Networking> networking;  // after `store`: it holds a reference to it
  Listener* listener = nullptr;
  std::vector<Listener*> more_listeners;
  std::map<std::string, std::unique_ptr<Pod>, std::less<>> pods;
  std::uint64_t next_pod_id = 1;
  // Exec ids on the agent channels (never 0). They start from this daemon's start time in
  // microseconds, so the ids of a restarted daemon never meet those of execs an agent still
  // runs for its predecessor.
  std::uint64_t next_exec_id =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());

  // Start, stop and the end-of-VM drain block: they run on workers and finish on the loop.
  std::unique_ptr<LoopJobs> jobs;
  std::optional<net::NftMonitor> nft_monitor;
  EventSourcePtr nft_watch;

  Impl(sd_event* e, ManagerOptions o, store::Store s)
      : event(e),
        options(std::move(o)),
        store(std::move(s)),
        measurer(options.host_cpu_signature) {}

  ~Impl() {
    // A stop in flight finishes (bounded by stop_timeout_seconds); completions that did not
    // run are dropped: their VMs keep running and the store holds the last
    // announced state, exactly what a restart re-attaches from.
    jobs.reset();
    pods.clear();
  }

  const config::DaemonConfig& config() const { return options.config; }
  bool on_libvirt() const { return options.config.backend == "libvirt"; }
  // New pods reach their agent over vsock ([vmm] channel: "vsock", or "auto" on a host with
  // /dev/vhost-vsock); the choice is kept with each pod (its CID).
  bool new_pods_on_vsock() const {
    return options.config.channel == "vsock" ||
           (options.config.channel == "auto" && options.probe.dev_vhost_vsock);
  }
  // The lowest guest CID from [vmm] vsock_cid_first up that no pod holds.
  Result<std::uint32_t> free_vsock_cid() const;
  spec::PodPaths paths_of(const Pod& pod) const {
    return spec::pod_paths(options.config.host.runtime_dir, pod.record.name);
  }

  // The host defaults with this pod's network and KBS URL: what its VM and init-data are
  // built from.
  Result<spec::HostDefaults> host_for(const store::PodRecord& record) const;

  Pod* find(std::string_view name) {
    auto it = pods.find(name);
    return it == pods.end() ? nullptr : it->second.get();
  }
  Pod* find(std::string_view name, std::uint64_t id) {
    Pod* pod = find(name);
    return pod != nullptr && pod->id == id ? pod : nullptr;
  }

  static void finish(const Manager::Done& done, Status status) {
    if (done) done(std::move(status));
  }
  static void finish_all(std::vector<Manager::Done>& waiters, const Status& status) {
    auto list = std::move(waiters);
    waiters.clear();
    for (auto& done : list) finish(done, status);
  }

  // --- worker jobs ---------------------------------------------------------------------------

  // Every nftables change in the namespace (ours too) makes Networking check its tables, so
  // a flush by someone else is undone at once rather than at the next pod change. Without
  // CAP_NET_ADMIN there is nothing to subscribe to and no table of ours to keep.
  void watch_nftables();

  static int on_nft_change(sd_event_source*, int, std::uint32_t, void* userdata);

  // The agent channel dropped the guest (GuestLink: malformed or oversize frames, a flood, no
  // hello): a VM nobody can talk to is no pod. Kill it; it ends failed, and its restart
  // policy applies.
  void guest_violation(const std::string& name, std::uint64_t id, const std::string& reason);

  // --- state changes ---------------------------------------------------------------------------

  // Writes `next` to the store, then makes it the pod's record and tells the listener. When
  // the write fails nothing changes and the error is returned, unless `reality` (the VM
  // really started or exited): then memory follows reality and the failure is logged.
  Status commit(Pod& pod, store::PodRecord next, unsigned changes, bool reality);

  Status set_state(Pod& pod, store::PodState state, bool reality);

  // --- measurement ---------------------------------------------------------------------------

  // Stores the launch plan's measurement, when it changed (new firmware, kernel, ...), before
  // anyone hears of the start.
  Status remeasure(Pod& pod, std::string measurement);

  // --- start -------------------------------------------------------------------------------

  void begin_start(Pod& pod, Manager::Done done);

  void finish_start(const std::string& name, std::uint64_t id, Result<PodVm> started);

  // The VM is in pod.vm: watch it and announce "running".
  void running(Pod& pod, bool fresh_start);

  // --- exit ----------------------------------------------------------------------------------

  // QMP events as QEMU emits them, not only when the VM is gone: a guest panic or shutdown
  // is in the journal at once. The pidfd still decides the exit (the supervisor classifies it
  // with the SHUTDOWN event taken here). Off while a worker owns the VM.
  void watch_qmp(Pod& pod);
  static int on_qmp(sd_event_source* source, int, std::uint32_t, void* userdata);
  void log_vm_event(const Pod& pod, const vmm::QmpEvent& event);

  static int on_pidfd(sd_event_source* source, int, std::uint32_t, void* userdata);
  // A libvirt domain's exit: its state polled every kExitPollInterval.
  void watch_exit(Pod& pod);
  static int on_exit_poll(sd_event_source* source, std::uint64_t, void* userdata);
  bool exit_seen(Pod& pod);
  void resume_exit_watch(Pod& pod);

  void send_sigkill(Pod& pod);

  void handle_exit(Pod& pod, const vmm::ExitInfo& info);

  // The VM is gone and the agent's channel drained: the pod's final state.
  void finish_exit(Pod& pod, const vmm::ExitInfo& info, std::optional<std::int64_t> agent_status,
                   const std::string& agent_reason = "");

  // The pod no longer runs (exited, failed, or never started): answer whoever waited, then
  // remove it or apply its restart policy.
  void after_exit(Pod& pod);

  // --- restart policy -----------------------------------------------------------------------

  void maybe_restart(Pod& pod);

  static int on_restart_timer(sd_event_source*, std::uint64_t, void* userdata);

  // --- stop, kill, remove ----------------------------------------------------------------------

  Status begin_stop(Pod& pod);

  void finish_stop(const std::string& name, std::uint64_t id, const std::shared_ptr<PodVm>& vm,
                   const Result<vmm::ExitInfo>& result);

  // Kill whatever runs; the exit (or the end of the start) finishes the job.
  void kill_active(Pod& pod);

  void remove(Pod& pod, std::vector<Manager::Done>& waiters);

  Pod& add_pod(store::PodRecord record);
};

}  // namespace confpod::pods
