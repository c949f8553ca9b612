// The libvirt pod VM lifecycle against libvirt's in-process test:///default driver (shared by
// every connection of this process, so a second connection sees what the first defined).
#include "vmm/libvirt_vm.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "tests/support/bus.h"
#include "tests/support/libvirtd.h"
#include "tests/support/process.h"

namespace confpod::vmm {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kUri = "test:///default";

// A tee-none pod VM whose kernel, serial log and agent socket are under `dir`.
VmConfig pod_vm(const std::string& name, const std::string& dir = "/tmp") {
  VmConfig c;
  c.name = name;
  c.memory_mib = 256;
  c.accel = "tcg";
  c.tee = Tee::kNone;
  c.allow_insecure_tee = true;
  c.kernel = dir + "/vmlinuz";
  c.kernel_cmdline = "console=ttyS0";
  c.serial_log = dir + "/confpod-" + name + ".log";
  c.channels.push_back({"org.confpod.agent.0", dir + "/confpod-" + name + ".sock"});
  return c;
}

TEST(LibvirtVm, StartRunsUntilKilledAndRemoveUndefines) {
  auto vm = LibvirtVm::start(kUri, pod_vm("lv-kill"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  auto running = vm->poll_exit();
  ASSERT_TRUE(running.ok());
  EXPECT_FALSE(running->has_value());
  EXPECT_EQ(vm->remove().error().code, "vmm.libvirt.running");
  auto killed = vm->kill();
  ASSERT_TRUE(killed.ok()) << killed.error().describe();
  EXPECT_EQ(killed->cause, ExitCause::kKilledBySupervisor);
  ASSERT_TRUE(vm->remove().ok());
  auto gone = LibvirtVm::attach(kUri, "lv-kill");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "vmm.libvirt.no_domain");
}

TEST(LibvirtVm, AGracefulStopIsAGuestShutdown) {
  auto vm = LibvirtVm::start(kUri, pod_vm("lv-stop"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  auto stopped = vm->stop(2s);
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(stopped->cause, ExitCause::kGuestShutdown);
  EXPECT_TRUE(stopped->shutdown_event_seen);
  EXPECT_EQ(stopped->shutdown_reason, "guest-shutdown");
  // Stopping what has stopped says how it ended, again.
  EXPECT_EQ(vm->stop(2s)->cause, ExitCause::kGuestShutdown);
  ASSERT_TRUE(vm->remove().ok());
}

// libvirt itself parses the vsock device and keeps its CID (an element it did not know would
// be dropped from the live XML).
TEST(LibvirtVm, AVsockChannelIsADeviceLibvirtKnows) {
  VmConfig c = pod_vm("lv-vsock");
  c.channels.clear();
  c.vsock_cid = 777;
  auto vm = LibvirtVm::start(kUri, c);
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  auto conn = LibvirtConnection::connect(kUri);
  ASSERT_TRUE(conn.ok());
  auto domain = conn->lookup("lv-vsock");
  ASSERT_TRUE(domain.ok());
  auto xml = domain->xml();
  ASSERT_TRUE(xml.ok()) << xml.error().describe();
  EXPECT_NE(xml->find("<vsock model='virtio'>"), std::string::npos) << *xml;
  EXPECT_NE(xml->find("address='777'"), std::string::npos) << *xml;
  ASSERT_TRUE(vm->kill().ok());
  ASSERT_TRUE(vm->remove().ok());
}

// The daemon restarts: a new connection finds the pod's domain by name, and a destroy by
// someone else (virsh destroy) is an outside kill, not ours.
TEST(LibvirtVm, ReattachByNameSeesAnOutsideDestroy) {
  auto first = LibvirtVm::start(kUri, pod_vm("lv-attach"));
  ASSERT_TRUE(first.ok()) << first.error().describe();
  auto again = LibvirtVm::attach(kUri, "lv-attach");
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_FALSE(again->poll_exit()->has_value());
  auto outside = LibvirtConnection::connect(kUri);
  ASSERT_TRUE(outside.ok());
  ASSERT_TRUE(outside->lookup("lv-attach")->destroy().ok());
  auto exited = again->wait_exit(5s);
  ASSERT_TRUE(exited.ok()) << exited.error().describe();
  EXPECT_EQ(exited->cause, ExitCause::kSignaled);
  EXPECT_EQ(exited->signal, SIGKILL);
  ASSERT_TRUE(again->remove().ok());
}

TEST(LibvirtVm, ARunningDomainOfTheSameNameIsNeverReplaced) {
  auto vm = LibvirtVm::start(kUri, pod_vm("lv-twice"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  auto twice = LibvirtVm::start(kUri, pod_vm("lv-twice"));
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, "vmm.libvirt.running");
  ASSERT_TRUE(vm->kill().ok());
  // Stopped: the next start redefines it (a changed VM, e.g. more memory) and runs it.
  VmConfig bigger = pod_vm("lv-twice");
  bigger.memory_mib = 512;
  auto restarted = LibvirtVm::start(kUri, bigger);
  ASSERT_TRUE(restarted.ok()) << restarted.error().describe();
  auto conn = LibvirtConnection::connect(kUri);
  auto xml = conn->lookup("lv-twice")->xml();
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("524288"), std::string::npos) << *xml;  // KiB
  ASSERT_TRUE(restarted->kill().ok());
  ASSERT_TRUE(restarted->remove().ok());
}

TEST(LibvirtVm, AnInvalidConfigIsRefusedBeforeLibvirt) {
  VmConfig bad = pod_vm("lv-bad");
  bad.memory_mib = 0;
  auto vm = LibvirtVm::start(kUri, bad);
  ASSERT_FALSE(vm.ok());
  EXPECT_EQ(vm.error().code.rfind("vmm.", 0), 0u) << vm.error().code;
  EXPECT_FALSE(LibvirtVm::attach(kUri, "lv-bad").ok());
}

TEST(ExitFromDomainState, EveryStateAndReason) {
  for (int running : {VIR_DOMAIN_RUNNING, VIR_DOMAIN_PAUSED, VIR_DOMAIN_BLOCKED,
                      VIR_DOMAIN_SHUTDOWN, VIR_DOMAIN_PMSUSPENDED, VIR_DOMAIN_NOSTATE})
    EXPECT_FALSE(exit_from_domain_state(running, 0, false)) << running;
  auto shutdown = exit_from_domain_state(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_SHUTDOWN, false);
  ASSERT_TRUE(shutdown);
  EXPECT_EQ(shutdown->cause, ExitCause::kGuestShutdown);
  EXPECT_EQ(shutdown->shutdown_reason, "guest-shutdown");
  // A guest panic or a QEMU killed under libvirt: a crash, not claimed to be a guest panic.
  auto crashed = exit_from_domain_state(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_CRASHED, false);
  ASSERT_TRUE(crashed);
  EXPECT_EQ(crashed->cause, ExitCause::kSignaled);
  EXPECT_FALSE(crashed->signal.has_value());
  EXPECT_EQ(exit_from_domain_state(VIR_DOMAIN_CRASHED, 0, false)->cause, ExitCause::kGuestPanic);
  EXPECT_EQ(exit_from_domain_state(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DESTROYED, true)->cause,
            ExitCause::kKilledBySupervisor);
  auto outside = exit_from_domain_state(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DESTROYED, false);
  EXPECT_EQ(outside->cause, ExitCause::kSignaled);
  EXPECT_EQ(outside->signal, SIGKILL);
  auto failed = exit_from_domain_state(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_FAILED, false);
  EXPECT_EQ(failed->cause, ExitCause::kExitedWithError);
  EXPECT_EQ(exit_from_domain_state(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_UNKNOWN, false)->cause,
            ExitCause::kExitedUnknown);
}

// --- a real libvirtd --------------------------------------------------------------------------
// libvirtd in session mode as nobody (tests/support/libvirtd.h) running QEMU under TCG: the
// same lifecycle on real domains, with the QEMU process libvirt starts. Skipped where it
// cannot run.
class RealLibvirtd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = confpod::testing::TestLibvirtd::unavailable()) GTEST_SKIP() << *why;
    // As confpodd does: libvirt's client writes to a libvirtd that went away (a restart).
    ::signal(SIGPIPE, SIG_IGN);
    libvirtd_ = std::make_unique<confpod::testing::TestLibvirtd>();
    ASSERT_TRUE(libvirtd_->started()) << "libvirtd did not start:\n" << libvirtd_->log();
    // The guest kernel, readable by the QEMU libvirt runs as nobody.
    const std::string kernel = libvirtd_->dir() + "/vm/vmlinuz";
    fs::copy_file(confpod::testing::guest_image().kernel, kernel);
    ASSERT_EQ(::chmod(kernel.c_str(), 0644), 0);
  }
  void TearDown() override {
    if (HasFailure() && libvirtd_) std::cerr << "libvirtd.log:\n" << libvirtd_->log();
  }
  std::string uri() const { return libvirtd_->uri(); }
  VmConfig pod_config(const std::string& name) const {
    VmConfig c = pod_vm(name, libvirtd_->dir() + "/vm");
    c.kernel_cmdline = "console=ttyS0 panic=0";  // no root: the kernel panics and stays
    return c;
  }
  pid_t qemu_pid(const std::string& name) const { return libvirtd_->qemu_pid(name); }

  std::unique_ptr<confpod::testing::TestLibvirtd> libvirtd_;
};

TEST_F(RealLibvirtd, StartReattachStopAndAnOutsideKill) {
  auto vm = LibvirtVm::start(uri(), pod_config("lv-real"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  const pid_t qemu = qemu_pid("lv-real");
  ASSERT_GT(qemu, 0);
  std::ifstream cmdline("/proc/" + std::to_string(qemu) + "/cmdline");
  std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  EXPECT_NE(args.find("guest=lv-real"), std::string::npos);
  EXPECT_FALSE(vm->poll_exit()->has_value());
  // The daemon restarts: a new connection re-attaches by name.
  auto again = LibvirtVm::attach(uri(), "lv-real");
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_FALSE(again->poll_exit()->has_value());
  // No guest userspace answers the power button: destroyed after the grace.
  auto stopped = again->stop(1s);
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(stopped->cause, ExitCause::kKilledBySupervisor);
  for (int i = 0; i < 100 && ::kill(qemu, 0) == 0; ++i) ::usleep(20'000);
  EXPECT_NE(::kill(qemu, 0), 0) << "QEMU must be gone";

  // Started again (its definition replaced), then QEMU is killed from outside.
  auto second = LibvirtVm::start(uri(), pod_config("lv-real"));
  ASSERT_TRUE(second.ok()) << second.error().describe();
  const pid_t qemu2 = qemu_pid("lv-real");
  ASSERT_GT(qemu2, 0);
  ASSERT_EQ(::kill(qemu2, SIGKILL), 0);
  auto crashed = second->wait_exit(10s);
  ASSERT_TRUE(crashed.ok()) << crashed.error().describe();
  EXPECT_EQ(crashed->cause, ExitCause::kSignaled);
  ASSERT_TRUE(second->remove().ok());
  EXPECT_FALSE(LibvirtVm::attach(uri(), "lv-real").ok());
}

// libvirtd restarts (an upgrade) under a running domain: while it is away, asking is an
// error and never an exit; once it is back, the same LibvirtVm reaches the domain on a new
// connection and stops it.
TEST_F(RealLibvirtd, TheSameVmOutlivesALibvirtdRestart) {
  auto vm = LibvirtVm::start(uri(), pod_config("lv-restart"));
  ASSERT_TRUE(vm.ok()) << vm.error().describe();
  const pid_t qemu = qemu_pid("lv-restart");
  ASSERT_GT(qemu, 0);
  libvirtd_->stop();
  auto away = vm->poll_exit();
  EXPECT_FALSE(away.ok()) << "libvirtd's absence must not read as an exit";
  EXPECT_EQ(::kill(qemu, 0), 0) << "QEMU runs on without libvirtd";
  ASSERT_TRUE(libvirtd_->start_again()) << libvirtd_->log();
  auto back = vm->poll_exit();
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_FALSE(back->has_value());
  auto stopped = vm->stop(1s);
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(stopped->cause, ExitCause::kKilledBySupervisor);
  for (int i = 0; i < 100 && ::kill(qemu, 0) == 0; ++i) ::usleep(20'000);
  EXPECT_NE(::kill(qemu, 0), 0) << "QEMU must be gone";
  ASSERT_TRUE(vm->remove().ok());
}

}  // namespace
}  // namespace confpod::vmm
