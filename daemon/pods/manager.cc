#include "daemon/pods/manager.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "attest/base/bytes.h"
#include "attest/base/crash_point.h"
#include "attest/base/unique_fd.h"
#include "attest/crypto/crypto.h"
#include "daemon/net/networking.h"
#include "daemon/pods/guest_link.h"
#include "daemon/pods/launch_plan.h"
#include "daemon/pods/log.h"
#include "daemon/pods/log_ids.h"
#include "daemon/pods/pod_files.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "guest/protocol/init_data.h"
#include "vmm/qemu_argv.h"
#include "vmm/supervisor.h"

namespace confpod::pods {

namespace {

using SteadyClock = std::chrono::steady_clock;

struct EventSourceUnref {
  void operator()(sd_event_source* source) const { sd_event_source_disable_unref(source); }
};
using EventSourcePtr = std::unique_ptr<sd_event_source, EventSourceUnref>;

// Raw syscalls: glibc 2.36's <sys/pidfd.h> declares these without C linkage for C++.
int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }
int pidfd_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u));
}

std::int64_t now_realtime_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

Error invalid_state(const store::PodRecord& pod, std::string_view what) {
  return make_error("pods.invalid_state", "pod " + pod.name + " is " +
                                              std::string(store::to_string(pod.state)) + ": " +
                                              std::string(what));
}

net::Lease lease_of(const store::PodRecord& record) {
  return {record.network, record.address, record.address6, record.mac};
}

// The networking of confpod.toml and this host (docs/network.md).
net::NetworkingOptions networking_options(const ManagerOptions& options) {
  const config::DaemonConfig& config = options.config;
  net::NetworkingOptions n;
  n.config_networks.push_back(config.network.default_network);
  for (const auto& def : config.network.networks) n.config_networks.push_back(def);
  n.pod_network = config.network.pod_network;
  n.vhost_net = options.probe.dev_vhost_net;
  n.kbs_guest_url = config.kbs.guest_url;
  n.user_kbs_url = config.host.kbs_guest_url;
  n.kbs_tls = !config.kbs.tls_cert.empty();
  const std::size_t colon = config.kbs.listen.rfind(':');
  if (config.kbs.enabled && colon != std::string::npos) {
    net::KbsForward kbs;
    kbs.port = static_cast<std::uint16_t>(std::stoul(config.kbs.listen.substr(colon + 1)));
    kbs.guest_port = kbs.port;
    // A wildcard or a name: the KBS answers on loopback too.
    auto address = net::parse_ipv4(config.kbs.listen.substr(0, colon));
    kbs.address = address && *address != 0 ? *address : 0x7f000001u;
    if (kbs.port != 0) n.kbs = kbs;
  }
  return n;
}

bool is_active(store::PodState state) {
  return state == store::PodState::kStarting || state == store::PodState::kRunning ||
         state == store::PodState::kStopping;
}

void append_to_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

// POD_ID in the journal: one id per life of a pod (its name and creation time), so that a
// pod removed and created again under the same name is told apart.
std::string pod_log_id(const store::PodRecord& record) {
  std::string input = record.name;
  input += '\0';
  input += std::to_string(record.created_at_us);
  Bytes digest = crypto::sha256(as_bytes(input));
  return to_hex(ByteView(digest).first(16));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Pod {
  std::uint64_t id = 0;
  store::PodRecord record;
  std::optional<spec::PodSpec> spec;  // nullopt when the stored spec no longer parses
  std::string spec_error;
  std::string log_id;  // POD_ID of its journal entries (pod_log_id)
  Manager::Impl* impl = nullptr;

  // While the VM runs and no worker owns it: its supervisor, our pidfd, the exit watch.
  std::optional<vmm::Supervisor> sup;
  UniqueFd pidfd;
  EventSourcePtr exit_watch;
  EventSourcePtr restart_timer;
  std::unique_ptr<GuestLink> link;  // the agent channel while the VM runs

  bool job = false;                // a worker thread is starting QEMU / owns the supervisor
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
  store::Store store;
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

  // Worker threads post their completion (to run on the loop thread) and poke the eventfd.
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> posted;
  std::map<std::uint64_t, std::thread> threads;
  std::uint64_t next_job_id = 1;
  UniqueFd wake_fd;
  EventSourcePtr wake_source;
  std::optional<net::NftMonitor> nft_monitor;
  EventSourcePtr nft_watch;

  Impl(sd_event* e, ManagerOptions o, store::Store s)
      : event(e),
        options(std::move(o)),
        store(std::move(s)),
        measurer(options.host_cpu_signature) {}

  ~Impl() {
    // A stop in flight finishes (bounded by stop_timeout_seconds); completions that did not
    // run are dropped: their supervisors leave QEMU running and the store holds the last
    // announced state, exactly what a restart re-attaches from.
    std::map<std::uint64_t, std::thread> joining;
    {
      std::lock_guard lock(mutex);
      joining.swap(threads);
    }
    for (auto& [id, thread] : joining) thread.join();
    wake_source.reset();
    pods.clear();
  }

  const config::DaemonConfig& config() const { return options.config; }
  spec::PodPaths paths_of(const Pod& pod) const {
    return spec::pod_paths(options.config.host.runtime_dir, pod.record.name);
  }

  // The host defaults with this pod's network and KBS URL: what its VM and init-data are
  // built from.
  Result<spec::HostDefaults> host_for(const store::PodRecord& record) const {
    spec::HostDefaults host = options.config.host;
    const net::Lease lease = lease_of(record);
    CONFPOD_ASSIGN_OR_RETURN(host.network, networking->guest_network(lease));
    host.kbs_guest_url = networking->kbs_url(lease);
    return host;
  }

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

  Status setup_wake() {
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return make_error("pods.io", std::string("eventfd: ") + std::strerror(errno));
    wake_fd.reset(fd);
    sd_event_source* source = nullptr;
    int r = sd_event_add_io(event, &source, fd, EPOLLIN, &Impl::on_wake, this);
    if (r < 0) return make_error("pods.io", std::string("sd_event_add_io: ") + std::strerror(-r));
    wake_source.reset(source);
    return ok_status();
  }

  // Every nftables change in the namespace (ours too) makes Networking check its tables, so
  // a flush by someone else is undone at once rather than at the next pod change. Without
  // CAP_NET_ADMIN there is nothing to subscribe to and no table of ours to keep.
  void watch_nftables() {
    auto monitor = net::NftMonitor::open();
    if (!monitor.ok()) return;
    sd_event_source* source = nullptr;
    if (sd_event_add_io(event, &source, monitor->fd(), EPOLLIN, &Impl::on_nft_change, this) < 0) {
      log_warning("cannot watch nftables changes", {});
      return;
    }
    nft_monitor.emplace(std::move(*monitor));
    nft_watch.reset(source);
  }

  static int on_nft_change(sd_event_source*, int, std::uint32_t, void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    if (!self->nft_monitor->drain()) return 0;
    Status kept = self->networking->verify_firewall();
    if (!kept.ok())
      log_error("cannot restore the nftables tables", {{"error", kept.error().describe()}});
    return 0;
  }

  // Runs `work` on a new thread; the closure it returns runs on the loop thread.
  Status run_job(std::function<std::function<void()>()> work) {
    std::uint64_t id = next_job_id++;
    std::lock_guard lock(mutex);
    try {
      threads.emplace(id, std::thread([this, id, work = std::move(work)]() {
                        std::function<void()> completion = work();
                        {
                          std::lock_guard inner(mutex);
                          posted.emplace_back(id, std::move(completion));
                        }
                        std::uint64_t one = 1;
                        (void)!::write(wake_fd.get(), &one, sizeof one);
                      }));
    } catch (const std::system_error& e) {
      return make_error("pods.io", std::string("cannot start a worker thread: ") + e.what());
    }
    return ok_status();
  }

  // Runs `fn` on the loop thread soon; callable from any thread (a GuestLink's).
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mutex);
      posted.emplace_back(0, std::move(fn));  // job id 0: no worker thread to join
    }
    std::uint64_t one = 1;
    (void)!::write(wake_fd.get(), &one, sizeof one);
  }

  // The agent channel dropped the guest (GuestLink: malformed or oversize frames, a flood, no
  // hello): a VM nobody can talk to is no pod. Kill it; it ends failed, and its restart
  // policy applies.
  void guest_violation(const std::string& name, std::uint64_t id, const std::string& reason) {
    Pod* pod = find(name, id);
    if (pod == nullptr || !pod->sup || pod->job || pod->stop_requested) return;
    if (!pod->pidfd) {
      log_error("guest dropped, but its VM cannot be signalled",
                {{"pod", name}, {"reason", reason}});
      return;
    }
    log_error(
        "guest dropped: pod fails",
        {{"pod", name}, {"pod_id", pod->log_id}, {"tee", pod->record.tee}, {"reason", reason}});
    pod->failure_reason = reason;
    send_sigkill(*pod);
  }

  static int on_wake(sd_event_source*, int fd, std::uint32_t, void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    std::uint64_t count = 0;
    (void)!::read(fd, &count, sizeof count);
    std::vector<std::pair<std::uint64_t, std::function<void()>>> ready;
    std::vector<std::thread> finished;
    {
      std::lock_guard lock(self->mutex);
      ready.swap(self->posted);
      for (auto& [id, completion] : ready) {
        auto it = self->threads.find(id);
        if (it != self->threads.end()) {
          finished.push_back(std::move(it->second));
          self->threads.erase(it);
        }
      }
    }
    // Each thread posted as its last act: joining returns at once.
    for (auto& thread : finished) thread.join();
    for (auto& [id, completion] : ready) completion();
    return 0;
  }

  // --- state changes ---------------------------------------------------------------------------

  // Writes `next` to the store, then makes it the pod's record and tells the listener. When
  // the write fails nothing changes and the error is returned, unless `reality` (the VM
  // really started or exited): then memory follows reality and the failure is logged.
  Status commit(Pod& pod, store::PodRecord next, unsigned changes, bool reality) {
    Status written = store.update_pod(next);
    if (!written.ok()) {
      log_error("store write failed",
                {{"pod", pod.record.name}, {"error", written.error().describe()}});
      if (!reality) return written;
    }
    pod.record = std::move(next);
    if (listener != nullptr && changes != 0) listener->pod_changed(pod.record, changes);
    if (changes != 0)
      for (Listener* l : more_listeners) l->pod_changed(pod.record, changes);
    return written.ok() ? ok_status() : written;
  }

  Status set_state(Pod& pod, store::PodState state, bool reality) {
    if (pod.record.state == state) return ok_status();
    store::PodRecord next = pod.record;
    next.state = state;
    return commit(pod, std::move(next), kChangeState, reality);
  }

  // --- measurement ---------------------------------------------------------------------------

  // Stores the launch plan's measurement, when it changed (new firmware, kernel, ...), before
  // anyone hears of the start.
  Status remeasure(Pod& pod, std::string measurement) {
    if (measurement == pod.record.measurement) return ok_status();
    log_info("pod measurement changed",
             {{"pod", pod.record.name}, {"from", pod.record.measurement}, {"to", measurement}});
    store::PodRecord next = pod.record;
    next.measurement = std::move(measurement);
    return commit(pod, std::move(next), kChangeMeasurement, false);
  }

  // --- start -------------------------------------------------------------------------------

  void begin_start(Pod& pod, Manager::Done done) {
    if (!pod.spec) {
      finish(done, make_error("spec.invalid", "the stored spec of pod " + pod.record.name +
                                                  " no longer parses: " + pod.spec_error));
      return;
    }
    if (options.config.host.kernel.empty() || options.config.host.initrd.empty())
      return finish(done, make_error("pods.no_guest_image",
                                     "pod " + pod.record.name +
                                         " cannot start: no guest image (guest_kernel and "
                                         "guest_initrd in confpod.toml, or both empty for "
                                         "confpodd to build one; see its log)"));
    auto host = host_for(pod.record);
    if (!host.ok()) return finish(done, host.take_error());
    auto plan = plan_launch(*pod.spec, *host, measurer);
    if (!plan.ok()) {
      log_error("pod not started", {{"pod", pod.record.name}, {"error", plan.error().describe()}});
      return finish(done, plan.take_error());
    }
    spec::PodPaths paths = paths_of(pod);
    std::error_code ec;
    std::filesystem::create_directories(paths.dir, ec);
    if (ec || ::chmod(paths.dir.c_str(), 0700) != 0) {
      return finish(done, make_error("pods.io", "cannot create " + paths.dir + ": " +
                                                    (ec ? ec.message() : std::strerror(errno))));
    }
    Status measured = remeasure(pod, plan->measurement);
    if (!measured.ok()) {
      log_error("pod not started",
                {{"pod", pod.record.name}, {"error", measured.error().describe()}});
      return finish(done, measured);
    }
    vmm::SupervisorOptions start_options;
    start_options.argv = std::move(plan->argv);
    start_options.qmp_socket = plan->vm.qmp_socket;
    start_options.pidfile = plan->vm.pidfile;
    start_options.log_file = qemu_log_path(paths);
    start_options.qmp_timeout = options.qmp_timeout;

    // The pod's tap on its bridge, and the firewall, before QEMU opens the tap.
    if (Status wired = networking->prepare(pod.record.name); !wired.ok()) {
      log_error("pod not started", {{"pod", pod.record.name}, {"error", wired.error().describe()}});
      return finish(done, wired);
    }
    Status starting = set_state(pod, store::PodState::kStarting, false);
    if (!starting.ok()) {
      networking->vm_exited(pod.record.name);
      return finish(done, starting);
    }
    pod.job = true;
    pod.sigkill_sent = false;
    pod.run_since = SteadyClock::now();
    pod.start_waiters.push_back(std::move(done));
    log_info("starting pod", {{"pod", pod.record.name},
                              {"pod_id", pod.log_id},
                              {"tee", pod.record.tee},
                              {"message_id", kMessagePodStarting}});
    crash_point("start.starting");

    std::uint64_t id = pod.id;
    std::string name = pod.record.name;
    Status queued = run_job([this, id, name, start_options]() -> std::function<void()> {
      auto result =
          std::make_shared<Result<vmm::Supervisor>>(vmm::Supervisor::start(start_options));
      return [this, id, name, result]() { finish_start(name, id, std::move(*result)); };
    });
    if (!queued.ok()) finish_start(name, id, queued.take_error());
  }

  void finish_start(const std::string& name, std::uint64_t id, Result<vmm::Supervisor> started) {
    Pod* pod = find(name, id);
    if (pod == nullptr) {
      // Removed meanwhile (cannot happen: Remove waits for the start); never leak the VM.
      if (started.ok()) (void)started->kill();
      return;
    }
    pod->job = false;
    if (!started.ok()) {
      Error error = started.take_error();
      log_error("pod start failed", {{"pod", name},
                                     {"pod_id", pod->log_id},
                                     {"tee", pod->record.tee},
                                     {"error", error.describe()},
                                     {"message_id", kMessagePodStartFailed}});
      append_to_file(qemu_log_path(paths_of(*pod)),
                     "confpodd: start failed: " + error.describe() + "\n");
      store::PodRecord next = pod->record;
      next.state = store::PodState::kFailed;
      next.exit_status = -1;
      next.exit_reason = "start failed: " + error.describe();
      (void)commit(*pod, std::move(next), kChangeState | kChangeExitStatus, true);
      finish_all(pod->start_waiters, error);
      after_exit(*pod);
      return;
    }
    pod->sup.emplace(std::move(*started));
    crash_point("start.exec");
    running(*pod, true);
  }

  // The supervisor is in pod.sup: watch it and announce "running".
  void running(Pod& pod, bool fresh_start) {
    if (pod.spec) {
      GuestLinkOptions link_options;
      spec::PodPaths paths = paths_of(pod);
      link_options.socket_path = paths.agent_socket;
      link_options.dir = paths.dir;
      auto host = host_for(pod.record);
      link_options.init_data = host.ok() ? spec::init_data_text(*pod.spec, *host) : std::string();
      link_options.reattach = !fresh_start;
      link_options.hello_timeout = options.agent_hello_timeout;
      link_options.on_violation = [this, name = pod.record.name,
                                   id = pod.id](const std::string& reason) {
        post([this, name, id, reason] { guest_violation(name, id, reason); });
      };
      pod.link = std::make_unique<GuestLink>(std::move(link_options));
    }
    int fd = open_pidfd(pod.sup->pid());
    if (fd >= 0) {
      pod.pidfd.reset(fd);
      sd_event_source* source = nullptr;
      int r = sd_event_add_io(event, &source, fd, EPOLLIN, &Impl::on_pidfd, &pod);
      if (r >= 0) pod.exit_watch.reset(source);
    }
    if (!pod.exit_watch) {
      log_error("cannot watch QEMU exit", {{"pod", pod.record.name}});
    }
    store::PodRecord next = pod.record;
    next.state = store::PodState::kRunning;
    unsigned changes = kChangeState;
    if (fresh_start) {
      next.started_at_us = now_realtime_us();
      changes |= kChangeStartedAt;
    }
    pod.run_since = SteadyClock::now();
    if (next != pod.record) (void)commit(pod, std::move(next), changes, true);
    log_info("pod running", {{"pod", pod.record.name},
                             {"pod_id", pod.log_id},
                             {"tee", pod.record.tee},
                             {"pid", std::to_string(pod.sup->pid())},
                             {"message_id", kMessagePodRunning}});
    finish_all(pod.start_waiters, ok_status());
    if (pod.kill_pending) {
      pod.kill_pending = false;
      send_sigkill(pod);
    }
    // Our pidfd was opened after the supervisor's: if QEMU is still alive now, ours names
    // the same process; if it is already gone, handle the exit here (a recycled pid would
    // never make our pidfd readable).
    auto exited = pod.sup->poll_exit();
    if (!exited.ok()) {
      handle_exit(pod, vmm::ExitInfo{});
    } else if (exited->has_value()) {
      handle_exit(pod, **exited);
    }
  }

  // --- exit ----------------------------------------------------------------------------------

  static int on_pidfd(sd_event_source* source, int, std::uint32_t, void* userdata) {
    auto* pod = static_cast<Pod*>(userdata);
    Impl* self = pod->impl;
    if (pod->job || !pod->sup) {
      // A worker owns the supervisor (stop in progress): its completion reports the exit.
      sd_event_source_set_enabled(source, SD_EVENT_OFF);
      return 0;
    }
    auto exited = pod->sup->poll_exit();
    if (!exited.ok()) {
      log_warning("QEMU exit not classified",
                  {{"pod", pod->record.name}, {"error", exited.error().describe()}});
      self->handle_exit(*pod, vmm::ExitInfo{});
    } else if (exited->has_value()) {
      self->handle_exit(*pod, **exited);
    }
    return 0;
  }

  void send_sigkill(Pod& pod) {
    pid_t pid = pod.sup ? pod.sup->pid() : -1;
    if (pod.pidfd) {
      // Only a signal actually sent makes the exit a kill (not one asked for after the VM
      // had already gone, during the drain).
      pod.sigkill_sent = true;
      // QEMU leads its own process group (Supervisor::start): kill its helpers too.
      if (pid > 0 && ::getpgid(pid) == pid) ::kill(-pid, SIGKILL);
      (void)pidfd_signal(pod.pidfd.get(), SIGKILL);
    }
  }

  void handle_exit(Pod& pod, const vmm::ExitInfo& info) {
    pod.exit_watch.reset();
    pod.pidfd.reset();
    pod.sup.reset();
    if (!pod.link) return finish_exit(pod, info, std::nullopt);
    // The agent's last words (how the containers ended) may still be in the channel: drain
    // them on a worker, not on the loop every other pod and caller shares. Until then the pod
    // is busy (a Stop waits, a Start is refused, a Kill or forced Remove is noted).
    auto link = std::shared_ptr<GuestLink>(std::move(pod.link));
    pod.job = true;
    const std::uint64_t id = pod.id;
    const std::string name = pod.record.name;
    Status queued = run_job([this, id, name, info, link]() -> std::function<void()> {
      link->drain(std::chrono::milliseconds(2000));
      std::optional<std::int64_t> status = link->pod_exit_status();
      std::string reason = link->pod_exit_reason();
      return [this, id, name, info, status, reason]() {
        Pod* pod = find(name, id);
        if (pod == nullptr) return;
        pod->job = false;
        finish_exit(*pod, info, status, reason);
      };
    });
    if (!queued.ok()) {
      link->drain(std::chrono::milliseconds(2000));
      pod.job = false;
      finish_exit(pod, info, link->pod_exit_status(), link->pod_exit_reason());
    }
  }

  // The VM is gone and the agent's channel drained: the pod's final state.
  void finish_exit(Pod& pod, const vmm::ExitInfo& info, std::optional<std::int64_t> agent_status,
                   const std::string& agent_reason = "") {
    std::int64_t status = exit_status_of(info);
    if (status == -1 && pod.sigkill_sent) status = 128 + SIGKILL;
    bool clean = info.cause == vmm::ExitCause::kGuestShutdown;
    // The agent's word on how the containers ended beats QEMU's (a guest that powers off
    // after a failed container is a clean QEMU exit but a failed pod).
    if (agent_status && !pod.sigkill_sent) {
      status = *agent_status;
      clean = *agent_status == 0;
    }
    store::PodRecord next = pod.record;
    next.state = pod.stop_requested || clean ? store::PodState::kExited : store::PodState::kFailed;
    if (!pod.failure_reason.empty()) next.state = store::PodState::kFailed;
    next.exit_status = status;
    if (!pod.failure_reason.empty())
      next.exit_reason = pod.failure_reason;
    else if (info.cause == vmm::ExitCause::kGuestPanic)
      next.exit_reason = "guest kernel panic";
    else if (agent_status && !pod.sigkill_sent)
      next.exit_reason = agent_reason;
    else
      next.exit_reason.clear();
    log_info("pod exited", {{"pod", pod.record.name},
                            {"pod_id", pod.log_id},
                            {"tee", pod.record.tee},
                            {"state", store::to_string(next.state)},
                            {"message_id", kMessagePodExited},
                            {"cause", vmm::to_string(info.cause)},
                            {"status", std::to_string(status)},
                            {"requested", pod.stop_requested ? "yes" : "no"},
                            {next.exit_reason.empty() ? "" : "reason", next.exit_reason}});
    pod.failure_reason.clear();
    (void)commit(pod, std::move(next), kChangeState | kChangeExitStatus, true);
    after_exit(pod);
  }

  // The pod no longer runs (exited, failed, or never started): answer whoever waited, then
  // remove it or apply its restart policy.
  void after_exit(Pod& pod) {
    networking->vm_exited(pod.record.name);
    bool requested = pod.stop_requested;
    pod.stop_requested = false;
    pod.kill_pending = false;
    finish_all(pod.exit_waiters, ok_status());
    if (pod.remove_after_exit) {
      pod.remove_after_exit = false;
      auto waiters = std::move(pod.remove_waiters);
      pod.remove_waiters.clear();
      remove(pod, waiters);  // `pod` is gone after this
      return;
    }
    if (!requested) maybe_restart(pod);
  }

  // --- restart policy -----------------------------------------------------------------------

  void maybe_restart(Pod& pod) {
    if (!pod.spec) return;
    spec::RestartPolicy policy = pod.spec->restart;
    bool failed = pod.record.state == store::PodState::kFailed;
    if (policy == spec::RestartPolicy::kNo) return;
    if (policy == spec::RestartPolicy::kOnFailure && !failed) return;
    if (SteadyClock::now() - pod.run_since >= options.restart_reset_after) pod.quick_failures = 0;
    auto delay = options.restart_delay;
    for (unsigned i = 0; i < pod.quick_failures && delay < options.restart_delay_max; ++i)
      delay *= 2;
    delay = std::min(delay, options.restart_delay_max);
    pod.quick_failures = std::min(pod.quick_failures + 1, 32u);
    sd_event_source* source = nullptr;
    auto usec = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(delay).count());
    int r = sd_event_add_time_relative(event, &source, CLOCK_MONOTONIC, usec, 0,
                                       &Impl::on_restart_timer, &pod);
    if (r < 0) {
      log_error("cannot schedule restart",
                {{"pod", pod.record.name}, {"error", std::strerror(-r)}});
      return;
    }
    pod.restart_timer.reset(source);
    log_info("restart scheduled", {{"pod", pod.record.name},
                                   {"policy", spec::to_string(policy)},
                                   {"delay_ms", std::to_string(delay.count())}});
  }

  static int on_restart_timer(sd_event_source*, std::uint64_t, void* userdata) {
    auto* pod = static_cast<Pod*>(userdata);
    pod->restart_timer.reset();
    if (pod->job || is_active(pod->record.state)) return 0;
    pod->impl->begin_start(*pod, nullptr);
    return 0;
  }

  // --- stop, kill, remove ----------------------------------------------------------------------

  Status begin_stop(Pod& pod) {
    Status stopping = set_state(pod, store::PodState::kStopping, false);
    if (!stopping.ok()) return stopping;
    pod.stop_requested = true;
    if (pod.exit_watch) sd_event_source_set_enabled(pod.exit_watch.get(), SD_EVENT_OFF);
    pod.job = true;
    auto sup = std::make_shared<vmm::Supervisor>(std::move(*pod.sup));
    pod.sup.reset();
    auto grace =
        std::chrono::milliseconds(std::chrono::seconds(options.config.stop_timeout_seconds));
    std::uint64_t id = pod.id;
    std::string name = pod.record.name;
    log_info("stopping pod", {{"pod", name},
                              {"pod_id", pod.log_id},
                              {"tee", pod.record.tee},
                              {"message_id", kMessagePodStopping}});
    crash_point("stop.stopping");
    Status queued = run_job([this, id, name, sup, grace]() -> std::function<void()> {
      auto result = std::make_shared<Result<vmm::ExitInfo>>(sup->stop(grace));
      crash_point("stop.exited");
      return [this, id, name, sup, result]() { finish_stop(name, id, sup, *result); };
    });
    if (!queued.ok()) finish_stop(name, id, sup, queued.take_error());
    return ok_status();
  }

  void finish_stop(const std::string& name, std::uint64_t id,
                   const std::shared_ptr<vmm::Supervisor>& sup,
                   const Result<vmm::ExitInfo>& result) {
    Pod* pod = find(name, id);
    if (pod == nullptr) return;
    pod->job = false;
    if (result.ok()) {
      handle_exit(*pod, *result);
      return;
    }
    // The supervisor could neither power it down nor kill it: keep watching and kill again.
    log_error("pod stop failed", {{"pod", name}, {"error", result.error().describe()}});
    pod->sup.emplace(std::move(*sup));
    if (pod->exit_watch) sd_event_source_set_enabled(pod->exit_watch.get(), SD_EVENT_ON);
    send_sigkill(*pod);
  }

  // Kill whatever runs; the exit (or the end of the start) finishes the job.
  void kill_active(Pod& pod) {
    pod.stop_requested = true;
    if (pod.job && pod.record.state == store::PodState::kStarting) {
      pod.kill_pending = true;
      return;
    }
    send_sigkill(pod);
  }

  void remove(Pod& pod, std::vector<Manager::Done>& waiters) {
    Status removed = store.remove_pod(pod.record.name);
    if (!removed.ok() && removed.error().code != "store.not_found") {
      finish_all(waiters, removed);  // still there: its restart policy still applies
      return;
    }
    pod.restart_timer.reset();
    crash_point("remove.deleted");
    if (Status unwired = networking->remove_pod(pod.record.name); !unwired.ok())
      log_error("cannot remove the pod's network",
                {{"pod", pod.record.name}, {"error", unwired.error().describe()}});
    if (listener != nullptr) listener->pod_removed(pod.record);
    for (Listener* l : more_listeners) l->pod_removed(pod.record);
    spec::PodPaths paths = paths_of(pod);
    std::error_code ec;
    std::filesystem::remove_all(paths.dir, ec);
    if (ec) log_warning("cannot remove runtime dir", {{"dir", paths.dir}, {"error", ec.message()}});
    log_info("pod removed", {{"pod", pod.record.name},
                             {"pod_id", pod.log_id},
                             {"tee", pod.record.tee},
                             {"message_id", kMessagePodRemoved}});
    pods.erase(pod.record.name);
    finish_all(waiters, ok_status());
  }

  // A QEMU still running from `paths` (our pidfile, its command line naming our QMP socket),
  // killed with its process group without asking QMP (which may be what hangs). True when one
  // was found and signalled.
  static bool kill_stray_qemu(const spec::PodPaths& paths) {
    auto pid = vmm::detail::read_pidfile(paths.pidfile);
    if (!pid.ok() || *pid <= 1) return false;
    if (!vmm::detail::check_qemu_identity("/proc", *pid, paths.qmp_socket).ok()) return false;
    if (::getpgid(*pid) == *pid) ::kill(-*pid, SIGKILL);
    return ::kill(*pid, SIGKILL) == 0;
  }

  // Runtime directories of pods the store does not hold: left by a crash between a Remove's
  // store write and its clean-up. A QEMU still serving one (our pidfile, its command line
  // naming our QMP socket) belongs to no pod any more and is killed, never left unaccounted.
  void sweep_runtime_dirs() {
    const std::string root = spec::pod_paths(options.config.host.runtime_dir, "").dir;
    std::error_code ec;
    std::vector<std::string> stale;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
      std::string name = entry.path().filename().string();
      if (entry.is_directory(ec) && find(name) == nullptr) stale.push_back(std::move(name));
    }
    for (const std::string& name : stale) {
      spec::PodPaths paths = spec::pod_paths(options.config.host.runtime_dir, name);
      if (kill_stray_qemu(paths)) log_warning("killed the QEMU of a removed pod", {{"pod", name}});
      std::filesystem::remove_all(paths.dir, ec);
      if (ec)
        log_warning("cannot remove runtime dir", {{"dir", paths.dir}, {"error", ec.message()}});
      else
        log_info("removed the runtime dir of a removed pod", {{"pod", name}});
    }
  }

  Pod& add_pod(store::PodRecord record) {
    auto pod = std::make_unique<Pod>();
    pod->id = next_pod_id++;
    pod->impl = this;
    auto parsed = spec::parse_pod_spec(record.spec_toml);
    if (parsed.ok()) {
      pod->spec = std::move(*parsed);
    } else {
      pod->spec_error = parsed.error().describe();
    }
    pod->record = std::move(record);
    pod->log_id = pod_log_id(pod->record);
    Pod& ref = *pod;
    pods[ref.record.name] = std::move(pod);
    return ref;
  }
};

// ---------------------------------------------------------------------------------------------

Manager::Manager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Manager::~Manager() = default;

Result<std::unique_ptr<Manager>> Manager::create(sd_event* event, ManagerOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.config.state_dir, ec);
  if (ec) {
    return make_error("pods.io",
                      "cannot create state_dir " + options.config.state_dir + ": " + ec.message());
  }
  std::string pods_dir = options.config.host.runtime_dir + "/pods";
  std::filesystem::create_directories(pods_dir, ec);
  if (ec) return make_error("pods.io", "cannot create " + pods_dir + ": " + ec.message());
  // The runtime directory holds every pod's QMP socket: full control of its VM.
  ::chmod(pods_dir.c_str(), 0700);
  CONFPOD_ASSIGN_OR_RETURN(store::Store store,
                           store::Store::open(options.config.state_dir + "/confpod.db"));
  auto impl = std::make_unique<Impl>(event, std::move(options), std::move(store));
  CONFPOD_ASSIGN_OR_RETURN(impl->networking,
                           net::Networking::create(networking_options(impl->options), impl->store));
  CONFPOD_TRY(impl->setup_wake());
  return std::unique_ptr<Manager>(new Manager(std::move(impl)));
}

void Manager::set_listener(Listener* listener) { impl_->listener = listener; }

void Manager::add_listener(Listener* listener) { impl_->more_listeners.push_back(listener); }

void Manager::remove_listener(Listener* listener) { std::erase(impl_->more_listeners, listener); }

const config::DaemonConfig& Manager::config() const { return impl_->config(); }

Status Manager::recover() {
  CONFPOD_ASSIGN_OR_RETURN(auto records, impl_->store.list_pods());
  std::vector<Pod*> active;
  std::vector<net::PodNet> networked;
  for (auto& record : records) {
    Pod& pod = impl_->add_pod(std::move(record));
    if (!pod.spec) {
      log_warning("stored spec does not parse",
                  {{"pod", pod.record.name}, {"error", pod.spec_error}});
    }
    if (is_active(pod.record.state)) active.push_back(&pod);
    networked.push_back({pod.record.name, lease_of(pod.record),
                         pod.spec ? pod.spec->ports : std::vector<spec::Port>(),
                         is_active(pod.record.state)});
  }
  // The nftables table and the taps, as the store says they must be (before re-attaching:
  // a pod whose VM is gone loses its tap in after_exit).
  CONFPOD_TRY(impl_->networking->recover(networked));
  impl_->sweep_runtime_dirs();
  impl_->watch_nftables();
  for (Pod* pod : active) {
    spec::PodPaths paths = impl_->paths_of(*pod);
    bool was_stopping = pod->record.state == store::PodState::kStopping;
    auto attached =
        vmm::Supervisor::attach(paths.pidfile, paths.qmp_socket, impl_->options.attach_timeout);
    if (!attached.ok()) {
      log_warning("cannot re-attach pod",
                  {{"pod", pod->record.name}, {"error", attached.error().describe()}});
      // A QEMU that is there but does not answer (QMP hung) would run on unaccounted for:
      // the pod ends here, so its VM does too.
      if (Impl::kill_stray_qemu(paths))
        log_warning("killed the QEMU that did not answer", {{"pod", pod->record.name}});
      // Its VM ended while confpodd was not there: a stop that was under way ended as asked
      // (how, nobody saw: status -1), anything else failed.
      store::PodRecord next = pod->record;
      next.state = was_stopping ? store::PodState::kExited : store::PodState::kFailed;
      next.exit_status = -1;
      (void)impl_->commit(*pod, std::move(next), kChangeState | kChangeExitStatus, true);
      pod->stop_requested = was_stopping;
      impl_->after_exit(*pod);
      continue;
    }
    log_info("re-attached pod", {{"pod", pod->record.name},
                                 {"pod_id", pod->log_id},
                                 {"tee", pod->record.tee},
                                 {"pid", std::to_string(attached->pid())},
                                 {"message_id", kMessagePodReattached}});
    pod->sup.emplace(std::move(*attached));
    std::uint64_t id = pod->id;
    std::string name = pod->record.name;
    impl_->running(*pod, false);
    // The daemon died during a stop: finish it.
    pod = impl_->find(name, id);
    if (was_stopping && pod != nullptr && pod->sup && !pod->job) {
      Status stopping = impl_->begin_stop(*pod);
      if (!stopping.ok()) log_error("cannot resume stop", {{"pod", name}});
    }
  }
  return ok_status();
}

Result<store::PodRecord> Manager::create_pod(std::string_view spec_toml) {
  if (spec_toml.size() > spec::kMaxSpecBytes) {
    return make_error("spec.invalid", "spec is " + std::to_string(spec_toml.size()) +
                                          " bytes, more than the limit of " +
                                          std::to_string(spec::kMaxSpecBytes) + " bytes (1 MiB)");
  }
  CONFPOD_ASSIGN_OR_RETURN(spec::PodSpec spec, spec::parse_pod_spec(spec_toml));
  CONFPOD_TRY(vmm::check_tee_available(impl_->options.probe, spec.tee,
                                       impl_->options.config.host.allow_insecure_tee));
  if (impl_->find(spec.name) != nullptr)
    return make_error("pods.exists", "a pod named " + spec.name + " already exists");
  // Its network, ports and address; the stored spec names the network it got.
  CONFPOD_ASSIGN_OR_RETURN(net::Lease lease,
                           impl_->networking->reserve(spec.name, spec.network, spec.ports));
  spec.network = lease.network;
  store::PodRecord record;
  record.network = lease.network;
  record.address = lease.address;
  record.address6 = lease.address6;
  record.mac = lease.mac;
  std::string measurement;
  if (spec.tee != vmm::Tee::kNone) {
    // The VM it will be launched as: the launch plan begin_start hands QEMU (the same
    // firmware, kernel, initrd, command line, vCPUs, CPU model and init-data with its network).
    CONFPOD_ASSIGN_OR_RETURN(spec::HostDefaults host, impl_->host_for(record));
    CONFPOD_ASSIGN_OR_RETURN(LaunchPlan plan, plan_launch(spec, host, impl_->measurer));
    measurement = std::move(plan.measurement);
  }
  record.name = spec.name;
  record.tee = vmm::to_string(spec.tee);
  record.spec_toml = spec::to_toml(spec);
  record.state = store::PodState::kCreated;
  record.created_at_us = now_realtime_us();
  record.measurement = measurement;
  Status inserted = impl_->store.insert_pod(record);
  if (!inserted.ok()) {
    if (inserted.error().code == "store.exists")
      return make_error("pods.exists", "a pod named " + spec.name + " already exists");
    return inserted.take_error();
  }
  crash_point("create.stored");
  // Its published ports in the firewall; nothing half-made stays when that fails.
  if (Status wired = impl_->networking->add_pod(spec.name, lease, spec.ports); !wired.ok()) {
    if (Status undone = impl_->store.remove_pod(spec.name); !undone.ok())
      log_error("cannot undo CreatePod",
                {{"pod", spec.name}, {"error", undone.error().describe()}});
    return wired.take_error();
  }
  Pod& pod = impl_->add_pod(record);
  log_info("pod created", {{"pod", record.name},
                           {"pod_id", pod.log_id},
                           {"tee", record.tee},
                           {"measurement", record.measurement},
                           {"message_id", kMessagePodCreated}});
  if (impl_->listener != nullptr) impl_->listener->pod_added(pod.record);
  for (Listener* l : impl_->more_listeners) l->pod_added(pod.record);
  return record;
}

void Manager::start_pod(const std::string& name, Done done) {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return Impl::finish(done, not_found(name));
  if (pod->job || is_active(pod->record.state))
    return Impl::finish(done, invalid_state(pod->record, "it is already started"));
  pod->restart_timer.reset();
  pod->quick_failures = 0;
  impl_->begin_start(*pod, std::move(done));
}

void Manager::stop_pod(const std::string& name, Done done) {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return Impl::finish(done, not_found(name));
  switch (pod->record.state) {
    case store::PodState::kRunning:
      if (!pod->job) {
        Status stopping = impl_->begin_stop(*pod);
        if (!stopping.ok()) return Impl::finish(done, stopping);
      } else {
        // The VM is gone and its channel is being drained: the pod ends as stopped and its
        // restart policy does not bring it back.
        pod->stop_requested = true;
      }
      pod->exit_waiters.push_back(std::move(done));
      return;
    case store::PodState::kStopping:
      pod->exit_waiters.push_back(std::move(done));
      return;
    case store::PodState::kStarting:
      return Impl::finish(done, invalid_state(pod->record, "stop it once it runs, or kill it"));
    default:
      if (pod->restart_timer) {
        // Not running, but about to be restarted: Stop cancels that.
        pod->restart_timer.reset();
        return Impl::finish(done, ok_status());
      }
      return Impl::finish(done, invalid_state(pod->record, "it does not run"));
  }
}

void Manager::kill_pod(const std::string& name, Done done) {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return Impl::finish(done, not_found(name));
  if (pod->job || is_active(pod->record.state)) {
    pod->exit_waiters.push_back(std::move(done));
    impl_->kill_active(*pod);
    return;
  }
  if (pod->restart_timer) {
    pod->restart_timer.reset();
    return Impl::finish(done, ok_status());
  }
  Impl::finish(done, invalid_state(pod->record, "it does not run"));
}

void Manager::remove_pod(const std::string& name, bool force, Done done) {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return Impl::finish(done, not_found(name));
  if (!pod->job && !is_active(pod->record.state)) {
    std::vector<Done> waiters;
    waiters.push_back(std::move(done));
    impl_->remove(*pod, waiters);
    return;
  }
  if (!force) {
    return Impl::finish(done, invalid_state(pod->record, "stop it first, or remove it with force"));
  }
  pod->remove_after_exit = true;
  pod->remove_waiters.push_back(std::move(done));
  impl_->kill_active(*pod);
}

const store::PodRecord* Manager::find(std::string_view name) const {
  Pod* pod = impl_->find(name);
  return pod == nullptr ? nullptr : &pod->record;
}

std::vector<const store::PodRecord*> Manager::list() const {
  std::vector<const store::PodRecord*> out;
  out.reserve(impl_->pods.size());
  for (const auto& [name, pod] : impl_->pods) out.push_back(&pod->record);
  return out;
}

std::size_t Manager::running_count() const {
  std::size_t n = 0;
  for (const auto& [name, pod] : impl_->pods)
    if (pod->record.state == store::PodState::kRunning) ++n;
  return n;
}

namespace {

// The container an exec or attach names, checked against the pod's spec.
Result<std::string> resolve_container(const store::PodRecord& record,
                                      const std::optional<spec::PodSpec>& spec,
                                      const std::string& container, bool empty_is_all) {
  if (!spec)
    return make_error("pods.invalid_state",
                      "the stored spec of pod " + record.name + " no longer parses");
  if (container.empty()) {
    if (empty_is_all) return std::string();
    for (const auto& c : spec->containers)
      if (!c.init) return c.name;
  }
  for (const auto& c : spec->containers)
    if (c.name == container) return container;
  return make_error("pods.no_container", "pod \"" + record.name + "\" has no container \"" +
                                             sanitize_utf8(container.substr(0, 64)) + "\"");
}

Status check_exec_command(const std::vector<std::string>& command) {
  if (command.empty()) return make_error("pods.invalid_exec", "the command is empty");
  if (command.size() > guest::kMaxInitArgs)
    return make_error("pods.invalid_exec",
                      "more than " + std::to_string(guest::kMaxInitArgs) + " arguments");
  for (const auto& arg : command) {
    if (arg.size() > guest::kMaxInitStringBytes)
      return make_error(
          "pods.invalid_exec",
          "an argument is longer than " + std::to_string(guest::kMaxInitStringBytes) + " bytes");
    if (arg.find('\0') != std::string::npos)
      return make_error("pods.invalid_exec", "an argument holds a NUL byte");
  }
  return ok_status();
}

// A relay and its thread; a thread the system cannot make is an error for this one call,
// not an exception through sd-bus.
Result<std::shared_ptr<ExecRelay>> make_relay(std::uint64_t id, UniqueFd relay_end,
                                              ExecRelay::SendToGuest send) {
  try {
    return std::make_shared<ExecRelay>(id, std::move(relay_end), std::move(send));
  } catch (const std::system_error& e) {
    return make_error("pods.io", std::string("cannot start a session thread: ") + e.what());
  }
}

}  // namespace

void Manager::exec_pod(const std::string& name, ExecRequest request, SessionDone done) {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return done(not_found(name));
  if (pod->record.state != store::PodState::kRunning || !pod->link)
    return done(invalid_state(pod->record, "exec needs a running pod"));
  auto container = resolve_container(pod->record, pod->spec, request.container, false);
  if (!container.ok()) return done(container.error());
  if (Status s = check_exec_command(request.command); !s.ok()) return done(s.error());
  auto pair = make_exec_socket_pair();
  if (!pair.ok()) return done(pair.error());
  GuestLink* link = pod->link.get();
  guest::HostMessage message;
  message.kind = guest::HostMessage::Kind::kExec;
  message.id = impl_->next_exec_id++;
  message.container = *container;
  message.command = std::move(request.command);
  message.tty = request.tty;
  message.stdin_open = true;
  message.rows = std::min(request.rows, 4096u);
  message.cols = std::min(request.cols, 4096u);
  auto relay = make_relay(message.id, std::move(pair->second),
                          [link](const guest::HostMessage& m) { return link->send(m); });
  if (!relay.ok()) return done(relay.error());
  // The client's end waits here for the agent's answer, which comes on the link's thread.
  auto client_end = std::make_shared<UniqueFd>(std::move(pair->first));
  auto shared_done = std::make_shared<SessionDone>(std::move(done));
  Impl* impl = impl_.get();
  log_info("exec requested", {{"pod", name},
                              {"pod_id", pod->log_id},
                              {"container", *container},
                              {"exec_id", std::to_string(message.id)}});
  Status sent = link->start_exec(
      message,
      [impl, client_end, shared_done](bool ok, const std::string& detail) {
        impl->post([client_end, shared_done, ok, detail] {
          if (ok)
            (*shared_done)(std::move(*client_end));
          else
            (*shared_done)(make_error("pods.exec_refused", "the pod's agent refused: " + detail));
        });
      },
      std::move(*relay));
  if (!sent.ok()) (*shared_done)(sent.error());
}

Result<UniqueFd> Manager::attach_pod(const std::string& name, const std::string& container) {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return not_found(name);
  if (pod->record.state != store::PodState::kRunning || !pod->link)
    return invalid_state(pod->record, "attach needs a running pod");
  CONFPOD_ASSIGN_OR_RETURN(std::string resolved,
                           resolve_container(pod->record, pod->spec, container, true));
  CONFPOD_ASSIGN_OR_RETURN(auto pair, make_exec_socket_pair());
  CONFPOD_ASSIGN_OR_RETURN(auto relay,
                           make_relay(0, std::move(pair.second), ExecRelay::SendToGuest()));
  CONFPOD_TRY(pod->link->attach(resolved, std::move(relay)));
  return std::move(pair.first);
}

Result<std::string> Manager::pod_log(const std::string& name, std::uint64_t max_bytes) const {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return not_found(name);
  return read_pod_log(impl_->paths_of(*pod), max_bytes);
}

Result<ReferenceValues> Manager::reference_values(std::string_view name) const {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return not_found(name);
  if (!pod->spec) {
    return make_error("spec.invalid", "the stored spec of pod " + pod->record.name +
                                          " no longer parses: " + pod->spec_error);
  }
  if (pod->spec->tee == vmm::Tee::kNone)
    return invalid_state(pod->record, "tee none has no hardware evidence to check");
  if (pod->record.measurement.empty())
    return invalid_state(pod->record, "it has no expected measurement yet (start it once)");
  CONFPOD_ASSIGN_OR_RETURN(spec::HostDefaults host, impl_->host_for(pod->record));
  // The launch plan's VM (the measurement is the stored one: nothing is hashed on this path,
  // and a firmware file gone since the start does not cut running pods off their secrets).
  CONFPOD_ASSIGN_OR_RETURN(vmm::VmConfig vm, plan_vm(*pod->spec, host));
  ReferenceValues values;
  values.tee = pod->spec->tee;
  values.measurement = pod->record.measurement;
  if (values.tee == vmm::Tee::kSnp) {
    values.init_data_digest = to_hex(vm.snp.host_data);
    values.snp_policy = vm.snp.policy;
  } else {
    values.init_data_digest = to_hex(vm.tdx.mrconfigid);
    values.tdx_attributes = vm.tdx.attributes;
  }
  return values;
}

Measurer::Stats Manager::measurement_stats() const { return impl_->measurer.stats(); }

Result<std::string> Manager::init_data(std::string_view name) const {
  Pod* pod = impl_->find(name);
  if (pod == nullptr) return not_found(name);
  if (!pod->spec) {
    return make_error("spec.invalid", "the stored spec of pod " + pod->record.name +
                                          " no longer parses: " + pod->spec_error);
  }
  CONFPOD_ASSIGN_OR_RETURN(spec::HostDefaults host, impl_->host_for(pod->record));
  return spec::init_data_text(*pod->spec, host);
}

net::Networking& Manager::networking() { return *impl_->networking; }
const net::Networking& Manager::networking() const { return *impl_->networking; }

}  // namespace confpod::pods
