#include "daemon/pods/manager.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <system_error>

#include "attest/base/bytes.h"
#include "attest/base/crash_point.h"
#include "attest/base/unique_fd.h"
#include "attest/crypto/crypto.h"
#include "daemon/net/networking.h"
#include "daemon/pods/exec_request.h"
#include "daemon/pods/launch_plan.h"
#include "daemon/pods/log.h"
#include "daemon/pods/log_ids.h"
#include "daemon/pods/manager_impl.h"
#include "daemon/pods/pod_files.h"
#include "daemon/pods/runtime_dirs.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "guest/protocol/init_data.h"
#include "vmm/qemu_argv.h"

namespace confpod::pods {

namespace {

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

// The host defaults with this pod's network and KBS URL: what its VM and init-data are
// built from.
Result<spec::HostDefaults> Manager::Impl::host_for(const store::PodRecord& record) const {
  spec::HostDefaults host = options.config.host;
  const net::Lease lease = lease_of(record);
  CONFPOD_ASSIGN_OR_RETURN(host.network, networking->guest_network(lease));
  host.kbs_guest_url = networking->kbs_url(lease);
  host.vsock_cid = record.vsock_cid;
  return host;
}

Result<std::uint32_t> Manager::Impl::free_vsock_cid() const {
  std::set<std::uint32_t> taken;
  for (const auto& [name, pod] : pods)
    if (pod->record.vsock_cid != 0) taken.insert(pod->record.vsock_cid);
  std::uint64_t cid = options.config.vsock_cid_first;
  for (std::uint32_t held : taken)  // ascending: the first gap at or above cid
    if (held == cid) ++cid;
  // 0xFFFFFFFF is VMADDR_CID_ANY, never a guest's.
  if (cid >= 0xFFFFFFFFull)
    return make_error("pods.no_vsock", "no free vsock CID from " +
                                           std::to_string(options.config.vsock_cid_first) +
                                           " up ([vmm] vsock_cid_first)");
  return static_cast<std::uint32_t>(cid);
}

// Every nftables change in the namespace (ours too) makes Networking check its tables, so
// a flush by someone else is undone at once rather than at the next pod change. Without
// CAP_NET_ADMIN there is nothing to subscribe to and no table of ours to keep.
void Manager::Impl::watch_nftables() {
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

int Manager::Impl::on_nft_change(sd_event_source*, int, std::uint32_t, void* userdata) {
  auto* self = static_cast<Impl*>(userdata);
  if (!self->nft_monitor->drain()) return 0;
  Status kept = self->networking->verify_firewall();
  if (!kept.ok())
    log_error("cannot restore the nftables tables", {{"error", kept.error().describe()}});
  return 0;
}

Pod& Manager::Impl::add_pod(store::PodRecord record) {
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
  // The runtime directory holds every pod's QMP socket: full control of its VM. Libvirt's
  // QEMU user, when there is one, may pass through (its group) to its pod's vm/ directory
  // and list nothing; a user the host lacks fails each start instead (pods.libvirt_user).
  std::optional<VmOwner> vm_owner;
  if (options.config.backend == "libvirt" && !options.config.libvirt_qemu_user.empty()) {
    if (auto owner = lookup_vm_owner(options.config.libvirt_qemu_user); owner.ok())
      vm_owner = *owner;
  }
  if (vm_owner && ::chown(pods_dir.c_str(), ::geteuid(), vm_owner->gid) != 0)
    return make_error("pods.io", "cannot give " + pods_dir + " to group " +
                                     std::to_string(vm_owner->gid) + ": " + std::strerror(errno));
  // (Best effort without a VM user, as before: a --kbs-only confpodd with fewer privileges
  // may share the directory.)
  ::chmod(pods_dir.c_str(), vm_owner ? 0710 : 0700);
  const std::string db_path = options.config.state_dir + "/confpod.db";
  // Commits do not wait for the disk on the loop; acknowledgements do (when_durable).
  auto group_commit = store::GroupCommit::start(db_path, [](const std::string& what) {
    log_warning("pod store flush or checkpoint failed", {{"error", what}});
  });
  if (!group_commit.ok()) return group_commit.take_error();
  CONFPOD_ASSIGN_OR_RETURN(store::Store store, store::Store::open(db_path));
  CONFPOD_TRY(store.use_group_commit(**group_commit));
  auto impl = std::make_unique<Impl>(event, std::move(options), std::move(store));
  impl->group_commit = std::move(group_commit).value();
  sd_event_source* flushed_source = nullptr;
  if (int r = sd_event_add_io(
          event, &flushed_source, impl->group_commit->ready_fd(), EPOLLIN,
          [](sd_event_source*, int, std::uint32_t, void* gc) {
            static_cast<store::GroupCommit*>(gc)->dispatch();
            return 0;
          },
          impl->group_commit.get());
      r < 0)
    return make_error("pods.io", std::string("sd_event_add_io: ") + std::strerror(-r));
  impl->group_commit_watch.reset(flushed_source);
  CONFPOD_ASSIGN_OR_RETURN(impl->networking,
                           net::Networking::create(networking_options(impl->options), impl->store));
  CONFPOD_ASSIGN_OR_RETURN(impl->jobs, LoopJobs::create(event));
  return std::unique_ptr<Manager>(new Manager(std::move(impl)));
}

void Manager::set_listener(Listener* listener) { impl_->listener = listener; }

void Manager::when_durable(std::function<void(const Status&)> done) {
  impl_->group_commit->after_flush(std::move(done));
}

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
  sweep_runtime_dirs(impl_->options.config.host.runtime_dir,
                     [this](const std::string& name) { return impl_->find(name) != nullptr; });
  impl_->watch_nftables();
  for (Pod* pod : active) {
    spec::PodPaths paths = impl_->paths_of(*pod);
    bool was_stopping = pod->record.state == store::PodState::kStopping;
    auto attached =
        impl_->on_libvirt()
            ? PodVm::attach_libvirt(impl_->options.config.libvirt_uri, pod->record.name)
            : PodVm::attach_qemu(paths.pidfile, paths.qmp_socket, impl_->options.attach_timeout);
    if (!attached.ok()) {
      log_warning("cannot re-attach pod",
                  {{"pod", pod->record.name}, {"error", attached.error().describe()}});
      // A QEMU that is there but does not answer (QMP hung) would run on unaccounted for:
      // the pod ends here, so its VM does too.
      // (A QEMU of confpodd's own too on the libvirt backend: one started before the backend
      // changed.)
      if (kill_stray_qemu(paths))
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
                                 {"vm", attached->describe()},
                                 {"message_id", kMessagePodReattached}});
    pod->vm.emplace(std::move(*attached));
    // A stop was under way: however the VM turns out to have ended (a libvirt domain may
    // have stopped meanwhile), it ended as asked.
    pod->stop_requested = was_stopping;
    std::uint64_t id = pod->id;
    std::string name = pod->record.name;
    impl_->running(*pod, false);
    // The daemon died during a stop: finish it.
    pod = impl_->find(name, id);
    if (was_stopping && pod != nullptr && pod->vm && !pod->job) {
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
  if (impl_->new_pods_on_vsock()) {
    CONFPOD_ASSIGN_OR_RETURN(record.vsock_cid, impl_->free_vsock_cid());
  }
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
        impl->jobs->post([client_end, shared_done, ok, detail] {
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
