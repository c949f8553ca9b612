// Supervisor start-up overhead: time from Supervisor::start() until it returns with QMP
// ready (greeting read, capabilities negotiated), beside the bare minimum for the same QEMU
// argv measured in the same run: posix_spawn (bench/spawn.h), connect to the QMP socket, read
// the greeting.
// Runs alternate so drift on a shared machine hits both sides alike. Prints the medians and
// their ratio; target <= 1.05.
//
// Usage: supervisor_bench [ITERATIONS] [QEMU_BINARY]   (defaults: 15, /usr/bin/qemu-system-x86_64)
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/spawn.h"
#include "vmm/supervisor.h"

namespace {

using Clock = std::chrono::steady_clock;
using confpod::vmm::Supervisor;
using confpod::vmm::SupervisorOptions;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "supervisor_bench: %s\n", what.c_str());
  std::exit(1);
}

std::vector<std::string> qemu_argv(const std::string& qemu, const std::string& socket) {
  return {qemu,       "-machine", "none", "-nodefaults",
          "-display", "none",     "-qmp", "unix:" + socket + "," + confpod::vmm::kQmpServerOptions};
}

// The baseline: what any launcher must do at least. Returns seconds to the greeting.
double direct_start(const std::string& qemu, const std::string& socket) {
  std::filesystem::remove(socket);
  auto t0 = Clock::now();
  pid_t pid = -1;
  if (int e = confpod::bench::spawn_quiet(qemu_argv(qemu, socket), pid); e != 0)
    die(std::string("posix_spawn: ") + std::strerror(e));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
  int fd = -1;
  while (true) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) break;
    ::close(fd);
    if (Clock::now() - t0 > std::chrono::seconds(30)) die("direct: QMP socket never accepted");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The greeting is one line; read until its newline.
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') {
  }
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  ::close(fd);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return seconds;
}

double supervised_start(const std::string& qemu, const std::string& dir) {
  SupervisorOptions options;
  options.qmp_socket = dir + "/sup.sock";
  options.pidfile = dir + "/sup.pid";
  options.log_file = dir + "/sup.log";
  options.argv = qemu_argv(qemu, options.qmp_socket);
  auto t0 = Clock::now();
  auto sup = Supervisor::start(options);
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!sup.ok()) die("Supervisor::start: " + sup.error().describe());
  if (!sup->kill().ok()) die("kill");
  return seconds;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 15;
  std::string qemu = argc > 2 ? argv[2] : "/usr/bin/qemu-system-x86_64";
  if (iterations < 1) die("iterations must be >= 1");
  char dir_template[] = "/tmp/supervisor-bench-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) die("mkdtemp");
  std::string dir = dir_template;

  // One untimed run of each warms the page cache for the QEMU binary and its libraries.
  direct_start(qemu, dir + "/direct.sock");
  supervised_start(qemu, dir);
  std::vector<double> direct, supervised;
  for (int i = 0; i < iterations; ++i) {
    direct.push_back(direct_start(qemu, dir + "/direct.sock"));
    supervised.push_back(supervised_start(qemu, dir));
  }
  std::filesystem::remove_all(dir);
  double d = median(direct), s = median(supervised);
  std::printf(
      "qemu start to QMP ready, median of %d: Supervisor::start %.1f ms   direct %.1f ms   "
      "ratio %.3f   (target <= 1.05)\n",
      iterations, s * 1e3, d * 1e3, s / d);
  return 0;
}
