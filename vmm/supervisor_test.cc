#include "vmm/supervisor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/process.h"

namespace confpod::vmm {
namespace {

using namespace std::chrono_literals;

constexpr const char* kQemu = "/usr/bin/qemu-system-x86_64";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string fd_target(pid_t pid, int fd) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(
      "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec);
  return ec ? "" : target.string();
}

// A signal mask line of /proc/<pid>/status ("SigIgn", "SigBlk"): bit n-1 is signal n.
unsigned long long signal_mask(pid_t pid, const std::string& field) {
  std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);)
    if (line.rfind(field + ":", 0) == 0)
      return std::stoull(line.substr(field.size() + 1), nullptr, 16);
  ADD_FAILURE() << "no " << field << " for pid " << pid;
  return 0;
}

bool has_signal(unsigned long long mask, int sig) { return (mask >> (sig - 1)) & 1; }

// QEMU with no machine: starts in ~0.1 s, answers QMP, has no ACPI (powerdown does nothing).
SupervisorOptions machine_none(const testing::TempDir& dir) {
  SupervisorOptions options;
  options.qmp_socket = dir.path() + "/qmp.sock";
  options.pidfile = dir.path() + "/qemu.pid";
  options.log_file = dir.path() + "/qemu.log";
  options.argv = {
      kQemu,      "-machine", "none", "-nodefaults",
      "-display", "none",     "-qmp", "unix:" + options.qmp_socket + "," + kQmpServerOptions};
  options.qmp_timeout = 20s;
  return options;
}

TEST(Supervisor, StartIsolatesTheProcess) {
  testing::TempDir dir;
  // An inheritable fd the child must not get.
  std::string leak_path = dir.write("leak", "x");
  int leak = ::open(leak_path.c_str(), O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(leak, 0);
  // A signal the daemon ignores and one its starting thread blocks: QEMU must get neither
  // (an ignored disposition and the mask survive exec). QEMU 7.2 itself leaves both alone.
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTTIN);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  auto sup = Supervisor::start(machine_none(dir));
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGXFSZ, &previous, nullptr);
  ::close(leak);
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  pid_t pid = sup->pid();
  EXPECT_TRUE(sup->is_parent());
  EXPECT_EQ(read_file(dir.path() + "/qemu.pid"), std::to_string(pid) + "\n");
  EXPECT_EQ(::getpgid(pid), pid);  // own process group
  EXPECT_EQ(::getsid(pid), pid);   // own session
  EXPECT_EQ(fd_target(pid, 0), "/dev/null");
  EXPECT_EQ(fd_target(pid, 1), dir.path() + "/qemu.log");
  EXPECT_EQ(fd_target(pid, 2), dir.path() + "/qemu.log");
  EXPECT_FALSE(has_signal(signal_mask(pid, "SigIgn"), SIGXFSZ));
  EXPECT_FALSE(has_signal(signal_mask(pid, "SigBlk"), SIGTTIN));
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    EXPECT_NE(std::filesystem::read_symlink(entry.path(), ec).string(), leak_path);
  }
  auto status = sup->status();
  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_EQ(*status, "running");
  auto none = sup->poll_exit();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto exit = sup->kill();
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_EQ(exit->cause, ExitCause::kKilledBySupervisor);
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/qemu.pid"));  // removed once dead
}

// A watcher takes events as they come (Manager: on the QMP fd), and the exit is still
// classified by the SHUTDOWN event it took.
TEST(Supervisor, EventsAreHandedOutAsTheyComeAndTheShutdownStillCounts) {
  testing::TempDir dir;
  auto sup = Supervisor::start(machine_none(dir));
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  EXPECT_GE(sup->qmp_fd(), 0);
  ASSERT_TRUE(sup->qmp().execute("stop").ok());
  std::vector<std::string> names;
  for (int i = 0; i < 50 && names.empty(); ++i) {
    for (const auto& e : sup->take_new_events()) names.push_back(e.name);
    if (names.empty()) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(names, std::vector<std::string>{"STOP"});
  EXPECT_TRUE(sup->take_new_events().empty()) << "each event is handed out once";
  ASSERT_TRUE(sup->qmp().quit().ok());
  bool shutdown = false;
  for (int i = 0; i < 250 && !shutdown && !sup->qmp_closed(); ++i) {
    for (const auto& e : sup->take_new_events()) shutdown = shutdown || e.name == "SHUTDOWN";
    if (!shutdown) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(shutdown);
  auto exit = sup->wait_exit(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_TRUE(exit->shutdown_event_seen);
  EXPECT_EQ(exit->shutdown_reason, "host-qmp-quit");
  EXPECT_EQ(exit->cause, ExitCause::kHostQuit);
}

TEST(Supervisor, StopWithoutAcpiFallsBackToKill) {
  testing::TempDir dir;
  auto sup = Supervisor::start(machine_none(dir));
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  auto start = std::chrono::steady_clock::now();
  auto exit = sup->stop(300ms);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(exit->cause, ExitCause::kKilledBySupervisor);
  EXPECT_FALSE(exit->shutdown_event_seen);
  // Asking again returns the same answer.
  auto again = sup->stop(300ms);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->cause, ExitCause::kKilledBySupervisor);
}

TEST(Supervisor, ExternalSigkillIsACrashNotOurs) {
  testing::TempDir dir;
  auto sup = Supervisor::start(machine_none(dir));
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  ASSERT_EQ(::kill(sup->pid(), SIGKILL), 0);
  auto exit = sup->wait_exit(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_EQ(exit->cause, ExitCause::kSignaled);
  EXPECT_EQ(exit->signal, SIGKILL);
}

TEST(Supervisor, SigtermIsAGracefulHostSignal) {
  testing::TempDir dir;
  auto sup = Supervisor::start(machine_none(dir));
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  ASSERT_EQ(::kill(sup->pid(), SIGTERM), 0);
  auto exit = sup->wait_exit(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_EQ(exit->cause, ExitCause::kHostSignal);
  EXPECT_EQ(exit->shutdown_reason, "host-signal");
  EXPECT_EQ(exit->exit_code, 0);
}

TEST(Supervisor, WaitExitTimesOut) {
  testing::TempDir dir;
  auto sup = Supervisor::start(machine_none(dir));
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  auto exit = sup->wait_exit(100ms);
  ASSERT_FALSE(exit.ok());
  EXPECT_EQ(exit.error().code, "vmm.supervisor.timeout");
  ASSERT_TRUE(sup->kill().ok());
}

TEST(Supervisor, BadOptionIsAnEarlyExitWithTheLog) {
  testing::TempDir dir;
  auto options = machine_none(dir);
  options.argv.push_back("-no-such-option");
  auto sup = Supervisor::start(options);
  ASSERT_FALSE(sup.ok());
  EXPECT_EQ(sup.error().code, "vmm.supervisor.early_exit");
  EXPECT_NE(sup.error().message.find("exited-with-error, exit code 1"), std::string::npos)
      << sup.error().message;
  EXPECT_NE(sup.error().message.find("-no-such-option"), std::string::npos) << sup.error().message;
}

// QEMU blocks for the QMP client early (kQmpServerOptions), so a later error (here a kernel
// that does not exist, found while the machine is built) comes after the connect: still an
// early exit with QEMU's own words, not a QMP error.
TEST(Supervisor, AnErrorAfterTheQmpConnectIsAnEarlyExitWithTheLog) {
  testing::TempDir dir;
  auto options = machine_none(dir);
  options.argv = {kQemu,     "-machine",
                  "q35",     "-accel",
                  "tcg",     "-m",
                  "64",      "-display",
                  "none",    "-nodefaults",
                  "-kernel", dir.path() + "/no-such-kernel",
                  "-qmp",    "unix:" + options.qmp_socket + "," + kQmpServerOptions};
  auto sup = Supervisor::start(options);
  ASSERT_FALSE(sup.ok());
  EXPECT_EQ(sup.error().code, "vmm.supervisor.early_exit") << sup.error().describe();
  EXPECT_NE(sup.error().message.find("no-such-kernel"), std::string::npos) << sup.error().message;
}

// A daemon started with stdin closed gets 0 from its next open(): the log must still reach
// QEMU's stdout and stderr, not be overwritten by the /dev/null meant for its stdin.
TEST(Supervisor, StartWithStdinClosedStillLogs) {
  testing::TempDir dir;
  const int saved_stdin = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
  ASSERT_GE(saved_stdin, 0);
  ::close(0);
  {
    auto sup = Supervisor::start(machine_none(dir));
    ASSERT_TRUE(sup.ok()) << sup.error().describe();
    EXPECT_EQ(fd_target(sup->pid(), 0), "/dev/null");
    EXPECT_EQ(fd_target(sup->pid(), 1), dir.path() + "/qemu.log");
    EXPECT_EQ(fd_target(sup->pid(), 2), dir.path() + "/qemu.log");
    auto exit = sup->kill();
    ASSERT_TRUE(exit.ok()) << exit.error().describe();
  }
  // Only now: the supervisor's own descriptors (pidfd, QMP) may have taken 0 meanwhile.
  ::dup2(saved_stdin, 0);
  ::close(saved_stdin);
}

TEST(Supervisor, ExecFailureIsReported) {
  testing::TempDir dir;
  auto options = machine_none(dir);
  options.argv[0] = dir.write("not-a-program", "no shebang, no ELF\n");
  ::chmod(options.argv[0].c_str(), 0755);
  auto sup = Supervisor::start(options);
  ASSERT_FALSE(sup.ok());
  EXPECT_EQ(sup.error().code, "vmm.supervisor.exec");
  options.argv[0] = "qemu-system-x86_64";  // relative: refused before spawning
  EXPECT_EQ(Supervisor::start(options).error().code, "vmm.supervisor.argv");
}

TEST(Supervisor, RefusesASocketAnotherQemuServes) {
  testing::TempDir dir;
  auto first = Supervisor::start(machine_none(dir));
  ASSERT_TRUE(first.ok()) << first.error().describe();
  auto options = machine_none(dir);
  options.pidfile = dir.path() + "/second.pid";
  auto second = Supervisor::start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, "vmm.supervisor.socket_in_use");
  ASSERT_TRUE(first->kill().ok());
}

TEST(Supervisor, ReattachAfterTheObjectIsGone) {
  testing::TempDir dir;
  auto options = machine_none(dir);
  pid_t pid;
  {
    auto sup = Supervisor::start(options);
    ASSERT_TRUE(sup.ok()) << sup.error().describe();
    pid = sup->pid();
  }  // the destructor leaves QEMU running
  ASSERT_EQ(::kill(pid, 0), 0);
  auto again = Supervisor::attach(options.pidfile, options.qmp_socket);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->pid(), pid);
  EXPECT_TRUE(again->is_parent());  // same process: still its parent
  auto status = again->status();
  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_EQ(*status, "running");
  ASSERT_TRUE(again->qmp().quit().ok());
  auto exit = again->wait_exit(10s);
  ASSERT_TRUE(exit.ok()) << exit.error().describe();
  EXPECT_EQ(exit->cause, ExitCause::kHostQuit);
  EXPECT_EQ(exit->exit_code, 0);
}

TEST(Supervisor, AttachChecksIdentity) {
  testing::TempDir dir;
  auto options = machine_none(dir);
  auto sup = Supervisor::start(options);
  ASSERT_TRUE(sup.ok()) << sup.error().describe();
  // Same pid, another socket: not our QEMU.
  auto wrong = Supervisor::attach(options.pidfile, dir.path() + "/qmp.so");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "vmm.supervisor.attach");
  EXPECT_NE(wrong.error().message.find("does not name that socket"), std::string::npos);
  // A pid that is ours but not QEMU (this test process).
  std::string self = dir.write("self.pid", std::to_string(::getpid()) + "\n");
  EXPECT_EQ(Supervisor::attach(self, options.qmp_socket).error().code, "vmm.supervisor.attach");
  // Garbage and missing pidfiles.
  EXPECT_EQ(Supervisor::attach(dir.write("junk.pid", "12ab\n"), options.qmp_socket).error().code,
            "vmm.supervisor.attach");
  EXPECT_EQ(Supervisor::attach(dir.path() + "/none.pid", options.qmp_socket).error().code,
            "vmm.supervisor.attach");
  ASSERT_TRUE(sup->kill().ok());
  // The pidfile is gone after exit; a stale copy names a dead pid.
  std::string stale = dir.write("stale.pid", std::to_string(sup->pid()) + "\n");
  auto dead = Supervisor::attach(stale, options.qmp_socket);
  ASSERT_FALSE(dead.ok());
  EXPECT_EQ(dead.error().code, "vmm.supervisor.attach");
}

TEST(SupervisorDetail, IdentityMatchesWholePathsOnly) {
  testing::TempDir proc;
  std::filesystem::create_directories(proc.path() + "/42");
  std::string cmdline("/usr/bin/qemu-system-x86_64\0-qmp\0unix:/run/a/qmp.sock,server=on\0", 62);
  proc.write("42/cmdline", cmdline);
  EXPECT_TRUE(detail::check_qemu_identity(proc.path(), 42, "/run/a/qmp.sock").ok());
  EXPECT_FALSE(detail::check_qemu_identity(proc.path(), 42, "/run/a/qmp.soc").ok());
  EXPECT_FALSE(detail::check_qemu_identity(proc.path(), 42, "a/qmp.sock").ok());
  EXPECT_FALSE(detail::check_qemu_identity(proc.path(), 43, "/run/a/qmp.sock").ok());
}

}  // namespace
}  // namespace confpod::vmm
