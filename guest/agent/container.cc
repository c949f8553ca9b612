#include "guest/agent/container.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "guest/agent/confine.h"

namespace confpod::guest::agent {
namespace {

constexpr const char* kOldRoot = "/.confpod-old-root";
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Device nodes a container gets, bind-mounted from the agent's /dev when present.
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom", "tty"};

std::string errno_text(int err) { return std::strerror(err); }

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return make_error("container.start", "pipe2: " + errno_text(errno));
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

Status set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return make_error("container.start", "fcntl O_NONBLOCK: " + errno_text(errno));
  return ok_status();
}

// Child-side failure: the message goes to the parent through the close-on-exec error pipe
// (an exec that succeeds closes it with nothing written), then the child ends.
[[noreturn]] void fail(int err_fd, const std::string& message) {
  std::size_t off = 0;
  while (off < message.size()) {
    ssize_t n = ::write(err_fd, message.data() + off, message.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  ::_exit(127);
}

[[noreturn]] void fail_errno(int err_fd, const std::string& what) {
  fail(err_fd, what + ": " + errno_text(errno));
}

// The agent blocks SIGCHLD (signalfd) and ignores SIGPIPE; both would survive exec.
void reset_signals() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
}

void redirect_stdio(int err_fd, int in_fd, int out_fd, int errout_fd) {
  if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(errout_fd, 2) < 0)
    fail_errno(err_fd, "dup2");
}

// mkdir -p inside the current root; components that exist are fine.
bool make_dirs(const std::string& path, mode_t mode) {
  std::string partial;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    partial += "/" + part;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) return false;
  }
  return true;
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return path.substr(0, slash);
}

std::string path_from_env(const std::vector<std::string>& env) {
  for (const auto& entry : env)
    if (entry.rfind("PATH=", 0) == 0) return entry.substr(5);
  return kDefaultPath;
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// execve with the lookup done in the container's PATH (execvpe would use the agent's).
[[noreturn]] void exec_command(int err_fd, const std::vector<std::string>& argv,
                               const std::vector<std::string>& env) {
  if (argv.empty() || argv[0].empty()) fail(err_fd, "exec: empty command");
  auto args = c_strings(argv);
  auto envp = c_strings(env);
  const std::string& name = argv[0];
  if (name.find('/') != std::string::npos) {
    ::execve(name.c_str(), args.data(), envp.data());
    fail_errno(err_fd, "exec " + name);
  }
  std::string path = path_from_env(env);
  int first_error = ENOENT;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    ::execve(candidate.c_str(), args.data(), envp.data());
    if (errno == EACCES)
      first_error = EACCES;
    else if (errno != ENOENT && errno != ENOTDIR)
      fail_errno(err_fd, "exec " + candidate);
    start = end + 1;
  }
  fail(err_fd, "exec " + name + ": " + errno_text(first_error) + " (searched PATH=" + path + ")");
}

bool parse_id(const std::string& text, unsigned* out) {
  if (text.empty() || text.size() > 10) return false;
  unsigned long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 0xfffffffeul) return false;
  *out = static_cast<unsigned>(value);
  return true;
}

// Looks a name up in a passwd/group style file of the container's root: field 0 = name,
// field 2 = id, for passwd field 3 = primary gid. The container's root may have replaced the
// file with a FIFO, a device or a link into /proc/self/fd: only a regular file of sane size
// is read, opened without blocking, so the lookup can neither hang nor read another stream.
bool lookup_db(const char* file, const std::string& name, unsigned* id, unsigned* gid) {
  constexpr off_t kMaxSize = 4 << 20;
  UniqueFd fd(::open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxSize)
    return false;
  std::string text;
  char buf[8192];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || text.size() + static_cast<std::size_t>(n) > static_cast<std::size_t>(kMaxSize))
      return false;
    text.append(buf, static_cast<std::size_t>(n));
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string f;
    while (std::getline(ss, f, ':')) fields.push_back(f);
    if (fields.size() < 3 || fields[0] != name) continue;
    if (!parse_id(fields[2], id)) return false;
    if (gid != nullptr && (fields.size() < 4 || !parse_id(fields[3], gid))) return false;
    return true;
  }
  return false;
}

struct Ids {
  uid_t uid = 0;
  gid_t gid = 0;
};

// The image's User ("", "uid", "uid:gid", "name", "name:group"), resolved in the container's
// own /etc/passwd and /etc/group (the current root is the container's).
Ids resolve_user(int err_fd, const std::string& user) {
  Ids ids;
  if (user.empty()) return ids;
  std::string u = user, g;
  if (auto colon = user.find(':'); colon != std::string::npos) {
    u = user.substr(0, colon);
    g = user.substr(colon + 1);
  }
  unsigned uid = 0, gid = 0;
  bool have_gid = false;
  if (!parse_id(u, &uid)) {
    if (!lookup_db("/etc/passwd", u, &uid, &gid))
      fail(err_fd, "user " + u + ": not in /etc/passwd");
    have_gid = true;
  }
  if (!g.empty()) {
    if (!parse_id(g, &gid) && !lookup_db("/etc/group", g, &gid, nullptr))
      fail(err_fd, "group " + g + ": not in /etc/group");
    have_gid = true;
  }
  ids.uid = uid;
  ids.gid = have_gid ? gid : uid == 0 ? 0 : uid;
  return ids;
}

void switch_user(int err_fd, const Ids& ids) {
  if (ids.uid == 0 && ids.gid == 0) return;
  gid_t groups[1] = {ids.gid};
  if (::setgroups(1, groups) != 0) fail_errno(err_fd, "setgroups");
  if (::setresgid(ids.gid, ids.gid, ids.gid) != 0) fail_errno(err_fd, "setresgid");
  if (::setresuid(ids.uid, ids.uid, ids.uid) != 0) fail_errno(err_fd, "setresuid");
}

void mount_dev(int err_fd) {
  if (::mkdir("/dev", 0755) != 0 && errno != EEXIST) fail_errno(err_fd, "mkdir /dev");
  if (::mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") != 0)
    fail_errno(err_fd, "mount tmpfs /dev");
  for (const char* dev : kDevices) {
    std::string source = std::string(kOldRoot) + "/dev/" + dev;
    struct stat st;
    if (::stat(source.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
    std::string target = std::string("/dev/") + dev;
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) fail_errno(err_fd, "create " + target);
    ::close(fd);
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
      fail_errno(err_fd, "bind-mount " + target);
  }
  const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "/dev/fd"},
                                                       {"/proc/self/fd/0", "/dev/stdin"},
                                                       {"/proc/self/fd/1", "/dev/stdout"},
                                                       {"/proc/self/fd/2", "/dev/stderr"}};
  for (const auto& [to, from] : links)
    if (::symlink(to, from) != 0) fail_errno(err_fd, std::string("symlink ") + from);
  if (::mkdir("/dev/shm", 01777) != 0) fail_errno(err_fd, "mkdir /dev/shm");
  if (::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
    fail_errno(err_fd, "mount tmpfs /dev/shm");
}

// Each secret's directory becomes a tmpfs of this mount namespace only, so the bytes never
// reach a filesystem the agent (or the host-supplied disk) shares. Shorter paths are mounted
// first so a nested secret directory is not hidden by its parent's tmpfs.
void write_secrets(int err_fd, const std::vector<SecretFile>& secrets, const Ids& ids) {
  std::set<std::string> dirs;
  for (const auto& s : secrets) dirs.insert(parent_of(s.path));
  std::vector<std::string> ordered(dirs.begin(), dirs.end());
  std::sort(ordered.begin(), ordered.end(),
            [](const std::string& a, const std::string& b) { return a.size() < b.size(); });
  for (const auto& dir : ordered) {
    if (!make_dirs(dir, 0755)) fail_errno(err_fd, "mkdir " + dir);
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755") != 0)
      fail_errno(err_fd, "mount tmpfs " + dir);
  }
  for (const auto& s : secrets) {
    int fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    if (fd < 0) fail_errno(err_fd, "create secret " + s.path);
    const Bytes& data = s.data.bytes();
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail_errno(err_fd, "write secret " + s.path);
      off += static_cast<std::size_t>(n);
    }
    if (::fchown(fd, ids.uid, ids.gid) != 0) fail_errno(err_fd, "chown secret " + s.path);
    ::close(fd);
  }
}

// What the OCI runtimes hide or freeze in a container's /proc (and /sys, which ours do not
// mount): kernel memory and key listings masked, the kernel's knobs read-only. Without this a
// root container could, say, crash the VM through /proc/sysrq-trigger.
constexpr const char* kMaskedPaths[] = {
    "/proc/acpi",        "/proc/asound",        "/proc/kcore",
    "/proc/keys",        "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug",   "/proc/scsi"};
constexpr const char* kReadOnlyPaths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                          "/proc/sysrq-trigger"};

void protect_proc(int err_fd) {
  for (const char* path : kMaskedPaths) {
    struct stat st;
    if (::stat(path, &st) != 0) continue;  // not in this kernel
    const bool dir = S_ISDIR(st.st_mode);
    const int rc = dir ? ::mount("tmpfs", path, "tmpfs",
                                 MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
                       : ::mount("/dev/null", path, nullptr, MS_BIND, nullptr);
    if (rc != 0) fail_errno(err_fd, std::string("mask ") + path);
  }
  for (const char* path : kReadOnlyPaths) {
    if (::access(path, F_OK) != 0) continue;
    if (::mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
        ::mount(nullptr, path, nullptr,
                MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      fail_errno(err_fd, std::string("make read-only ") + path);
  }
}

// Each tmpfs of the spec, in path order (a nested one after its parent).
void mount_tmpfs(int err_fd, const std::vector<std::string>& dirs) {
  std::vector<std::string> ordered = dirs;
  std::sort(ordered.begin(), ordered.end());
  for (const auto& dir : ordered) {
    if (!make_dirs(dir, 0755)) fail_errno(err_fd, "mkdir " + dir);
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777") != 0)
      fail_errno(err_fd, "mount tmpfs " + dir);
  }
}

// Joins the container's cgroup (limits apply from the first instruction on).
void join_cgroup(int err_fd, int cgroup_procs) {
  if (cgroup_procs < 0) return;
  if (::write(cgroup_procs, "0", 1) != 1) fail_errno(err_fd, "join the container's cgroup");
}

// Privileges, the last step before exec: the bounding set while still root, then the user,
// then what a root process keeps, no_new_privs, and the seccomp filter (which must come
// last: it may refuse the very calls the steps before it make).
void confine(int err_fd, const Ids& ids, const Confinement& c) {
  if (Status s = drop_bounding_set(c.capabilities); !s.ok()) fail(err_fd, s.error().message);
  switch_user(err_fd, ids);
  if (Status s = set_capabilities(ids.uid == 0 ? c.capabilities : std::vector<int>{}); !s.ok())
    fail(err_fd, s.error().message);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail_errno(err_fd, "no_new_privs");
}

void confine_seccomp(int err_fd, const Confinement& c) {
  if (!c.seccomp) return;
  if (Status s = load_default_seccomp(c.capabilities); !s.ok()) fail(err_fd, s.error().message);
}

struct StartFds {
  int err;
  int in;
  int out;
  int errout;
};

[[noreturn]] void container_child(const ContainerSpec& spec, const StartFds& fds) {
  int err_fd = fds.err;
  // The container must not outlive the agent (tests; in the VM the agent is PID 1 anyway).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  join_cgroup(err_fd, spec.confinement.cgroup_procs);
  reset_signals();
  redirect_stdio(err_fd, fds.in, fds.out, fds.errout);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    fail_errno(err_fd, "make / private");
  if (::mount(spec.rootfs.c_str(), spec.rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    fail_errno(err_fd, "bind-mount rootfs " + spec.rootfs);
  if (::chdir(spec.rootfs.c_str()) != 0) fail_errno(err_fd, "chdir " + spec.rootfs);
  std::string put_old = std::string(".") + kOldRoot;
  if (::mkdir(put_old.c_str(), 0700) != 0 && errno != EEXIST)
    fail_errno(err_fd, "mkdir " + put_old);
  if (::syscall(SYS_pivot_root, ".", put_old.c_str()) != 0) fail_errno(err_fd, "pivot_root");
  if (::chdir("/") != 0) fail_errno(err_fd, "chdir /");
  // proc and dev are mounted from inside the new root: symlinks in the image stay inside it.
  if (::mkdir("/proc", 0555) != 0 && errno != EEXIST) fail_errno(err_fd, "mkdir /proc");
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    fail_errno(err_fd, "mount proc");
  mount_dev(err_fd);
  protect_proc(err_fd);
  if (::umount2(kOldRoot, MNT_DETACH) != 0) fail_errno(err_fd, "umount old root");
  if (::rmdir(kOldRoot) != 0) fail_errno(err_fd, "rmdir old root");
  if (::sethostname(spec.hostname.data(), spec.hostname.size()) != 0)
    fail_errno(err_fd, "sethostname " + spec.hostname);
  Ids ids = resolve_user(err_fd, spec.user);
  mount_tmpfs(err_fd, spec.tmpfs);
  write_secrets(err_fd, spec.secrets, ids);
  // After every mount under it: the mount points had to be created first.
  if (spec.read_only_rootfs &&
      ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, nullptr) != 0)
    fail_errno(err_fd, "remount / read-only");
  confine(err_fd, ids, spec.confinement);
  const std::string& workdir = spec.workdir.empty() ? std::string("/") : spec.workdir;
  if (::chdir(workdir.c_str()) != 0) fail_errno(err_fd, "chdir " + workdir);
  confine_seccomp(err_fd, spec.confinement);
  exec_command(err_fd, spec.argv, spec.env);
}

// Reads the child's pre-exec error message; empty when exec succeeded (EOF, nothing written).
// Bounded in time: the child works in a root the container controls, and the agent must not
// hang on it. A child that neither execs nor fails within the limit is killed (with it, an
// exec's grandchild, through its parent-death signal).
std::string read_error(int fd, pid_t pid) {
  constexpr auto kLimit = std::chrono::seconds(30);
  auto deadline = std::chrono::steady_clock::now() + kLimit;
  std::string message;
  char buf[512];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    int ready = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      ::kill(pid, SIGKILL);
      return "did not start its command within 30 s";
    }
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    message.append(buf, static_cast<std::size_t>(n));
    if (message.size() > 4096) break;
  }
  return message;
}

// The child's ends of its stdio and the parent's. Without a pty: pipes for stdout and
// stderr, stdin from /dev/null or a pipe. With one: the slave for all three, the master here.
struct StdioPipes {
  Pipe out;
  Pipe err;
  Pipe in;
  Pipe status;
  UniqueFd null;
  UniqueFd pty_master;
  UniqueFd pty_slave;
  int child_in() const {
    return pty_slave ? pty_slave.get() : in.read ? in.read.get() : null.get();
  }
  int child_out() const { return pty_slave ? pty_slave.get() : out.write.get(); }
  int child_err() const { return pty_slave ? pty_slave.get() : err.write.get(); }
};

Result<StdioPipes> make_stdio(bool stdin_open = false) {
  StdioPipes p;
  CONFPOD_ASSIGN_OR_RETURN(p.out, make_pipe());
  CONFPOD_ASSIGN_OR_RETURN(p.err, make_pipe());
  CONFPOD_ASSIGN_OR_RETURN(p.status, make_pipe());
  if (stdin_open) {
    CONFPOD_ASSIGN_OR_RETURN(p.in, make_pipe());
  }
  p.null = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!p.null) return make_error("container.start", "open /dev/null: " + errno_text(errno));
  return p;
}

// A pty pair, opened by the agent: the container's mount namespace has no /dev/pts of ours.
Status open_pty(StdioPipes& p, unsigned rows, unsigned cols) {
  p.pty_master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.pty_master) return make_error("container.exec", "posix_openpt: " + errno_text(errno));
  if (::grantpt(p.pty_master.get()) != 0 || ::unlockpt(p.pty_master.get()) != 0)
    return make_error("container.exec", "unlockpt: " + errno_text(errno));
  char name[128];
  if (::ptsname_r(p.pty_master.get(), name, sizeof name) != 0)
    return make_error("container.exec", "ptsname: " + errno_text(errno));
  p.pty_slave = UniqueFd(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.pty_slave)
    return make_error("container.exec", std::string("open ") + name + ": " + errno_text(errno));
  return set_window_size(p.pty_master.get(), rows, cols);
}

// Parent side after the child exists: close the child's ends, wait for exec or its error.
Result<Process> finish_start(pid_t pid, StdioPipes& p, const std::string& code,
                             const std::string& what) {
  p.out.write.reset();
  p.err.write.reset();
  p.in.read.reset();
  p.status.write.reset();
  p.null.reset();
  p.pty_slave.reset();
  std::string message = read_error(p.status.read.get(), pid);
  if (!message.empty()) {
    (void)wait_for(pid);
    return make_error(code, what + ": " + message);
  }
  Process process;
  process.pid = pid;
  if (p.pty_master) {
    CONFPOD_TRY(set_nonblocking(p.pty_master.get()));
    process.stdin_fd = UniqueFd(::fcntl(p.pty_master.get(), F_DUPFD_CLOEXEC, 0));
    if (!process.stdin_fd) return make_error(code, "dup pty: " + errno_text(errno));
    process.stdout_fd = std::move(p.pty_master);
    process.pty = true;
    return process;
  }
  CONFPOD_TRY(set_nonblocking(p.out.read.get()));
  CONFPOD_TRY(set_nonblocking(p.err.read.get()));
  process.stdout_fd = std::move(p.out.read);
  process.stderr_fd = std::move(p.err.read);
  if (p.in.write) {
    CONFPOD_TRY(set_nonblocking(p.in.write.get()));
    process.stdin_fd = std::move(p.in.write);
  }
  return process;
}

}  // namespace

void SecretBytes::wipe() {
  if (!bytes_.empty()) ::explicit_bzero(bytes_.data(), bytes_.size());
  bytes_.clear();
}

Status set_window_size(int pty_fd, unsigned rows, unsigned cols) {
  if (rows == 0 || cols == 0) return ok_status();
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  if (::ioctl(pty_fd, TIOCSWINSZ, &ws) != 0)
    return make_error("container.exec", "TIOCSWINSZ: " + errno_text(errno));
  return ok_status();
}

int exit_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

Result<int> wait_for(pid_t pid) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, 0);
    if (r == pid) return exit_status(status);
    if (r < 0 && errno == EINTR) continue;
    return make_error("container.wait",
                      "waitpid " + std::to_string(pid) + ": " + errno_text(errno));
  }
}

Result<Process> start_container(const ContainerSpec& spec) {
  if (spec.argv.empty())
    return make_error("container.start", "container " + spec.name + ": no command");
  if (spec.rootfs.empty() || spec.rootfs[0] != '/')
    return make_error("container.start", "rootfs must be an absolute path: " + spec.rootfs);
  for (const auto& dir : spec.tmpfs)
    if (dir.size() < 2 || dir[0] != '/')
      return make_error("container.start",
                        "tmpfs must be an absolute directory other than /: " + dir);
  for (const auto& s : spec.secrets) {
    if (s.path.size() < 2 || s.path[0] != '/' || s.path.back() == '/')
      return make_error("container.start", "secret path must be an absolute file path: " + s.path);
    // Its directory becomes a tmpfs: "/" would hide the whole image.
    if (parent_of(s.path) == "/")
      return make_error("container.start", "secret path must not be directly under /: " + s.path);
  }
  CONFPOD_ASSIGN_OR_RETURN(StdioPipes p, make_stdio());
  // A raw clone without a new stack behaves like fork() with namespace flags; the agent is
  // single-threaded, so the child may allocate before exec.
  // No CLONE_NEWIPC: the pod's containers share the VM's IPC namespace, which holds nothing
  // but theirs (the agent uses no System V IPC or POSIX queues).
  long pid = ::syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | SIGCHLD, nullptr,
                       nullptr, nullptr, nullptr);
  if (pid < 0) return make_error("container.start", "clone: " + errno_text(errno));
  if (pid == 0) {
    container_child(
        spec, StartFds{p.status.write.get(), p.null.get(), p.out.write.get(), p.err.write.get()});
  }
  return finish_start(static_cast<pid_t>(pid), p, "container.start", "container " + spec.name);
}

Result<Process> exec_in_container(pid_t container_pid, const ExecRequest& request) {
  const auto& argv = request.argv;
  if (argv.empty()) return make_error("container.exec", "empty command");
  // Opened before forking so a failure is reported plainly; the order of setns matters only
  // for mnt, which must come last (it changes the root the /proc paths resolve in).
  const char* kinds[] = {"ipc", "uts", "pid", "mnt"};
  std::vector<UniqueFd> ns;
  for (const char* kind : kinds) {
    std::string path = "/proc/" + std::to_string(container_pid) + "/ns/" + kind;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return make_error("container.exec", "open " + path + ": " + errno_text(errno));
    ns.push_back(std::move(fd));
  }
  CONFPOD_ASSIGN_OR_RETURN(StdioPipes p, make_stdio(request.stdin_open && !request.tty));
  if (request.tty) CONFPOD_TRY(open_pty(p, request.rows, request.cols));
  pid_t pid = ::fork();
  if (pid < 0) return make_error("container.exec", "fork: " + errno_text(errno));
  if (pid == 0) {
    int err_fd = p.status.write.get();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The command's process enters a PID namespace where the container's own processes, root
    // among them, already run; until execve it holds the agent's memory and file descriptors
    // and has no seccomp filter yet. Not dumpable (inherited by the fork below, reset by
    // execve), neither ptrace nor /proc/<pid>/fd reaches it without CAP_SYS_PTRACE (runc does
    // the same for `runc exec`).
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) fail_errno(err_fd, "PR_SET_DUMPABLE");
    for (auto& fd : ns)
      if (::setns(fd.get(), 0) != 0) fail_errno(err_fd, "setns");
    // setns(CLONE_NEWPID) applies to children only: the command runs in a grandchild, and
    // this intermediate process relays its status.
    pid_t child = ::fork();
    if (child < 0) fail_errno(err_fd, "fork");
    if (child == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      join_cgroup(err_fd, request.confinement.cgroup_procs);
      reset_signals();
      if (p.pty_slave) {
        // A session of its own with the pty as its controlling terminal (job control, ^C).
        if (::setsid() < 0) fail_errno(err_fd, "setsid");
        if (::ioctl(p.pty_slave.get(), TIOCSCTTY, 0) != 0) fail_errno(err_fd, "TIOCSCTTY");
      }
      redirect_stdio(err_fd, p.child_in(), p.child_out(), p.child_err());
      // The root is now the container's: its /etc/passwd names the user.
      confine(err_fd, resolve_user(err_fd, request.user), request.confinement);
      // A change of credentials cleared it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const std::string& dir = request.workdir.empty() ? std::string("/") : request.workdir;
      if (::chdir(dir.c_str()) != 0) fail_errno(err_fd, "chdir " + dir);
      confine_seccomp(err_fd, request.confinement);
      exec_command(err_fd, argv, request.env);
    }
    ::close(err_fd);
    // Only the command holds its stdio: stdin must reach EOF when the agent closes its end,
    // and a pty must read EIO once the command is gone.
    p.out.write.reset();
    p.err.write.reset();
    p.in.read.reset();
    p.in.write.reset();
    p.pty_slave.reset();
    p.pty_master.reset();
    p.out.read.reset();
    p.err.read.reset();
    // The agent ends an exec by killing this process: the command goes with it.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGTERM, SIG_DFL);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    ::_exit(exit_status(status));
  }
  return finish_start(pid, p, "container.exec", "exec");
}

}  // namespace confpod::guest::agent
