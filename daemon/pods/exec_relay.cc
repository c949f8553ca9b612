#include "daemon/pods/exec_relay.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace confpod::pods {
namespace {

constexpr int kPollSliceMs = 200;  // how often the thread looks at the stop flag

std::uint16_t load_be16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>((u[0] << 8) | u[1]);
}

}  // namespace

Result<std::pair<UniqueFd, UniqueFd>> make_exec_socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return make_error("pods.io", std::string("socketpair: ") + std::strerror(errno));
  return std::pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

ExecRelay::ExecRelay(std::uint64_t id, UniqueFd relay_end, SendToGuest send)
    : id_(id), fd_(std::move(relay_end)), send_(std::move(send)) {
  thread_ = std::thread([this] { run(); });
}

ExecRelay::~ExecRelay() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool ExecRelay::send_packet(char type, std::string_view payload) {
  std::lock_guard lock(send_mu_);
  if (finished_) return false;
  std::string packet(1, type);
  packet.append(payload);
  for (;;) {
    ssize_t n = ::send(fd_.get(), packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    return false;  // EAGAIN: the client does not read; EPIPE: it is gone
  }
}

void ExecRelay::finish() {
  finished_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);
}

void ExecRelay::output(bool is_stderr, std::string_view data) {
  if (send_packet(is_stderr ? 'E' : 'o', data)) return;
  if (finished_) return;
  // Not queued: a client that cannot keep up ends its exec.
  if (id_ != 0) {
    guest::HostMessage close;
    close.kind = guest::HostMessage::Kind::kExecClose;
    close.id = id_;
    (void)send_(close);
  }
  failed("the client did not read the output fast enough; ended");
}

void ExecRelay::exited(std::int64_t status) {
  const auto s = static_cast<std::uint32_t>(static_cast<std::int32_t>(status));
  const char be[4] = {static_cast<char>(s >> 24), static_cast<char>(s >> 16),
                      static_cast<char>(s >> 8), static_cast<char>(s)};
  (void)send_packet('x', std::string_view(be, 4));
  finish();
}

void ExecRelay::failed(const std::string& why) {
  (void)send_packet('f', why.substr(0, kMaxExecPacket));
  finish();
}

void ExecRelay::run() {
  std::string buf(kMaxExecPacket + 1, '\0');
  while (!stop_ && !finished_) {
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, kPollSliceMs);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      // The client went away: the command has no one to talk to.
      if (!finished_ && id_ != 0) {
        guest::HostMessage close;
        close.kind = guest::HostMessage::Kind::kExecClose;
        close.id = id_;
        (void)send_(close);
      }
      finished_ = true;
      break;
    }
    if (id_ == 0) continue;  // an attach takes no input
    const char type = buf[0];
    const std::string_view payload(buf.data() + 1, static_cast<std::size_t>(n) - 1);
    guest::HostMessage message;
    message.id = id_;
    if (type == 'i' && payload.size() <= kMaxExecPacket) {
      message.kind = guest::HostMessage::Kind::kExecInput;
      message.data = std::string(payload);
    } else if (type == 'e' && payload.empty()) {
      message.kind = guest::HostMessage::Kind::kExecInput;
      message.eof = true;
    } else if (type == 'w' && payload.size() == 4) {
      message.kind = guest::HostMessage::Kind::kExecResize;
      message.rows = std::min<std::uint32_t>(load_be16(payload.data()), 4096);
      message.cols = std::min<std::uint32_t>(load_be16(payload.data() + 2), 4096);
    } else {
      continue;  // not a packet of ours: dropped
    }
    (void)send_(message);
  }
}

}  // namespace confpod::pods
