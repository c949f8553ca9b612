#include "vmm/libvirt_vm.h"

#include <libvirt/virterror.h>
#include <signal.h>

#include <thread>

#include "vmm/libvirt_xml.h"

namespace confpod::vmm {
namespace {

using Clock = std::chrono::steady_clock;

// How often a waiting stop or wait_exit asks libvirt for the state.
constexpr std::chrono::milliseconds kPollInterval{100};

ExitInfo shutdown_exit(ExitCause cause, const char* reason) {
  ExitInfo info;
  info.cause = cause;
  info.shutdown_event_seen = true;
  info.shutdown_reason = reason;
  return info;
}

}  // namespace

std::optional<ExitInfo> exit_from_domain_state(int state, int reason, bool destroyed_by_us) {
  switch (state) {
    case VIR_DOMAIN_SHUTOFF:
      break;
    case VIR_DOMAIN_CRASHED:  // on_crash=preserve would leave it here; ours destroys
      return shutdown_exit(ExitCause::kGuestPanic, "guest-panic");
    default:  // running, blocked, paused, shutting down, pmsuspended, nostate
      return std::nullopt;
  }
  ExitInfo info;
  switch (reason) {
    case VIR_DOMAIN_SHUTOFF_SHUTDOWN:  // the guest powered off
      return shutdown_exit(ExitCause::kGuestShutdown, "guest-shutdown");
    case VIR_DOMAIN_SHUTOFF_CRASHED:
      // libvirt gives this reason both for a guest panic (on_crash=destroy) and for a QEMU that
      // died under it (monitor EOF without SHUTDOWN, kill -9): the state cannot tell them
      // apart, so it is reported as a crash, never as a guest panic it may not have been.
      info.cause = ExitCause::kSignaled;
      return info;
    case VIR_DOMAIN_SHUTOFF_DESTROYED:
      // Ours is a kill we asked for; anyone else's (virsh destroy) is an outside SIGKILL.
      info.cause = destroyed_by_us ? ExitCause::kKilledBySupervisor : ExitCause::kSignaled;
      if (!destroyed_by_us) info.signal = SIGKILL;
      return info;
    case VIR_DOMAIN_SHUTOFF_FAILED:  // QEMU failed to start or died on its own
      info.cause = ExitCause::kExitedWithError;
      info.exit_code = 1;
      return info;
    default:  // unknown, saved, migrated, from snapshot, daemon: no exit status to tell
      info.cause = ExitCause::kExitedUnknown;
      return info;
  }
}

Result<LibvirtVm> LibvirtVm::start(const std::string& uri, const VmConfig& config) {
  CONFPOD_ASSIGN_OR_RETURN(std::string xml, libvirt_domain_xml(config));
  CONFPOD_ASSIGN_OR_RETURN(LibvirtConnection conn, LibvirtConnection::connect(uri));
  if (auto existing = conn.lookup(config.name); existing.ok()) {
    CONFPOD_ASSIGN_OR_RETURN(DomainState state, existing->state());
    if (state != DomainState::kShutoff && state != DomainState::kCrashed)
      return make_error("vmm.libvirt.running", "domain " + config.name + " is already " +
                                                   to_string(state) + " in libvirt");
    // The pod's previous run: its definition (and UUID) goes, this start defines it anew.
    CONFPOD_TRY(existing->undefine());
  }
  CONFPOD_ASSIGN_OR_RETURN(LibvirtDomain domain, conn.define(xml));
  CONFPOD_TRY(domain.start());
  return LibvirtVm(uri, std::move(conn), std::move(domain), config.name);
}

Result<LibvirtVm> LibvirtVm::attach(const std::string& uri, const std::string& name) {
  CONFPOD_ASSIGN_OR_RETURN(LibvirtConnection conn, LibvirtConnection::connect(uri));
  CONFPOD_ASSIGN_OR_RETURN(LibvirtDomain domain, conn.lookup(name));
  return LibvirtVm(uri, std::move(conn), std::move(domain), name);
}

Result<std::optional<ExitInfo>> LibvirtVm::poll_exit() {
  if (exit_) return exit_;
  auto raw = domain_.raw_state();
  if (!raw.ok()) {
    // libvirtd restarted: the domain again, on a new connection, as a daemon restart finds it.
    auto again = attach(uri_, name_);
    if (!again.ok()) {
      // Connected, and libvirt no longer knows the domain: it ended (and was undefined).
      if (again.error().code == "vmm.libvirt.no_domain") return exit_ = ExitInfo{};
      return again.error();
    }
    conn_ = std::move(again->conn_);
    domain_ = std::move(again->domain_);
    raw = domain_.raw_state();
    if (!raw.ok()) return raw.error();
  }
  exit_ = exit_from_domain_state(raw->first, raw->second, destroyed_by_us_);
  return exit_;
}

Result<ExitInfo> LibvirtVm::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    CONFPOD_ASSIGN_OR_RETURN(auto exited, poll_exit());
    if (exited) return *exited;
    if (Clock::now() >= deadline)
      return make_error("vmm.libvirt.timeout", "domain " + name_ + " still runs after " +
                                                   std::to_string(timeout.count()) + " ms");
    std::this_thread::sleep_for(kPollInterval);
  }
}

Result<ExitInfo> LibvirtVm::stop(std::chrono::milliseconds grace) {
  CONFPOD_ASSIGN_OR_RETURN(auto exited, poll_exit());
  if (exited) return *exited;
  // A guest that ignores the button (or has no ACPI yet) is destroyed after the grace.
  if (domain_.shutdown().ok()) {
    auto ended = wait_exit(grace);
    if (ended.ok()) return ended;
  }
  return kill();
}

Result<ExitInfo> LibvirtVm::kill() {
  CONFPOD_ASSIGN_OR_RETURN(auto exited, poll_exit());
  if (exited) return *exited;
  destroyed_by_us_ = true;
  Status destroyed = domain_.destroy();
  // It may have ended on its own between the two calls: then the state says how.
  CONFPOD_ASSIGN_OR_RETURN(auto after, poll_exit());
  if (after) return *after;
  if (!destroyed.ok()) return destroyed.error();
  return make_error("vmm.libvirt.destroy", "domain " + name_ + " still runs after destroy");
}

Status LibvirtVm::remove() {
  CONFPOD_ASSIGN_OR_RETURN(auto exited, poll_exit());
  if (!exited)
    return make_error("vmm.libvirt.running", "domain " + name_ + " still runs; stop it first");
  return domain_.undefine();
}

}  // namespace confpod::vmm
