// A pod's VM on the libvirt backend through the interface the Manager drives, against
// libvirt's in-process test:///default driver (shared by every connection of this process).
// The QEMU backend's side of PodVm is the Supervisor's, exercised by the lifecycle tests.
#include "daemon/pods/pod_vm.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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
  // A kill: the next poll sees the exit, as ours.
  ASSERT_TRUE(again->kill().ok());
  auto exited = again->poll_exit();
  ASSERT_TRUE(exited.ok() && exited->has_value());
  EXPECT_EQ((*exited)->cause, vmm::ExitCause::kKilledBySupervisor);

  // Removing the pod undefines its domain; forgetting it again (or a pod never started) is fine.
  ASSERT_TRUE(forget_libvirt_domain(kUri, "pv-run").ok());
  EXPECT_FALSE(conn->lookup("confpod-pv-run").ok());
  EXPECT_TRUE(forget_libvirt_domain(kUri, "pv-run").ok());
  EXPECT_EQ(PodVm::attach_libvirt(kUri, "pv-run").error().code, "vmm.libvirt.no_domain");
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

// The Manager's kill of a libvirt pod, from a worker on a connection of its own: true only when
// it destroyed a running domain.
TEST(PodVm, DestroyingAPodsDomainByName) {
  auto vm = PodVm::start_libvirt(kUri, "pv-destroy", pod_vm("pv-destroy"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  auto destroyed = destroy_libvirt_domain(kUri, "pv-destroy");
  ASSERT_TRUE(destroyed.ok()) << destroyed.error().describe();
  EXPECT_TRUE(*destroyed);
  auto seen = vm->poll_exit();
  ASSERT_TRUE(seen.ok() && seen->has_value());
  EXPECT_EQ((*seen)->signal, SIGKILL) << "another connection's destroy: a kill from outside";
  EXPECT_FALSE(*destroy_libvirt_domain(kUri, "pv-destroy")) << "already stopped";
  EXPECT_TRUE(forget_libvirt_domain(kUri, "pv-destroy").ok());
  EXPECT_FALSE(destroy_libvirt_domain(kUri, "pv-destroy").ok()) << "no such domain";
}

// confpodd's own QEMU: the kill goes through the pidfd, and a process already gone is no error.
TEST(PodVm, KillQemuThroughItsPidfd) {
  pid_t child = ::fork();
  if (child == 0) {
    ::setpgid(0, 0);
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0u));
  ASSERT_GE(pidfd, 0);
  ASSERT_TRUE(kill_qemu(child, pidfd).ok());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(kill_qemu(child, pidfd).ok()) << "reaped: nothing to kill";
  ::close(pidfd);
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
