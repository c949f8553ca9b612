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

namespace {

// Run by unshare(1) in a private mount namespace: libvirt's directories become fresh tmpfs,
// libvirt-qemu exists, QEMU runs as nobody; then it becomes libvirtd (same pid).
constexpr const char* kSystemScript = R"(set -e
dir=$1
# Only in this namespace: a copy of /etc with libvirt's configuration and the libvirt-qemu
# user Debian's libvirt resolves before reading qemu.conf, and fresh /run, /var/lib,
# /var/cache, /var/log. Nothing is created on the machine's own filesystems.
mkdir "$dir/etc"
mount -t tmpfs tmpfs "$dir/etc"
cp -a /etc/. "$dir/etc/"
mkdir -p "$dir/etc/libvirt"
grep -q '^libvirt-qemu:' "$dir/etc/passwd" || echo 'libvirt-qemu:x:64055:64055::/nonexistent:/usr/sbin/nologin' >> "$dir/etc/passwd"
grep -q '^libvirt-qemu:' "$dir/etc/group" || echo 'libvirt-qemu:x:64055:' >> "$dir/etc/group"
printf 'user = "nobody"\ngroup = "nogroup"\ncgroup_controllers = [ ]\nnamespaces = [ ]\nstdio_handler = "file"\n' > "$dir/etc/libvirt/qemu.conf"
printf 'auth_unix_rw = "none"\nauth_unix_ro = "none"\nunix_sock_rw_perms = "0700"\n' > "$dir/etc/libvirt/libvirtd.conf"
mount --bind "$dir/etc" /etc
for d in /run /var/lib /var/cache /var/log; do mount -t tmpfs tmpfs "$d"; done
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
touch "$dir/mounted"
exec /usr/sbin/libvirtd --timeout 300
)";

}  // namespace

std::optional<std::string> TestLibvirtd::unavailable() {
  if (::geteuid() != 0) return "needs root to run libvirtd as nobody";
  for (const char* tool : {"/usr/sbin/libvirtd", "/usr/bin/setpriv", "/usr/bin/unshare",
                           "/usr/bin/qemu-system-x86_64"})
    if (::access(tool, X_OK) != 0) return std::string(tool) + " is missing";
  // libvirt-daemon-driver-qemu (a dependency of libvirt-daemon, which scripts/bootstrap
  // installs).
  if (!fs::exists("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"))
    return "libvirt's QEMU driver is not installed";
  return std::nullopt;
}

TestLibvirtd::TestLibvirtd(Mode mode) : mode_(mode), dir_(std::make_unique<TempDir>()) {
  for (const char* sub : {"home", "run", "vm"}) fs::create_directories(dir_->path() + "/" + sub);
  if (::chown(dir_->path().c_str(), kUid, kGid) != 0) return;
  for (const char* sub : {"home", "run", "vm"})
    if (::chown((dir_->path() + "/" + sub).c_str(), kUid, kGid) != 0) return;
  ::chmod(dir_->path().c_str(), 0755);
  if (mode_ == Mode::kSystem) std::ofstream(dir_->path() + "/libvirtd-system.sh") << kSystemScript;
  spawn();
}

void TestLibvirtd::spawn() {
  const std::string script = dir_->path() + "/libvirtd-system.sh";
  pid_ = ::fork();
  if (pid_ == 0) {
    // Its own log, not the test's output (it complains about what a CI machine lacks).
    const std::string log = dir_->path() + "/libvirtd.log";
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    if (mode_ == Mode::kSystem) {
      ::execl("/usr/bin/unshare", "unshare", "--mount", "--propagation", "private", "/bin/sh",
              script.c_str(), dir_->path().c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const std::string home = "HOME=" + dir_->path() + "/home";
    const std::string run = "XDG_RUNTIME_DIR=" + dir_->path() + "/run";
    ::execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "/usr/bin/env", "-i", home.c_str(), run.c_str(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "/usr/sbin/libvirtd", "--timeout", "300", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // unshare and the script exec in place: the child's pid is libvirtd's, and its /run/libvirt
  // is reached through /proc/<pid>/root.
  run_dir_ = mode_ == Mode::kSystem ? "/proc/" + std::to_string(pid_) + "/root/run/libvirt"
                                    : dir_->path() + "/run/libvirt";
  socket_ = run_dir_ + "/libvirt-sock";
  for (int i = 0; i < 200 && !fs::exists(socket_) && !reap_if_exited(); ++i) ::usleep(50'000);
}

void TestLibvirtd::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) != 0) {
      pid_ = -1;
      return;
    }
    ::usleep(50'000);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

bool TestLibvirtd::start_again() {
  if (mode_ != Mode::kSession || pid_ > 0) return false;
  // It removes its socket when it exits cleanly; a stale one would look like a start.
  std::error_code ec;
  fs::remove(socket_, ec);
  spawn();
  return started();
}

TestLibvirtd::~TestLibvirtd() {
  // The QEMUs it still runs (a test that failed half-way, also one that failed while libvirtd
  // was stopped) go first: libvirtd leaves its domains running when it exits.
  if (!run_dir_.empty()) {
    const std::string pids = run_dir_ + (mode_ == Mode::kSystem ? "/qemu" : "/qemu/run");
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(pids, ec)) {
      if (entry.path().extension() != ".pid") continue;
      std::ifstream in(entry.path());
      pid_t qemu = -1;
      if (in >> qemu && qemu > 1) ::kill(qemu, SIGKILL);
    }
  }
  stop();
}

bool TestLibvirtd::reap_if_exited() {
  if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) != 0) pid_ = -1;
  return pid_ <= 0;
}

bool TestLibvirtd::started() const { return pid_ > 0 && fs::exists(socket_); }

bool TestLibvirtd::cannot_mount() const {
  return mode_ == Mode::kSystem && !fs::exists(dir_->path() + "/mounted");
}

std::string TestLibvirtd::uri() const {
  return std::string(mode_ == Mode::kSystem ? "qemu+unix:///system" : "qemu+unix:///session") +
         "?socket=" + socket_;
}

pid_t TestLibvirtd::qemu_pid(const std::string& name) const {
  // Session: <run>/qemu/run/<name>.pid; system: /run/libvirt/qemu/<name>.pid.
  std::ifstream in(run_dir_ + (mode_ == Mode::kSystem ? "/qemu/" : "/qemu/run/") + name + ".pid");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

std::string TestLibvirtd::log() const {
  std::ifstream in(dir_->path() + "/libvirtd.log");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace confpod::testing
