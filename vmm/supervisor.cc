#include "vmm/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace confpod::vmm {

namespace {

Error sup_error(const char* code, std::string message) {
  return make_error(std::string("vmm.supervisor.") + code, std::move(message));
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// The same open file as a descriptor numbered 3 or above (invalid if that fails): the child's
// dup2s onto 0, 1 and 2 must not overwrite a descriptor they copy from later, as they would
// for a daemon started with stdin closed, whose next open() returns 0.
UniqueFd above_stdio(UniqueFd fd) {
  if (!fd || fd.get() > 2) return fd;
  return UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }

// Last `max` bytes of a file, for error messages about a QEMU that died while starting.
std::string file_tail(const std::string& path, std::size_t max = 2048) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start =
      size > static_cast<std::streamoff>(max) ? size - static_cast<std::streamoff>(max) : 0;
  in.seekg(start);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  return tail;
}

Status write_pidfile(const std::string& path, pid_t pid) {
  // Write-then-rename so a reader never sees a half-written pid.
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return sup_error("io", errno_text("open " + tmp));
  std::string text = std::to_string(pid) + "\n";
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return sup_error("io", errno_text("write " + tmp));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return sup_error("io", errno_text("rename " + tmp));
  return ok_status();
}

// Whether a live server accepts on `path` (so starting a second QEMU on it would steal it).
bool socket_is_served(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  auto fd = detail::connect_unix(path, std::chrono::steady_clock::now(), "vmm.supervisor");
  return fd.ok();
}

pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  // Field 2 (comm) may hold spaces and parentheses: the fields after it start after the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 1));
  std::string state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

ExitCause cause_from_reason(const std::string& reason, bool guest) {
  if (reason == "guest-shutdown") return ExitCause::kGuestShutdown;
  if (reason == "guest-reset") return ExitCause::kGuestReset;
  if (reason == "guest-panic") return ExitCause::kGuestPanic;
  if (reason == "host-qmp-quit") return ExitCause::kHostQuit;
  if (reason == "host-signal") return ExitCause::kHostSignal;
  // host-ui, host-error, subsystem-reset, ... : attribute by who initiated it.
  return guest ? ExitCause::kGuestShutdown : ExitCause::kHostQuit;
}

}  // namespace

std::string to_string(ExitCause cause) {
  switch (cause) {
    case ExitCause::kGuestShutdown:
      return "guest-shutdown";
    case ExitCause::kGuestReset:
      return "guest-reset";
    case ExitCause::kGuestPanic:
      return "guest-panic";
    case ExitCause::kHostQuit:
      return "host-quit";
    case ExitCause::kHostSignal:
      return "host-signal";
    case ExitCause::kKilledBySupervisor:
      return "killed-by-supervisor";
    case ExitCause::kSignaled:
      return "signaled";
    case ExitCause::kExitedWithError:
      return "exited-with-error";
    case ExitCause::kExitedUnknown:
      return "exited-unknown";
  }
  return "unknown";
}

namespace detail {

Result<pid_t> read_pidfile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sup_error("attach", errno_text("open pidfile " + path));
  char buf[32];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0 || n == static_cast<ssize_t>(sizeof buf))
    return sup_error("attach", "pidfile " + path + " is empty or too long");
  std::string text(buf, static_cast<std::size_t>(n));
  if (text.back() == '\n') text.pop_back();
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos)
    return sup_error("attach", "pidfile " + path + " does not hold a decimal pid");
  long pid = std::stol(text);
  if (pid <= 1 || pid > 0x3fffffff)
    return sup_error("attach", "pidfile " + path + " holds pid " + text);
  return static_cast<pid_t>(pid);
}

Status check_qemu_identity(const std::string& proc_root, pid_t pid, const std::string& qmp_socket) {
  std::string path = proc_root + "/" + std::to_string(pid) + "/cmdline";
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return sup_error("attach", "pid " + std::to_string(pid) + " is not running (" + path + ")");
  std::string cmdline;
  cmdline.resize(1 << 20);  // a QEMU command line is a few KiB; cap what we read
  in.read(cmdline.data(), static_cast<std::streamsize>(cmdline.size()));
  cmdline.resize(static_cast<std::size_t>(in.gcount()));
  // Each argument is NUL-terminated. The socket path appears as "unix:PATH,..." (-qmp) or
  // "...,path=PATH,..." (-chardev): bounded by start/':'/'=' before and end/',' after.
  std::size_t begin = 0;
  while (begin < cmdline.size()) {
    std::size_t end = cmdline.find('\0', begin);
    if (end == std::string::npos) end = cmdline.size();
    std::string_view arg(cmdline.data() + begin, end - begin);
    for (std::size_t at = arg.find(qmp_socket); at != std::string_view::npos;
         at = arg.find(qmp_socket, at + 1)) {
      bool start_ok = at == 0 || arg[at - 1] == ':' || arg[at - 1] == '=';
      std::size_t after = at + qmp_socket.size();
      bool end_ok = after == arg.size() || arg[after] == ',';
      if (start_ok && end_ok) return ok_status();
    }
    begin = end + 1;
  }
  return sup_error("attach", "pid " + std::to_string(pid) + " is not the QEMU serving " +
                                 qmp_socket + " (its command line does not name that socket)");
}

}  // namespace detail

Result<Supervisor> Supervisor::start(const SupervisorOptions& options) {
  if (options.argv.empty() || options.argv[0].empty() || options.argv[0][0] != '/')
    return sup_error("argv", "argv[0] must be the absolute path of the QEMU binary");
  if (::access(options.argv[0].c_str(), X_OK) != 0)
    return sup_error("argv", errno_text(options.argv[0] + " is not executable"));
  if (options.qmp_socket.empty() || options.pidfile.empty() || options.log_file.empty())
    return sup_error("argv", "qmp_socket, pidfile and log_file are required");
  if (socket_is_served(options.qmp_socket))
    return sup_error("socket_in_use",
                     options.qmp_socket + " is already served by a running process");

  UniqueFd log = above_stdio(
      UniqueFd(::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)));
  if (!log) return sup_error("io", errno_text("open log " + options.log_file));
  UniqueFd devnull = above_stdio(UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC)));
  if (!devnull) return sup_error("io", errno_text("open /dev/null"));

  std::vector<char*> exec_argv;
  for (const auto& arg : options.argv) exec_argv.push_back(const_cast<char*>(arg.c_str()));
  exec_argv.push_back(nullptr);

  // posix_spawn rather than fork + exec: glibc starts the child in confpodd's address space
  // (vfork semantics, on a stack of its own, all signals blocked) and this thread resumes once
  // execve has succeeded or failed, with its error. A fork would copy the daemon's page tables
  // and then take a copy-on-write fault for every page the daemon's threads touch until QEMU
  // has exec'd: milliseconds on a virtual machine, for nothing QEMU uses.
  //   own session (and so process group): signals to the daemon's group (Ctrl-C, systemd's
  //     KillMode=control-group aside) do not reach QEMU, and stop() can kill QEMU's group;
  //   every signal back to its default and none blocked: ignored ones survive exec otherwise;
  //   stdin /dev/null, stdout and stderr the log, every other descriptor closed.
  posix_spawnattr_t attr;
  if (int e = ::posix_spawnattr_init(&attr); e != 0)
    return sup_error("io", std::string("posix_spawnattr_init: ") + std::strerror(e));
  std::unique_ptr<posix_spawnattr_t, int (*)(posix_spawnattr_t*)> attr_owner(
      &attr, ::posix_spawnattr_destroy);
  posix_spawn_file_actions_t actions;
  if (int e = ::posix_spawn_file_actions_init(&actions); e != 0)
    return sup_error("io", std::string("posix_spawn_file_actions_init: ") + std::strerror(e));
  std::unique_ptr<posix_spawn_file_actions_t, int (*)(posix_spawn_file_actions_t*)> actions_owner(
      &actions, ::posix_spawn_file_actions_destroy);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  int e = ::posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (e == 0) e = ::posix_spawnattr_setsigdefault(&attr, &all);
  if (e == 0) e = ::posix_spawnattr_setsigmask(&attr, &none);
  if (e == 0) e = ::posix_spawn_file_actions_adddup2(&actions, devnull.get(), 0);
  if (e == 0) e = ::posix_spawn_file_actions_adddup2(&actions, log.get(), 1);
  if (e == 0) e = ::posix_spawn_file_actions_adddup2(&actions, log.get(), 2);
  if (e == 0) e = ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (e != 0) return sup_error("io", std::string("posix_spawn attributes: ") + std::strerror(e));

  pid_t pid = -1;
  e = ::posix_spawn(&pid, exec_argv[0], &actions, &attr, exec_argv.data(), environ);
  if (e != 0) return sup_error("exec", "posix_spawn " + options.argv[0] + ": " + std::strerror(e));

  Supervisor sup;
  sup.pid_ = pid;
  sup.is_parent_ = true;
  sup.pidfile_ = options.pidfile;
  sup.pidfd_ = UniqueFd(pidfd_open(pid));
  if (!sup.pidfd_) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return sup_error("io", errno_text("pidfd_open (Linux >= 5.3 required)"));
  }
  if (auto written = write_pidfile(options.pidfile, pid); !written.ok()) {
    (void)sup.kill();
    return written.take_error();
  }

  auto deadline = Clock::now() + options.qmp_timeout;
  auto early_exit = [&]() -> Error {
    auto info = sup.finish_exit();
    std::string how = info.ok() ? to_string(info->cause) : info.error().describe();
    if (info.ok() && info->exit_code) how += ", exit code " + std::to_string(*info->exit_code);
    if (info.ok() && info->signal) how += ", signal " + std::to_string(*info->signal);
    return sup_error("early_exit", "QEMU exited while starting (" + how + "); log " +
                                       options.log_file + " ends: " + file_tail(options.log_file));
  };
  while (true) {
    pollfd pfd{sup.pidfd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 0) > 0) return early_exit();
    // Short connect slices so a QEMU that dies before creating its socket is noticed.
    auto slice = std::min(deadline, Clock::now() + std::chrono::milliseconds(100));
    auto fd = detail::connect_unix(options.qmp_socket, slice, "vmm.qmp");
    if (!fd.ok()) {
      if (Clock::now() < deadline) continue;
      (void)sup.kill();
      return fd.take_error();
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - Clock::now(), Clock::duration::zero()));
    auto client = QmpClient::handshake(std::move(fd).value(), left);
    if (!client.ok()) {
      // QEMU meets most of its own errors (a kernel it cannot load, a TEE option the host
      // refuses) after we connected (kQmpServerOptions): the socket closes as it exits, and
      // the exit follows within moments.
      const bool closed = client.error().code == "vmm.qmp.closed";
      if (::poll(&pfd, 1, closed ? 5000 : 50) > 0) return early_exit();
      (void)sup.kill();
      return client.take_error();
    }
    sup.qmp_.emplace(std::move(client).value());
    return sup;
  }
}

Result<Supervisor> Supervisor::attach(const std::string& pidfile, const std::string& qmp_socket,
                                      std::chrono::milliseconds qmp_timeout) {
  CONFPOD_ASSIGN_OR_RETURN(pid_t pid, detail::read_pidfile(pidfile));
  // Pin the pid first, then check who it is: a pidfd cannot follow a recycled pid.
  UniqueFd pidfd(pidfd_open(pid));
  if (!pidfd) {
    if (errno == ESRCH)
      return sup_error("attach",
                       "pid " + std::to_string(pid) + " from " + pidfile + " is not running");
    return sup_error("attach", errno_text("pidfd_open " + std::to_string(pid)));
  }
  pollfd pfd{pidfd.get(), POLLIN, 0};
  if (::poll(&pfd, 1, 0) > 0)
    return sup_error("attach", "pid " + std::to_string(pid) + " from " + pidfile + " has exited");
  CONFPOD_TRY(detail::check_qemu_identity("/proc", pid, qmp_socket));

  Supervisor sup;
  sup.pid_ = pid;
  sup.pidfd_ = std::move(pidfd);
  sup.pidfile_ = pidfile;
  sup.is_parent_ = parent_of(pid) == ::getpid();
  CONFPOD_ASSIGN_OR_RETURN(QmpClient client, QmpClient::connect(qmp_socket, qmp_timeout));
  sup.qmp_.emplace(std::move(client));
  return sup;
}

Supervisor::~Supervisor() {
  // QEMU is left running on purpose. Only a child that already exited is reaped, so it does
  // not linger as a zombie of the daemon.
  if (pid_ > 0 && is_parent_ && !exit_) ::waitpid(pid_, nullptr, WNOHANG);
}

Result<std::string> Supervisor::status() {
  if (exit_) return std::string("exited");
  return qmp_->query_status();
}

Result<ExitInfo> Supervisor::finish_exit() {
  if (exit_) return *exit_;
  ExitInfo info;
  int status = 0;
  // After attach we may still be able to reap it (same process, or a child subreaper).
  pid_t reaped;
  do {
    reaped = ::waitpid(pid_, &status, is_parent_ ? 0 : WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == pid_) {
    if (WIFEXITED(status)) info.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) info.signal = WTERMSIG(status);
  }
  // QEMU emitted its SHUTDOWN event before exiting; the bytes wait in the socket until EOF.
  if (qmp_ && !qmp_->closed()) (void)qmp_->pump(std::chrono::milliseconds(500));
  if (qmp_) {
    std::vector<const QmpEvent*> shutdowns;
    if (shutdown_event_) shutdowns.push_back(&*shutdown_event_);
    for (const auto& event : qmp_->events())
      if (event.name == "SHUTDOWN") shutdowns.push_back(&event);
    for (const QmpEvent* shutdown : shutdowns) {
      const QmpEvent& event = *shutdown;
      info.shutdown_event_seen = true;
      bool guest = false;
      if (event.data.is_object()) {
        auto r = event.data.find("reason");
        if (r != event.data.end() && r->is_string()) info.shutdown_reason = r->get<std::string>();
        auto g = event.data.find("guest");
        if (g != event.data.end() && g->is_boolean()) guest = g->get<bool>();
      }
      info.cause = cause_from_reason(info.shutdown_reason, guest);
    }
  }
  if (killed_by_us_ &&
      (info.signal == SIGKILL || (!info.signal && !info.exit_code && !info.shutdown_event_seen))) {
    info.cause = ExitCause::kKilledBySupervisor;
  } else if (info.signal) {
    info.cause = ExitCause::kSignaled;
  } else if (!info.shutdown_event_seen) {
    info.cause = info.exit_code && *info.exit_code != 0 ? ExitCause::kExitedWithError
                                                        : ExitCause::kExitedUnknown;
  }
  // The pidfile described a live process; it no longer does.
  if (!pidfile_.empty()) {
    auto named = detail::read_pidfile(pidfile_);
    if (named.ok() && *named == pid_) ::unlink(pidfile_.c_str());
  }
  exit_ = info;
  return info;
}

std::vector<QmpEvent> Supervisor::take_new_events() {
  if (!qmp_) return {};
  if (!qmp_->closed()) (void)qmp_->pump(std::chrono::milliseconds(0));
  std::vector<QmpEvent> events = qmp_->take_events();
  for (const auto& event : events)
    if (event.name == "SHUTDOWN") shutdown_event_ = event;
  return events;
}

Result<std::optional<ExitInfo>> Supervisor::poll_exit() {
  if (exit_) return std::optional<ExitInfo>(*exit_);
  if (qmp_ && !qmp_->closed()) (void)qmp_->pump(std::chrono::milliseconds(0));
  pollfd pfd{pidfd_.get(), POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0) return std::optional<ExitInfo>();
  CONFPOD_ASSIGN_OR_RETURN(ExitInfo info, finish_exit());
  return std::optional<ExitInfo>(std::move(info));
}

Result<ExitInfo> Supervisor::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_) return *exit_;
  auto deadline = Clock::now() + timeout;
  while (true) {
    pollfd fds[2] = {{pidfd_.get(), POLLIN, 0}, {-1, POLLIN, 0}};
    if (qmp_ && !qmp_->closed()) fds[1].fd = qmp_->fd();
    int ready = ::poll(fds, 2, detail::poll_timeout_ms(deadline));
    if (ready < 0 && errno != EINTR) return sup_error("io", errno_text("poll"));
    if (ready > 0 && fds[0].revents) return finish_exit();
    if (ready > 0 && fds[1].revents) {
      // Keep events flowing (and notice EOF) so the SHUTDOWN event is not lost.
      (void)qmp_->pump(std::chrono::milliseconds(0));
      continue;
    }
    if (Clock::now() >= deadline)
      return sup_error("timeout", "QEMU pid " + std::to_string(pid_) + " still running after " +
                                      std::to_string(timeout.count()) + " ms");
  }
}

Status Supervisor::send_kill() {
  killed_by_us_ = true;
  // The whole group (QEMU's helpers too) when QEMU leads its own group, as start() arranges.
  if (::getpgid(pid_) == pid_) ::kill(-pid_, SIGKILL);
  // And the process itself through its pidfd: never a recycled pid.
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0u) != 0 && errno != ESRCH)
    return sup_error("io", errno_text("pidfd_send_signal"));
  return ok_status();
}

Result<ExitInfo> Supervisor::kill() {
  if (exit_) return *exit_;
  CONFPOD_TRY(send_kill());
  return wait_exit(std::chrono::seconds(10));
}

Result<ExitInfo> Supervisor::stop(std::chrono::milliseconds grace) {
  if (exit_) return *exit_;
  auto powerdown = qmp_->system_powerdown();
  if (!powerdown.ok() && powerdown.error().code != "vmm.qmp.closed") {
    // QMP unusable: the only way left is to kill.
    return kill();
  }
  auto exited = wait_exit(grace);
  if (exited.ok() || exited.error().code != "vmm.supervisor.timeout") return exited;
  return kill();
}

}  // namespace confpod::vmm
