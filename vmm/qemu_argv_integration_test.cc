// The tee=none argv against the real QEMU (TCG): QEMU must accept every argument, create its
// QMP socket and greet on it. -S keeps the guest stopped; we kill QEMU after the check.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/process.h"
#include "vmm/qemu_argv.h"

namespace confpod::vmm {
namespace {

std::string guest_kernel() {
  for (const auto& e : std::filesystem::directory_iterator("/boot"))
    if (e.path().filename().string().rfind("vmlinuz-", 0) == 0) return e.path().string();
  return "";
}

// Reads QEMU's QMP greeting ({"QMP": ...}) from the unix socket, or "" if none arrives.
std::string qmp_greeting(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) out.assign(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

TEST(QemuArgvSmoke, RealQemuAcceptsTheTeeNoneArgv) {
  const std::string kernel = guest_kernel();
  ASSERT_FALSE(kernel.empty()) << "no /boot/vmlinuz-* to boot";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/qemu-system-x86_64"));
  testing::TempDir dir;
  VmConfig c;
  c.name = "smoke";
  c.vcpus = 1;
  c.memory_mib = 256;
  c.accel = "tcg";
  c.tee = Tee::kNone;
  c.allow_insecure_tee = true;
  c.kernel = kernel;
  c.kernel_cmdline = "console=ttyS0";
  c.qmp_socket = dir.path() + "/qmp.sock";
  c.pidfile = dir.path() + "/qemu.pid";
  c.serial_log = dir.path() + "/serial.log";
  c.channels.push_back({"org.confpod.agent.0", dir.path() + "/agent.sock"});
  c.disks.push_back({dir.write("image,0.tar", std::string(4096, '\0')), true, "raw", "image0"});
  Nic nic;
  c.nics.push_back(nic);
  auto argv = qemu_argv(c);
  ASSERT_TRUE(argv.ok()) << argv.error().describe();
  std::vector<std::string> args = *argv;
  args.push_back("-S");  // stop before the first instruction

  const std::string err_path = dir.path() + "/stderr";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(err, 2);
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  // Wait (at most 10 s) for the QMP socket; QEMU exiting first means it rejected the argv.
  int status = 0;
  bool exited = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    if (std::filesystem::exists(c.qmp_socket) && std::filesystem::exists(c.pidfile)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string greeting;
  if (!exited) {
    greeting = qmp_greeting(c.qmp_socket);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a late rejection
    exited = waitpid(pid, &status, WNOHANG) == pid;
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  std::ifstream err(err_path);
  std::string stderr_text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(exited) << "QEMU exited: " << stderr_text;
  EXPECT_NE(greeting.find("\"QMP\""), std::string::npos) << greeting << stderr_text;
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/agent.sock"));
  EXPECT_TRUE(std::filesystem::exists(c.serial_log));
}

}  // namespace
}  // namespace confpod::vmm
