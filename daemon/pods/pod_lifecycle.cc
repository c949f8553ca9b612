// The pod state machine (docs/daemon.md): created -> starting -> running -> stopping ->
// exited|failed, with the restart policy and removal. Every change goes to the store before
// anyone hears of it (commit).
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "attest/base/crash_point.h"
#include "daemon/pods/launch_plan.h"
#include "daemon/pods/log.h"
#include "daemon/pods/log_ids.h"
#include "daemon/pods/manager_impl.h"
#include "daemon/pods/pod_files.h"
#include "daemon/pods/pod_outcome.h"
#include "daemon/pods/runtime_dirs.h"
#include "daemon/spec/init_data.h"
#include "guest/protocol/messages.h"

namespace confpod::pods {
namespace {

std::uint64_t exit_poll_usec() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(kExitPollInterval).count());
}

// The libvirt exit poll's timer fires once more, kExitPollInterval from now.
void arm_exit_poll(sd_event_source* timer) {
  sd_event_source_set_time_relative(timer, exit_poll_usec());
  sd_event_source_set_enabled(timer, SD_EVENT_ONESHOT);
}

void append_to_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

}  // namespace

// The agent channel dropped the guest (GuestLink: malformed or oversize frames, a flood, no
// hello): a VM nobody can talk to is no pod. Kill it; it ends failed, and its restart
// policy applies.
void Manager::Impl::guest_violation(const std::string& name, std::uint64_t id,
                                    const std::string& reason) {
  Pod* pod = find(name, id);
  if (pod == nullptr || !pod->vm || pod->job || pod->stop_requested) return;
  if (!pod->pidfd && !pod->vm->is_libvirt()) {
    log_error("guest dropped, but its VM cannot be signalled", {{"pod", name}, {"reason", reason}});
    return;
  }
  log_error("guest dropped: pod fails",
            {{"pod", name}, {"pod_id", pod->log_id}, {"tee", pod->record.tee}, {"reason", reason}});
  pod->failure_reason = reason;
  send_sigkill(*pod);
}

// Writes `next` to the store, then makes it the pod's record and tells the listener. When
// the write fails nothing changes and the error is returned, unless `reality` (the VM
// really started or exited): then memory follows reality and the failure is logged.
Status Manager::Impl::commit(Pod& pod, store::PodRecord next, unsigned changes, bool reality) {
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

Status Manager::Impl::set_state(Pod& pod, store::PodState state, bool reality) {
  if (pod.record.state == state) return ok_status();
  store::PodRecord next = pod.record;
  next.state = state;
  return commit(pod, std::move(next), kChangeState, reality);
}

// Stores the launch plan's measurement, when it changed (new firmware, kernel, ...), before
// anyone hears of the start.
Status Manager::Impl::remeasure(Pod& pod, std::string measurement) {
  if (measurement == pod.record.measurement) return ok_status();
  log_info("pod measurement changed",
           {{"pod", pod.record.name}, {"from", pod.record.measurement}, {"to", measurement}});
  store::PodRecord next = pod.record;
  next.measurement = std::move(measurement);
  return commit(pod, std::move(next), kChangeMeasurement, false);
}

void Manager::Impl::begin_start(Pod& pod, Manager::Done done) {
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
  // QEMU would fail on it too, later and less clearly.
  if (pod.record.vsock_cid != 0 && !options.probe.dev_vhost_vsock)
    return finish(done,
                  make_error("pods.no_vsock",
                             "pod " + pod.record.name + " reaches its agent over vsock (CID " +
                                 std::to_string(pod.record.vsock_cid) +
                                 ") and this host has no /dev/vhost-vsock (modprobe vhost_vsock, "
                                 "then restart confpodd)"));
  auto host = host_for(pod.record);
  if (!host.ok()) return finish(done, host.take_error());
  auto plan = plan_launch(*pod.spec, *host, measurer);
  if (!plan.ok()) {
    log_error("pod not started", {{"pod", pod.record.name}, {"error", plan.error().describe()}});
    return finish(done, plan.take_error());
  }
  spec::PodPaths paths = paths_of(pod);
  std::optional<VmOwner> vm_owner;
  if (on_libvirt() && !options.config.libvirt_qemu_user.empty()) {
    auto owner = lookup_vm_owner(options.config.libvirt_qemu_user);
    if (!owner.ok()) return finish(done, owner.take_error());
    vm_owner = *owner;
  }
  if (Status prepared = prepare_pod_dirs(paths, vm_owner); !prepared.ok())
    return finish(done, prepared);
  Status measured = remeasure(pod, plan->measurement);
  if (!measured.ok()) {
    log_error("pod not started",
              {{"pod", pod.record.name}, {"error", measured.error().describe()}});
    return finish(done, measured);
  }
  vmm::SupervisorOptions start_options;
  start_options.argv = plan->argv;
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
  std::optional<std::string> libvirt_uri;
  if (on_libvirt()) libvirt_uri = options.config.libvirt_uri;
  Status queued = jobs->run([this, id, name, start_options, libvirt_uri,
                             vm = std::move(plan->vm)]() -> std::function<void()> {
    auto result =
        std::make_shared<Result<PodVm>>(libvirt_uri ? PodVm::start_libvirt(*libvirt_uri, name, vm)
                                                    : PodVm::start_qemu(start_options));
    return [this, id, name, result]() { finish_start(name, id, std::move(*result)); };
  });
  if (!queued.ok()) finish_start(name, id, queued.take_error());
}

void Manager::Impl::finish_start(const std::string& name, std::uint64_t id, Result<PodVm> started) {
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
  pod->vm.emplace(std::move(*started));
  crash_point("start.exec");
  running(*pod, true);
}

// The VM is in pod.vm: watch it and announce "running".
void Manager::Impl::running(Pod& pod, bool fresh_start) {
  if (pod.spec) {
    GuestLinkOptions link_options;
    spec::PodPaths paths = paths_of(pod);
    if (pod.record.vsock_cid != 0) {
      link_options.address =
          vmm::ChannelAddress::vsock(pod.record.vsock_cid, guest::kAgentVsockPort);
      link_options.agent_listens = true;
    } else {
      link_options.address = vmm::ChannelAddress::unix_socket(paths.agent_socket);
    }
    link_options.dir = paths.dir;
    auto host = host_for(pod.record);
    link_options.init_data = host.ok() ? spec::init_data_text(*pod.spec, *host) : std::string();
    link_options.reattach = !fresh_start;
    link_options.hello_timeout = options.agent_hello_timeout;
    link_options.on_violation = [this, name = pod.record.name,
                                 id = pod.id](const std::string& reason) {
      jobs->post([this, name, id, reason] { guest_violation(name, id, reason); });
    };
    pod.link = std::make_unique<GuestLink>(std::move(link_options));
  }
  watch_exit(pod);
  watch_qmp(pod);
  if (!pod.exit_watch) {
    log_error("cannot watch the VM's exit", {{"pod", pod.record.name}});
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
  log_info("pod running",
           {{"pod", pod.record.name},
            {"pod_id", pod.log_id},
            {"tee", pod.record.tee},
            {pod.vm->pid() ? "pid" : "", pod.vm->pid() ? std::to_string(*pod.vm->pid()) : ""},
            {pod.vm->is_libvirt() ? "vm" : "", pod.vm->describe()},
            {"message_id", kMessagePodRunning}});
  finish_all(pod.start_waiters, ok_status());
  if (pod.kill_pending) {
    pod.kill_pending = false;
    send_sigkill(pod);
  }
  // Our pidfd was opened after the supervisor's: if QEMU is still alive now, ours names
  // the same process; if it is already gone, handle the exit here (a recycled pid would
  // never make our pidfd readable).
  (void)exit_seen(pod);
}

void Manager::Impl::watch_exit(Pod& pod) {
  pod.exit_watch.reset();
  pod.pidfd.reset();
  sd_event_source* source = nullptr;
  if (auto pid = pod.vm->pid()) {
    int fd = open_pidfd(*pid);
    if (fd < 0) return;
    pod.pidfd.reset(fd);
    pod.qemu_pid = *pid;
    if (sd_event_add_io(event, &source, fd, EPOLLIN, &Impl::on_pidfd, &pod) >= 0)
      pod.exit_watch.reset(source);
    return;
  }
  if (sd_event_add_time_relative(event, &source, CLOCK_MONOTONIC, exit_poll_usec(), 0,
                                 &Impl::on_exit_poll, &pod) >= 0)
    pod.exit_watch.reset(source);
}

// After a stop that failed: the watch begin_stop paused goes on (the same pidfd, or the
// libvirt poll).
void Manager::Impl::resume_exit_watch(Pod& pod) {
  if (!pod.exit_watch) return watch_exit(pod);
  if (pod.pidfd) {
    sd_event_source_set_enabled(pod.exit_watch.get(), SD_EVENT_ON);
    return;
  }
  arm_exit_poll(pod.exit_watch.get());
}

int Manager::Impl::on_exit_poll(sd_event_source* source, std::uint64_t, void* userdata) {
  auto* pod = static_cast<Pod*>(userdata);
  if (pod->job || !pod->vm) return 0;  // a worker owns the VM: its completion reports the exit
  // Once it ended, `pod` may be gone (removed after its exit): touch it only while it runs.
  if (pod->impl->exit_seen(*pod)) arm_exit_poll(source);
  return 0;
}

// Asks the VM whether it ended and handles the exit if so (after which `pod` may be gone);
// true while it still runs.
bool Manager::Impl::exit_seen(Pod& pod) {
  auto exited = pod.vm->poll_exit();
  if (!exited.ok() && pod.vm->is_libvirt()) {
    // libvirtd unreachable (restarting?) is not the VM's end: keep asking; say so once.
    if (!pod.vm_unreachable)
      log_warning("cannot ask libvirt about the VM; asking again",
                  {{"pod", pod.record.name}, {"error", exited.error().describe()}});
    pod.vm_unreachable = true;
    return true;
  }
  if (pod.vm_unreachable) {
    log_info("libvirt answers about the VM again", {{"pod", pod.record.name}});
    pod.vm_unreachable = false;
  }
  if (!exited.ok()) {
    log_warning("VM exit not classified",
                {{"pod", pod.record.name}, {"error", exited.error().describe()}});
    handle_exit(pod, vmm::ExitInfo{});
    return false;
  }
  if (!exited->has_value()) return true;
  handle_exit(pod, **exited);
  return false;
}

void Manager::Impl::watch_qmp(Pod& pod) {
  pod.qmp_watch.reset();
  if (!pod.vm || pod.vm->qmp_fd() < 0 || pod.vm->qmp_closed()) return;
  sd_event_source* source = nullptr;
  if (sd_event_add_io(event, &source, pod.vm->qmp_fd(), EPOLLIN, &Impl::on_qmp, &pod) < 0) {
    log_warning("cannot watch QMP events", {{"pod", pod.record.name}});
    return;
  }
  pod.qmp_watch.reset(source);
}

int Manager::Impl::on_qmp(sd_event_source* source, int, std::uint32_t, void* userdata) {
  auto* pod = static_cast<Pod*>(userdata);
  if (pod->job || !pod->vm) {
    sd_event_source_set_enabled(source, SD_EVENT_OFF);
    return 0;
  }
  for (const auto& e : pod->vm->take_new_events()) pod->impl->log_vm_event(*pod, e);
  // End of file: QEMU is exiting; the pidfd reports it (and readable EOF would spin here).
  if (pod->vm->qmp_closed()) sd_event_source_set_enabled(source, SD_EVENT_OFF);
  return 0;
}

void Manager::Impl::log_vm_event(const Pod& pod, const vmm::QmpEvent& e) {
  static const std::set<std::string, std::less<>> kLogged = {
      "SHUTDOWN", "RESET", "STOP", "RESUME", "POWERDOWN", "SUSPEND", "WAKEUP", "MEMORY_FAILURE"};
  auto text = [&](const char* key) {
    auto it = e.data.is_object() ? e.data.find(key) : e.data.end();
    return it != e.data.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (e.name == "GUEST_PANICKED") {
    log_error("guest kernel panicked", {{"pod", pod.record.name},
                                        {"pod_id", pod.log_id},
                                        {"tee", pod.record.tee},
                                        {"action", text("action")},
                                        {"message_id", kMessageGuestPanicked}});
    return;
  }
  if (kLogged.count(e.name) == 0) return;  // RTC_CHANGE and the like: frequent, uninteresting
  const std::string reason = text("reason");
  log_info("VM event", {{"pod", pod.record.name},
                        {"pod_id", pod.log_id},
                        {"tee", pod.record.tee},
                        {"event", e.name},
                        {reason.empty() ? "" : "reason", reason},
                        {"message_id", kMessageVmEvent}});
}

int Manager::Impl::on_pidfd(sd_event_source* source, int, std::uint32_t, void* userdata) {
  auto* pod = static_cast<Pod*>(userdata);
  if (pod->job || !pod->vm) {
    // A worker owns the VM (stop in progress): its completion reports the exit.
    sd_event_source_set_enabled(source, SD_EVENT_OFF);
    return 0;
  }
  pod->impl->exit_seen(*pod);
  return 0;
}

void Manager::Impl::send_sigkill(Pod& pod) {
  // Only a kill actually sent makes the exit a kill (not one asked for after the VM had
  // already gone, during the drain). While a stop runs on a worker the VM is the worker's,
  // but the kill still goes out: through our pidfd, or to the domain by name.
  if (on_libvirt()) {
    if (!pod.exit_watch) return;  // nothing runs (or its exit is being handled)
    pod.sigkill_sent = true;
    // virDomainDestroy waits for QEMU to go (SIGTERM, SIGKILL seconds later if need be): on a
    // worker with a connection of its own, never on the loop. The exit poll (or the stop in
    // progress) then sees the domain shut off.
    Status queued = jobs->run([uri = options.config.libvirt_uri,
                               name = pod.record.name]() -> std::function<void()> {
      auto destroyed = destroy_libvirt_domain(uri, name);
      return [name, destroyed]() {
        if (!destroyed.ok())
          log_error("cannot kill the VM", {{"pod", name}, {"error", destroyed.error().describe()}});
      };
    });
    if (!queued.ok())
      log_error("cannot kill the VM",
                {{"pod", pod.record.name}, {"error", queued.error().describe()}});
    return;
  }
  if (!pod.pidfd) return;
  pod.sigkill_sent = true;
  Status sent = kill_qemu(pod.qemu_pid, pod.pidfd.get());
  if (!sent.ok())
    log_error("cannot kill the VM", {{"pod", pod.record.name}, {"error", sent.error().describe()}});
}

void Manager::Impl::handle_exit(Pod& pod, const vmm::ExitInfo& info) {
  pod.qmp_watch.reset();
  // What QEMU said last (GUEST_PANICKED, SHUTDOWN) when the exit was seen before it was read.
  if (pod.vm)
    for (const auto& e : pod.vm->take_new_events()) log_vm_event(pod, e);
  pod.exit_watch.reset();
  pod.pidfd.reset();
  pod.vm.reset();
  if (!pod.link) return finish_exit(pod, info, std::nullopt);
  // The agent's last words (how the containers ended) may still be in the channel: drain
  // them on a worker, not on the loop every other pod and caller shares. Until then the pod
  // is busy (a Stop waits, a Start is refused, a Kill or forced Remove is noted).
  auto link = std::shared_ptr<GuestLink>(std::move(pod.link));
  pod.job = true;
  const std::uint64_t id = pod.id;
  const std::string name = pod.record.name;
  Status queued = jobs->run([this, id, name, info, link]() -> std::function<void()> {
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
void Manager::Impl::finish_exit(Pod& pod, const vmm::ExitInfo& info,
                                std::optional<std::int64_t> agent_status,
                                const std::string& agent_reason) {
  ExitFacts facts;
  facts.vm = info;
  facts.agent_status = agent_status;
  facts.agent_reason = agent_reason;
  facts.sigkill_sent = pod.sigkill_sent;
  facts.stop_requested = pod.stop_requested;
  facts.failure_reason = pod.failure_reason;
  ExitOutcome outcome = exit_outcome(facts);
  const std::int64_t status = outcome.status;
  store::PodRecord next = pod.record;
  next.state = outcome.state;
  next.exit_status = outcome.status;
  next.exit_reason = std::move(outcome.reason);
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
void Manager::Impl::after_exit(Pod& pod) {
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

void Manager::Impl::maybe_restart(Pod& pod) {
  if (!pod.spec) return;
  const spec::RestartPolicy policy = pod.spec->restart;
  RestartTiming timing{options.restart_delay, options.restart_delay_max,
                       options.restart_reset_after};
  auto delay = restart_delay(policy, pod.record.state == store::PodState::kFailed,
                             SteadyClock::now() - pod.run_since, pod.quick_failures, timing);
  if (!delay) return;
  sd_event_source* source = nullptr;
  auto usec = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(*delay).count());
  int r = sd_event_add_time_relative(event, &source, CLOCK_MONOTONIC, usec, 0,
                                     &Impl::on_restart_timer, &pod);
  if (r < 0) {
    log_error("cannot schedule restart", {{"pod", pod.record.name}, {"error", std::strerror(-r)}});
    return;
  }
  pod.restart_timer.reset(source);
  log_info("restart scheduled", {{"pod", pod.record.name},
                                 {"policy", spec::to_string(policy)},
                                 {"delay_ms", std::to_string(delay->count())}});
}

int Manager::Impl::on_restart_timer(sd_event_source*, std::uint64_t, void* userdata) {
  auto* pod = static_cast<Pod*>(userdata);
  pod->restart_timer.reset();
  if (pod->job || is_active(pod->record.state)) return 0;
  pod->impl->begin_start(*pod, nullptr);
  return 0;
}

Status Manager::Impl::begin_stop(Pod& pod) {
  Status stopping = set_state(pod, store::PodState::kStopping, false);
  if (!stopping.ok()) return stopping;
  pod.stop_requested = true;
  if (pod.exit_watch) sd_event_source_set_enabled(pod.exit_watch.get(), SD_EVENT_OFF);
  pod.qmp_watch.reset();  // the worker's stop() reads QMP now
  pod.job = true;
  auto vm = std::make_shared<PodVm>(std::move(*pod.vm));
  pod.vm.reset();
  auto grace = std::chrono::milliseconds(std::chrono::seconds(options.config.stop_timeout_seconds));
  std::uint64_t id = pod.id;
  std::string name = pod.record.name;
  log_info("stopping pod", {{"pod", name},
                            {"pod_id", pod.log_id},
                            {"tee", pod.record.tee},
                            {"message_id", kMessagePodStopping}});
  crash_point("stop.stopping");
  Status queued = jobs->run([this, id, name, vm, grace]() -> std::function<void()> {
    auto result = std::make_shared<Result<vmm::ExitInfo>>(vm->stop(grace));
    crash_point("stop.exited");
    return [this, id, name, vm, result]() { finish_stop(name, id, vm, *result); };
  });
  if (!queued.ok()) finish_stop(name, id, vm, queued.take_error());
  return ok_status();
}

void Manager::Impl::finish_stop(const std::string& name, std::uint64_t id,
                                const std::shared_ptr<PodVm>& vm,
                                const Result<vmm::ExitInfo>& result) {
  Pod* pod = find(name, id);
  if (pod == nullptr) return;
  pod->job = false;
  if (result.ok()) {
    handle_exit(*pod, *result);
    return;
  }
  // The VM could neither be powered down nor killed: keep watching it and kill again. The
  // pidfd opened at the start still names our QEMU (a reopened one might not).
  log_error("pod stop failed", {{"pod", name}, {"error", result.error().describe()}});
  pod->vm.emplace(std::move(*vm));
  resume_exit_watch(*pod);
  watch_qmp(*pod);
  send_sigkill(*pod);
}

// Kill whatever runs; the exit (or the end of the start) finishes the job.
void Manager::Impl::kill_active(Pod& pod) {
  pod.stop_requested = true;
  if (pod.job && pod.record.state == store::PodState::kStarting) {
    pod.kill_pending = true;
    return;
  }
  send_sigkill(pod);
}

void Manager::Impl::remove(Pod& pod, std::vector<Manager::Done>& waiters) {
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
  if (on_libvirt()) {
    Status forgotten = forget_libvirt_domain(options.config.libvirt_uri, pod.record.name);
    if (!forgotten.ok())
      log_warning("cannot undefine the pod's libvirt domain",
                  {{"pod", pod.record.name}, {"error", forgotten.error().describe()}});
  }
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

}  // namespace confpod::pods
