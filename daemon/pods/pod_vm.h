// A pod's VM on either backend ([vmm] backend in confpod.toml, docs/vmm.md): QEMU run by
// confpodd itself (vmm::Supervisor) or a libvirt domain (vmm::LibvirtVm). The Manager drives
// one lifecycle over both: start, re-attach after a daemon restart, the exit, a graceful stop,
// a kill, and what is left when the pod is removed.
//
// What differs is how the exit is seen. confpodd's own QEMU has a pid: a pidfd wakes the loop
// when it exits, and its QMP socket gives events as they happen. A libvirt domain's QEMU
// belongs to libvirtd: the Manager polls its state (kExitPollInterval); libvirt reports why it
// stopped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "attest/base/result.h"
#include "vmm/config.h"
#include "vmm/libvirt_vm.h"
#include "vmm/supervisor.h"

namespace confpod::pods {

// How often the Manager asks libvirt whether a pod's domain still runs.
inline constexpr std::chrono::milliseconds kExitPollInterval{500};

// The libvirt domain a pod runs as: prefixed, so that confpodd never takes (or undefines) a
// domain an administrator named like a pod.
std::string libvirt_domain_name(std::string_view pod_name);

class PodVm {
 public:
  static Result<PodVm> start_qemu(const vmm::SupervisorOptions& options);
  // `config` is the pod's launch plan VM; its name becomes libvirt_domain_name(pod_name).
  static Result<PodVm> start_libvirt(const std::string& uri, std::string_view pod_name,
                                     vmm::VmConfig config);
  static Result<PodVm> attach_qemu(const std::string& pidfile, const std::string& qmp_socket,
                                   std::chrono::milliseconds timeout);
  static Result<PodVm> attach_libvirt(const std::string& uri, std::string_view pod_name);

  PodVm(PodVm&&) = default;
  PodVm& operator=(PodVm&&) = default;
  // Leaves the VM running on either backend: a restarted daemon re-attaches.
  ~PodVm() = default;

  bool is_libvirt() const { return std::holds_alternative<vmm::LibvirtVm>(vm_); }
  // QEMU's pid when confpodd runs it; nullopt under libvirt (its exit is polled).
  std::optional<pid_t> pid() const;
  // For the journal: "pid 1234" or "libvirt domain confpod-web".
  std::string describe() const;

  // QMP events since the last call (confpodd's QEMU only; libvirt keeps its monitor).
  std::vector<vmm::QmpEvent> take_new_events();
  int qmp_fd() const;
  bool qmp_closed() const;

  // Under libvirt a failed query looks the domain up again on a new connection (libvirtd may
  // have restarted): a domain that is no longer defined has ended; a libvirtd that cannot be
  // reached is an error, not an exit (vmm::LibvirtVm::poll_exit). stop and kill too.
  Result<std::optional<vmm::ExitInfo>> poll_exit();
  Result<vmm::ExitInfo> stop(std::chrono::milliseconds grace);
  // Kill now and wait for the exit.
  Result<vmm::ExitInfo> kill();

 private:
  explicit PodVm(vmm::Supervisor sup) : vm_(std::move(sup)) {}
  explicit PodVm(vmm::LibvirtVm vm) : vm_(std::move(vm)) {}

  std::variant<vmm::Supervisor, vmm::LibvirtVm> vm_;
};

// SIGKILL to confpodd's QEMU `pid` and its process group (its helpers), and through `pidfd`,
// which names QEMU itself even if the pid were reused. Already gone is no error.
Status kill_qemu(pid_t pid, int pidfd);

// virDomainDestroy of the pod's domain on a connection of its own (callable from any thread);
// true when it was running and was destroyed, false when it had already stopped.
Result<bool> destroy_libvirt_domain(const std::string& uri, std::string_view pod_name);

// The pod is removed: its libvirt domain definition goes too (a stopped domain; none is
// fine). Nothing to do for confpodd's own QEMU, whose files go with the pod's directory.
Status forget_libvirt_domain(const std::string& uri, std::string_view pod_name);

}  // namespace confpod::pods
