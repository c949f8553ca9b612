#include "daemon/ctl/exec.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "daemon/ctl/client.h"
#include "daemon/ctl/format.h"

namespace confpod::ctl {
namespace {

constexpr std::size_t kMaxPacket = 32u << 10;  // the session's packet payload limit
constexpr int kEndedWithoutStatus = 255;

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool send_packet(int fd, char type, const char* data, std::size_t size) {
  std::string packet(1, type);
  packet.append(data, size);
  for (;;) {
    ssize_t n = ::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(packet.size());
  }
}

bool send_window_size(int session) {
  winsize ws{};
  if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0) return true;
  const char size[4] = {static_cast<char>(ws.ws_row >> 8), static_cast<char>(ws.ws_row),
                        static_cast<char>(ws.ws_col >> 8), static_cast<char>(ws.ws_col)};
  return send_packet(session, 'w', size, 4);
}

// The terminal in raw mode while the session runs (a pty in the guest does the echo and the
// line editing), restored however we leave.
class RawTerminal {
 public:
  RawTerminal() {
    if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

// Relays until 'x' or 'f' or the end of the session; returns the exit code.
int relay(int session, bool forward_stdin, bool watch_window, std::ostream& err) {
  // SIGTERM and SIGHUP end the relay by returning, so the terminal is restored on the way out
  // and the closed session ends the command; a closed stdout (`| head`) is a write error, not
  // a SIGPIPE death that would leave the terminal raw.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  if (watch_window) sigaddset(&mask, SIGWINCH);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  UniqueFd signals(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  bool stdin_open = forward_stdin;
  std::string buf(kMaxPacket + 1, '\0');
  for (;;) {
    pollfd fds[3] = {{session, POLLIN, 0},
                     {stdin_open ? STDIN_FILENO : -1, POLLIN, 0},
                     {signals ? signals.get() : -1, POLLIN, 0}};
    int r = ::poll(fds, 3, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err << "confpodctl: poll: " << std::strerror(errno) << "\n";
      return kEndedWithoutStatus;
    }
    if (fds[2].revents != 0) {
      signalfd_siginfo info;
      bool resized = false;
      while (::read(signals.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGWINCH) {
          resized = true;
          continue;
        }
        err << "confpodctl: " << ::strsignal(static_cast<int>(info.ssi_signo))
            << "; the command is ended\n";
        return 128 + static_cast<int>(info.ssi_signo);
      }
      if (resized) send_window_size(session);
    }
    if (fds[1].revents != 0) {
      ssize_t n = ::read(STDIN_FILENO, buf.data(), kMaxPacket);
      if (n > 0) {
        send_packet(session, 'i', buf.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        send_packet(session, 'e', nullptr, 0);
        stdin_open = false;
      }
    }
    if (fds[0].revents == 0) continue;
    ssize_t n = ::recv(session, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err << "confpodctl: the session ended without an exit status\n";
      return kEndedWithoutStatus;
    }
    const std::size_t size = static_cast<std::size_t>(n) - 1;
    switch (buf[0]) {
      case 'o':
      case 'E':
        if (!write_all(buf[0] == 'o' ? STDOUT_FILENO : STDERR_FILENO, buf.data() + 1, size)) {
          // Nobody reads our output any more: closing the session ends the command.
          return kEndedWithoutStatus;
        }
        break;
      case 'x': {
        if (size != 4) return kEndedWithoutStatus;
        const auto* u = reinterpret_cast<const unsigned char*>(buf.data() + 1);
        const std::int32_t status =
            static_cast<std::int32_t>((std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) |
                                      (std::uint32_t{u[2]} << 8) | std::uint32_t{u[3]});
        return status >= 0 && status <= 255 ? status : kEndedWithoutStatus;
      }
      case 'f':
        err << "confpodctl: " << one_line(std::string(buf.data() + 1, size)) << "\n";
        return kEndedWithoutStatus;
      default:
        break;
    }
  }
}

}  // namespace

int exec_command_words(int argc, char** argv) {
  bool seen_exec = false;
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "exec") seen_exec = true;
    if (seen_exec && word == "--") return argc - i - 1;
  }
  return -1;
}

int pod_exec(const BusArgs& bus, const ExecArgs& args, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  const bool terminal = args.tty && ::isatty(STDIN_FILENO) == 1;
  winsize ws{};
  if (terminal) ::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
  auto session =
      client->exec(args.name, args.container, args.command, args.tty, ws.ws_row, ws.ws_col);
  if (!session.ok()) return fail(session.error(), err);
  // Without -i the command reads end of input at once, as with `podman exec` without -i.
  const bool forward_stdin = args.interactive || args.tty;
  if (!forward_stdin) send_packet(session->get(), 'e', nullptr, 0);
  std::optional<RawTerminal> raw;
  if (terminal) raw.emplace();
  return relay(session->get(), forward_stdin, terminal, err);
}

int pod_attach(const BusArgs& bus, const AttachArgs& args, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto session = client->attach(args.name, args.container);
  if (!session.ok()) return fail(session.error(), err);
  const int status = relay(session->get(), false, false, err);
  // A pod that stopped ends an attach to all of its containers: that is not a failure.
  return args.container.empty() && status == kEndedWithoutStatus ? 0 : status;
}

}  // namespace confpod::ctl
