#include "daemon/pods/pod_vm.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace confpod::pods {

std::string libvirt_domain_name(std::string_view pod_name) {
  return "confpod-" + std::string(pod_name);
}

Result<PodVm> PodVm::start_qemu(const vmm::SupervisorOptions& options) {
  CONFPOD_ASSIGN_OR_RETURN(vmm::Supervisor sup, vmm::Supervisor::start(options));
  return PodVm(std::move(sup));
}

Result<PodVm> PodVm::start_libvirt(const std::string& uri, std::string_view pod_name,
                                   vmm::VmConfig config) {
  config.name = libvirt_domain_name(pod_name);
  CONFPOD_ASSIGN_OR_RETURN(vmm::LibvirtVm vm, vmm::LibvirtVm::start(uri, config));
  return PodVm(std::move(vm));
}

Result<PodVm> PodVm::attach_qemu(const std::string& pidfile, const std::string& qmp_socket,
                                 std::chrono::milliseconds timeout) {
  CONFPOD_ASSIGN_OR_RETURN(vmm::Supervisor sup,
                           vmm::Supervisor::attach(pidfile, qmp_socket, timeout));
  return PodVm(std::move(sup));
}

Result<PodVm> PodVm::attach_libvirt(const std::string& uri, std::string_view pod_name) {
  CONFPOD_ASSIGN_OR_RETURN(vmm::LibvirtVm vm,
                           vmm::LibvirtVm::attach(uri, libvirt_domain_name(pod_name)));
  return PodVm(std::move(vm));
}

std::optional<pid_t> PodVm::pid() const {
  if (const auto* sup = std::get_if<vmm::Supervisor>(&vm_)) return sup->pid();
  return std::nullopt;
}

std::string PodVm::describe() const {
  if (const auto* sup = std::get_if<vmm::Supervisor>(&vm_))
    return "pid " + std::to_string(sup->pid());
  return "libvirt domain " + std::get<vmm::LibvirtVm>(vm_).name();
}

std::vector<vmm::QmpEvent> PodVm::take_new_events() {
  if (auto* sup = std::get_if<vmm::Supervisor>(&vm_)) return sup->take_new_events();
  return {};
}

int PodVm::qmp_fd() const {
  if (const auto* sup = std::get_if<vmm::Supervisor>(&vm_)) return sup->qmp_fd();
  return -1;
}

bool PodVm::qmp_closed() const {
  if (const auto* sup = std::get_if<vmm::Supervisor>(&vm_)) return sup->qmp_closed();
  return true;
}

Result<std::optional<vmm::ExitInfo>> PodVm::poll_exit() {
  return std::visit([](auto& vm) { return vm.poll_exit(); }, vm_);
}

Result<vmm::ExitInfo> PodVm::stop(std::chrono::milliseconds grace) {
  return std::visit([grace](auto& vm) { return vm.stop(grace); }, vm_);
}

Result<vmm::ExitInfo> PodVm::kill() {
  return std::visit([](auto& vm) { return vm.kill(); }, vm_);
}

Status kill_qemu(pid_t pid, int pidfd) {
  auto failed = [pid] {
    return make_error(
        "pods.kill", "cannot signal QEMU pid " + std::to_string(pid) + ": " + std::strerror(errno));
  };
  // QEMU leads its own process group (Supervisor::start): its helpers go too. The group is
  // signalled only while the pidfd's process is alive, so a reused pid's group is never hit.
  if (::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0u) != 0)
    return errno == ESRCH ? ok_status() : Status(failed());
  if (pid > 0 && ::getpgid(pid) == pid) ::kill(-pid, SIGKILL);
  if (::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0u) != 0 && errno != ESRCH)
    return failed();
  return ok_status();
}

Result<bool> destroy_libvirt_domain(const std::string& uri, std::string_view pod_name) {
  CONFPOD_ASSIGN_OR_RETURN(vmm::LibvirtVm vm,
                           vmm::LibvirtVm::attach(uri, libvirt_domain_name(pod_name)));
  // kill() looks at the state first: a domain that had ended already is not ours to count.
  CONFPOD_ASSIGN_OR_RETURN(vmm::ExitInfo ended, vm.kill());
  return ended.cause == vmm::ExitCause::kKilledBySupervisor;
}

Status forget_libvirt_domain(const std::string& uri, std::string_view pod_name) {
  auto vm = vmm::LibvirtVm::attach(uri, libvirt_domain_name(pod_name));
  // Never defined (the pod never started), or undefined already.
  if (!vm.ok())
    return vm.error().code == "vmm.libvirt.no_domain" ? ok_status() : Status(vm.error());
  return vm->remove();
}

}  // namespace confpod::pods
