// A pod's VM run through libvirt, with the lifecycle the daemon drives on QEMU directly
// (vmm::Supervisor): start from a VmConfig, re-attach by name after a daemon restart, the exit
// as libvirt saw it (state and reason, mapped to the same ExitInfo), a graceful stop with a
// grace period, kill. libvirt owns the QEMU process, its monitor and its pidfile here.
//
// The domain is defined persistently while the pod exists (libvirt keeps why it stopped, which
// a transient domain loses when it ends) and undefined by remove(). Its XML says
// on_poweroff/on_reboot/on_crash = destroy, so libvirt never restarts it behind the daemon.
//
// A process using it ignores SIGPIPE: libvirt's client writes to the socket of a libvirtd
// that went away (a restart) before it notices.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "attest/base/result.h"
#include "vmm/config.h"
#include "vmm/libvirt_backend.h"
#include "vmm/supervisor.h"

namespace confpod::vmm {

class LibvirtVm {
 public:
  // Defines the domain from `config` (libvirt_domain_xml) and starts it. A defined but
  // stopped domain of the same name (a pod started before) is replaced; a running one is an
  // error ("vmm.libvirt.running"). Errors: "vmm.libvirt.<operation>" with libvirt's message.
  static Result<LibvirtVm> start(const std::string& uri, const VmConfig& config);
  // The defined domain `name` (running or not: poll_exit() tells). "vmm.libvirt.no_domain"
  // when libvirt has none of that name.
  static Result<LibvirtVm> attach(const std::string& uri, const std::string& name);

  LibvirtVm(LibvirtVm&&) = default;
  LibvirtVm& operator=(LibvirtVm&&) = default;
  // Leaves the domain as it is (running or not): the daemon's restart re-attaches.
  ~LibvirtVm() = default;

  const std::string& name() const { return name_; }

  // The exit once the domain is no longer running; nullopt while it runs (or is paused).
  // When the domain cannot be asked about (libvirtd restarted, an upgrade: this connection is
  // dead while QEMU runs on), it is looked up again on a new connection: a domain libvirt no
  // longer knows has ended; a libvirtd that cannot be reached is an error, never an exit.
  // stop(), kill() and remove() ask through this too.
  Result<std::optional<ExitInfo>> poll_exit();
  // Waits up to `timeout` for the exit ("vmm.libvirt.timeout").
  Result<ExitInfo> wait_exit(std::chrono::milliseconds timeout);
  // ACPI power button (virDomainShutdown), up to `grace` for the guest to power off, then
  // virDomainDestroy. Returns how it ended.
  Result<ExitInfo> stop(std::chrono::milliseconds grace);
  // virDomainDestroy now.
  Result<ExitInfo> kill();
  // Undefines the stopped domain (the pod is removed). "vmm.libvirt.running" while it runs.
  Status remove();

 private:
  LibvirtVm(std::string uri, LibvirtConnection conn, LibvirtDomain domain, std::string name)
      : uri_(std::move(uri)),
        conn_(std::move(conn)),
        domain_(std::move(domain)),
        name_(std::move(name)) {}

  std::string uri_;  // to connect again when libvirtd restarted
  LibvirtConnection conn_;
  LibvirtDomain domain_;
  std::string name_;
  bool destroyed_by_us_ = false;
  std::optional<ExitInfo> exit_;
};

// The ExitInfo for a libvirt domain state and its reason (virDomainGetState), or nullopt
// while the domain runs. `destroyed_by_us`: this process called virDomainDestroy. Exposed for
// tests: every reason libvirt gives has its mapping.
std::optional<ExitInfo> exit_from_domain_state(int state, int reason, bool destroyed_by_us);

}  // namespace confpod::vmm
