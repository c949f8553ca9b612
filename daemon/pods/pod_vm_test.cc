// A pod's VM on the libvirt backend through the interface the Manager drives, against
// libvirt's in-process test:///default driver (shared by every connection of this process).
// The QEMU backend's side of PodVm is the Supervisor's, exercised by the lifecycle tests.
#include "daemon/pods/pod_vm.h"

#include <gtest/gtest.h>

namespace confpod::pods {
namespace {

constexpr const char* kUri = "test:///default";

vmm::VmConfig pod_vm(const std::string& name) {
  vmm::VmConfig c;
  c.name = name;  // replaced by the domain name
  c.memory_mib = 256;
  c.accel = "tcg";
  c.tee = vmm::Tee::kNone;
  c.allow_insecure_tee = true;
  c.kernel = "/tmp/vmlinuz";
  c.channels.push_back({"org.confpod.agent.0", "/tmp/confpod-podvm-" + name + ".sock"});
  return c;
}

TEST(PodVm, ALibvirtPodRunsAsItsPrefixedDomainWithoutAPid) {
  EXPECT_EQ(libvirt_domain_name("web"), "confpod-web");
  auto vm = PodVm::start_libvirt(kUri, "pv-run", pod_vm("pv-run"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  EXPECT_TRUE(vm->is_libvirt());
  EXPECT_FALSE(vm->pid().has_value());
  EXPECT_EQ(vm->describe(), "libvirt domain confpod-pv-run");
  EXPECT_EQ(vm->qmp_fd(), -1);
  EXPECT_TRUE(vm->qmp_closed());
  EXPECT_TRUE(vm->take_new_events().empty());
  EXPECT_FALSE(vm->poll_exit()->has_value());
  // Not under the pod's own name: that could be an administrator's domain.
  auto conn = vmm::LibvirtConnection::connect(kUri);
  ASSERT_TRUE(conn.ok());
  EXPECT_FALSE(conn->lookup("pv-run").ok());
  EXPECT_TRUE(conn->lookup("confpod-pv-run").ok());

  // The daemon restarts: the pod's domain is found again by the pod's name.
  auto again = PodVm::attach_libvirt(kUri, "pv-run");
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_FALSE(again->poll_exit()->has_value());
  // A kill that does not wait: the next poll sees the exit, as ours.
  ASSERT_TRUE(again->send_kill(-1).ok());
  auto exited = again->poll_exit();
  ASSERT_TRUE(exited.ok() && exited->has_value());
  EXPECT_EQ((*exited)->cause, vmm::ExitCause::kKilledBySupervisor);

  // Removing the pod undefines its domain; forgetting it again (or a pod never started) is fine.
  ASSERT_TRUE(forget_libvirt_domain(kUri, "pv-run").ok());
  EXPECT_FALSE(conn->lookup("confpod-pv-run").ok());
  EXPECT_TRUE(forget_libvirt_domain(kUri, "pv-run").ok());
  EXPECT_EQ(PodVm::attach_libvirt(kUri, "pv-run").error().code, "vmm.libvirt.lookup");
}

TEST(PodVm, AGracefulStopOfALibvirtPod) {
  auto vm = PodVm::start_libvirt(kUri, "pv-stop", pod_vm("pv-stop"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  auto stopped = vm->stop(std::chrono::seconds(2));
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(stopped->cause, vmm::ExitCause::kGuestShutdown);
  // A running domain is not forgotten: its pod still runs.
  auto second = PodVm::start_libvirt(kUri, "pv-stop", pod_vm("pv-stop"));
  ASSERT_TRUE(second.ok()) << second.error().describe();
  Status forgotten = forget_libvirt_domain(kUri, "pv-stop");
  ASSERT_FALSE(forgotten.ok());
  EXPECT_EQ(forgotten.error().code, "vmm.libvirt.running");
  ASSERT_TRUE(second->kill().ok());
  EXPECT_TRUE(forget_libvirt_domain(kUri, "pv-stop").ok());
}

TEST(PodVm, AnUnreachableLibvirtIsAnError) {
  auto vm = PodVm::start_libvirt("qemu+unix:///session?socket=/nonexistent/sock", "pv-none",
                                 pod_vm("pv-none"));
  ASSERT_FALSE(vm.ok());
  EXPECT_EQ(vm.error().code.rfind("vmm.libvirt.", 0), 0u) << vm.error().code;
  EXPECT_FALSE(
      forget_libvirt_domain("qemu+unix:///session?socket=/nonexistent/sock", "pv-none").ok());
}

}  // namespace
}  // namespace confpod::pods
