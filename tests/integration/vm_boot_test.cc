// Boots the real guest (guest/image: init + agent) under QEMU TCG through the Supervisor: the
// agent's hello frame arrives on the virtio-serial channel, system_powerdown powers it off
// through ACPI while it still waits for init-data, and a supervisor killed with SIGKILL is
// replaced by one that re-attaches.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <sstream>

#include "guest/protocol/messages.h"
#include "tests/support/bus.h"
#include "tests/support/process.h"
#include "vmm/channel.h"
#include "vmm/config.h"
#include "vmm/qemu_argv.h"
#include "vmm/supervisor.h"

namespace confpod::vmm {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kAgentPort = "org.confpod.agent.0";

using testing::GuestImage;

// The agent's first frame: hello, protocol version 1.
void expect_hello(Result<std::string> frame, const std::string& serial_log) {
  ASSERT_TRUE(frame.ok()) << frame.error().describe() << "\nserial:\n" << serial_log;
  auto hello = guest::parse_guest_message(*frame);
  ASSERT_TRUE(hello.ok()) << hello.error().describe();
  EXPECT_EQ(hello->kind, guest::GuestMessage::Kind::kHello);
  EXPECT_EQ(hello->version, guest::kProtocolVersion);
  EXPECT_TRUE(hello->agent.starts_with("confpod-agent")) << hello->agent;
}

struct BootSetup {
  VmConfig config;
  SupervisorOptions options;
};

BootSetup boot_setup(const testing::TempDir& dir, const GuestImage& image) {
  BootSetup s;
  VmConfig& c = s.config;
  c.name = "boot-test";
  c.accel = "tcg";
  c.vcpus = 1;
  c.memory_mib = 256;
  c.tee = Tee::kNone;
  c.allow_insecure_tee = true;  // TCG has no TEE: this is the insecure development mode
  c.kernel = image.kernel;
  c.initrd = image.initrd;
  c.kernel_cmdline = "console=ttyS0 quiet panic=-1";
  c.channels.push_back(Channel{kAgentPort, dir.path() + "/agent.sock"});
  c.qmp_socket = dir.path() + "/qmp.sock";
  c.pidfile = dir.path() + "/qemu.pid";
  c.serial_log = dir.path() + "/serial.log";
  auto argv = qemu_argv(c);
  EXPECT_TRUE(argv.ok()) << argv.error().describe();
  if (argv.ok()) s.options.argv = *argv;
  s.options.qmp_socket = c.qmp_socket;
  s.options.pidfile = c.pidfile;
  s.options.log_file = dir.path() + "/qemu.log";
  return s;
}

std::string read_text(const std::string& path) {
  auto r = testing::run_process({"/bin/cat", path});
  return r.out;
}

// Alive and not a zombie (a zombie has exited; whoever is its parent reaps it).
bool process_running(pid_t pid) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

TEST(VmBoot, HelloOnTheChannelThenAcpiPowerdown) {
  GuestImage image = testing::guest_image();
  ASSERT_FALSE(image.initrd.empty());
  testing::TempDir dir;
  BootSetup setup = boot_setup(dir, image);
  ASSERT_FALSE(setup.options.argv.empty());

  auto t0 = Clock::now();
  auto sup = Supervisor::start(setup.options);
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  auto t_qmp = Clock::now();
  auto channel = GuestChannel::connect(setup.config.channels[0].socket_path, 10s);
  ASSERT_TRUE(channel.ok()) << channel.error().describe();
  auto hello = channel->read_frame(50s);
  auto t_hello = Clock::now();
  expect_hello(std::move(hello), read_text(setup.config.serial_log));

  // The agent watches the ACPI power button from the start; system_powerdown presses it.
  auto exit = sup->stop(20s);
  auto t_exit = Clock::now();
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_EQ(exit->cause, ExitCause::kGuestShutdown) << to_string(exit->cause);
  EXPECT_TRUE(exit->shutdown_event_seen);
  EXPECT_EQ(exit->shutdown_reason, "guest-shutdown");
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_FALSE(exit->signal.has_value());

  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "[timing] start->QMP ready " << ms(t_qmp - t0) << " ms, start->hello "
            << ms(t_hello - t0) << " ms, powerdown->exit " << ms(t_exit - t_hello) << " ms\n";
}

TEST(VmBoot, ReattachAfterTheSupervisorIsKilled) {
  GuestImage image = testing::guest_image();
  ASSERT_FALSE(image.initrd.empty());
  testing::TempDir dir;
  BootSetup setup = boot_setup(dir, image);
  ASSERT_FALSE(setup.options.argv.empty());

  // A child process plays the daemon: starts QEMU, reports its pid, and waits to be killed.
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t daemon = ::fork();
  ASSERT_GE(daemon, 0);
  if (daemon == 0) {
    ::close(report[0]);
    auto sup = Supervisor::start(setup.options);
    pid_t qemu = sup.ok() ? sup->pid() : -1;
    if (::write(report[1], &qemu, sizeof qemu) != sizeof qemu) ::_exit(2);
    while (true) ::pause();
  }
  ::close(report[1]);
  pid_t qemu = -1;
  ASSERT_EQ(::read(report[0], &qemu, sizeof qemu), static_cast<ssize_t>(sizeof qemu));
  ::close(report[0]);
  ASSERT_GT(qemu, 0) << "the child supervisor could not start QEMU: "
                     << read_text(setup.options.log_file);

  ASSERT_EQ(::kill(daemon, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(daemon, &status, 0), daemon);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(::kill(qemu, 0), 0) << "QEMU must outlive its supervisor";

  auto sup = Supervisor::attach(setup.options.pidfile, setup.options.qmp_socket);
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  EXPECT_EQ(sup->pid(), qemu);
  EXPECT_FALSE(sup->is_parent());
  auto state = sup->status();
  ASSERT_TRUE(state.ok()) << state.error().describe();
  EXPECT_EQ(*state, "running");

  // Wait for the guest to be up (its init handles the power button from then on).
  auto channel = GuestChannel::connect(setup.config.channels[0].socket_path, 10s);
  ASSERT_TRUE(channel.ok()) << channel.error().describe();
  expect_hello(channel->read_frame(50s), read_text(setup.config.serial_log));

  auto exit = sup->stop(20s);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  // Not our child: the exit status is not ours to read; the SHUTDOWN event tells the cause.
  EXPECT_EQ(exit->cause, ExitCause::kGuestShutdown) << to_string(exit->cause);
  EXPECT_EQ(exit->shutdown_reason, "guest-shutdown");
  EXPECT_FALSE(exit->exit_code.has_value());
  EXPECT_FALSE(process_running(qemu)) << "QEMU still running after stop";
}

}  // namespace
}  // namespace confpod::vmm
