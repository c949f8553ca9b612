#include "tests/support/libvirtd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace confpod::testing {

namespace fs = std::filesystem;

std::optional<std::string> SessionLibvirtd::unavailable() {
  if (::geteuid() != 0) return "needs root to run libvirtd as nobody";
  for (const char* tool : {"/usr/sbin/libvirtd", "/usr/bin/setpriv", "/usr/bin/qemu-system-x86_64"})
    if (::access(tool, X_OK) != 0) return std::string(tool) + " is missing";
  // libvirt-daemon-driver-qemu (a dependency of libvirt-daemon, which scripts/bootstrap
  // installs).
  if (!fs::exists("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"))
    return "libvirt's QEMU driver is not installed";
  return std::nullopt;
}

SessionLibvirtd::SessionLibvirtd() : dir_(std::make_unique<TempDir>()) {
  for (const char* sub : {"home", "run", "vm"}) fs::create_directories(dir_->path() + "/" + sub);
  if (::chown(dir_->path().c_str(), kUid, kGid) != 0) return;
  for (const char* sub : {"home", "run", "vm"})
    if (::chown((dir_->path() + "/" + sub).c_str(), kUid, kGid) != 0) return;
  ::chmod(dir_->path().c_str(), 0755);
  pid_ = ::fork();
  if (pid_ == 0) {
    // Its own log, not the test's output (it complains about what a CI machine lacks).
    const std::string log = dir_->path() + "/libvirtd.log";
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    const std::string home = "HOME=" + dir_->path() + "/home";
    const std::string run = "XDG_RUNTIME_DIR=" + dir_->path() + "/run";
    ::execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "/usr/bin/env", "-i", home.c_str(), run.c_str(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "/usr/sbin/libvirtd", "--timeout", "300", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  socket_ = dir_->path() + "/run/libvirt/libvirt-sock";
  for (int i = 0; i < 100 && !fs::exists(socket_); ++i) ::usleep(50'000);
}

SessionLibvirtd::~SessionLibvirtd() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool SessionLibvirtd::started() const { return pid_ > 0 && fs::exists(socket_); }

std::string SessionLibvirtd::uri() const { return "qemu+unix:///session?socket=" + socket_; }

pid_t SessionLibvirtd::qemu_pid(const std::string& name) const {
  std::ifstream in(dir_->path() + "/run/libvirt/qemu/run/" + name + ".pid");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

std::string SessionLibvirtd::log() const {
  std::ifstream in(dir_->path() + "/libvirtd.log");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace confpod::testing
