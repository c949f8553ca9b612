// confpod-probe: a static test program that goes into test images (examples/hello/build-image
// --add) and reports, from inside a container, what the container may do. Each check prints
// "name=RESULT" where RESULT is "ok" or the errno name (EPERM, EACCES, ...), so a test asserts
// on the kernel's answer, not on a shell's wording.
//
//   confpod-probe privileges   write to /, mount, init_module, reboot (with a bad magic: EINVAL
//                              when allowed, so it never reboots anything), unshare, clone of
//                              a user namespace, opening /proc/sysrq-trigger for writing (never
//                              written), an AF_VSOCK socket, and the process's uid, CapEff, CapInh,
//                              NoNewPrivs, Seccomp from /proc/self/status
//   confpod-probe alloc MIB    allocates and touches MIB MiB, one MiB at a time
//   confpod-probe burn SECONDS spins for SECONDS of wall time, then prints cpu_ms and wall_ms
//
// With "-t TAG" first, every line starts with "TAG." (a pod's containers share one log).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace {

std::string tag;  // "" or "TAG."

void line(const char* format, ...) __attribute__((format(printf, 1, 2)));
void line(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::printf("%s", tag.c_str());
  std::vprintf(format, args);
  va_end(args);
}

const char* result(long rc) { return rc == 0 ? "ok" : strerrorname_np(errno); }

void report(const char* name, long rc) { line("%s=%s\n", name, rc >= 0 ? "ok" : result(-1)); }

void status_field(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string text;
  while (std::getline(in, text))
    if (text.rfind(std::string(field) + ":", 0) == 0) {
      std::string value = text.substr(std::strlen(field) + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      line("%s=%s\n", field, value.c_str());
    }
}

int privileges() {
  line("uid=%u\n", ::getuid());
  errno = 0;
  int fd = ::open("/confpod-probe-file", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  report("write_root", fd);
  if (fd >= 0) {
    ::close(fd);
    ::unlink("/confpod-probe-file");
  }
  ::mkdir("/tmp/confpod-probe-mnt", 0755);
  report("mount", ::mount("none", "/tmp/confpod-probe-mnt", "tmpfs", 0, nullptr));
  report("init_module", ::syscall(SYS_init_module, nullptr, 0, ""));
  // A bad magic: the kernel checks CAP_SYS_BOOT first (EPERM), then the magic (EINVAL).
  report("reboot", ::syscall(SYS_reboot, 0, 0, 0, nullptr));
  report("unshare", ::unshare(CLONE_NEWNS));
  // Opened for writing, never written: the open alone shows whether the VM could be crashed.
  const int sysrq = ::open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
  report("sysrq", sysrq);
  if (sysrq >= 0) ::close(sysrq);
  const int vsock = ::socket(40 /* AF_VSOCK */, SOCK_STREAM | SOCK_CLOEXEC, 0);
  report("vsock", vsock);
  if (vsock >= 0) ::close(vsock);
  long pid = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) ::_exit(0);
  if (pid > 0) ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  report("clone_newuser", pid);
  status_field("CapEff");
  status_field("CapInh");
  status_field("NoNewPrivs");
  status_field("Seccomp");
  return 0;
}

int alloc(long mib) {
  for (long i = 1; i <= mib; ++i) {
    char* block = static_cast<char*>(std::malloc(1 << 20));
    if (block == nullptr) {
      line("alloc failed at %ld MiB\n", i);
      return 1;
    }
    std::memset(block, 0x5a, 1 << 20);
    if (i % 16 == 0) {
      line("allocated %ld MiB\n", i);
      std::fflush(stdout);
    }
  }
  line("allocated all %ld MiB\n", mib);
  return 0;
}

int burn(long seconds) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  volatile unsigned long spin = 0;
  while (Clock::now() - start < std::chrono::seconds(seconds))
    for (int i = 0; i < 100000; ++i) spin = spin + 1;
  const long wall_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const long cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                      (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
  line("cpu_ms=%ld\n", cpu_ms);
  line("wall_ms=%ld\n", wall_ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc > 2 && std::string(argv[1]) == "-t") {
    tag = std::string(argv[2]) + ".";
    argc -= 2;
    argv += 2;
  }
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "privileges") return privileges();
  if (what == "alloc" && argc > 2) return alloc(std::atol(argv[2]));
  if (what == "burn" && argc > 2) return burn(std::atol(argv[2]));
  std::fprintf(stderr, "usage: confpod-probe [-t TAG] privileges | alloc MIB | burn SECONDS\n");
  return 2;
}
