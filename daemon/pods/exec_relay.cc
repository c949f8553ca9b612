#include "daemon/pods/exec_relay.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

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
    : id_(id),
      fd_(std::move(relay_end)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      send_(std::move(send)) {
  if (!wake_) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this] { run(); });
}

ExecRelay::~ExecRelay() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void ExecRelay::wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

bool ExecRelay::enqueue(char type, std::string_view payload, bool final) {
  std::string packet(1, type);
  packet.append(payload);
  {
    std::lock_guard lock(mu_);
    if (finished_) return true;  // the session is over: nothing more is accepted
    if (queue_.empty()) {
      ssize_t n;
      do {
        n = ::send(fd_.get(), packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      } while (n < 0 && errno == EINTR);
      if (n >= 0) {
        if (final) {
          finished_ = true;
          ::shutdown(fd_.get(), SHUT_RDWR);
        }
        return true;
      }
      // The client is gone (EPIPE): the relay's thread sees the hang-up and ends the exec.
      if (errno != EAGAIN && errno != EWOULDBLOCK) return true;
    }
    if (!final && queued_bytes_ + packet.size() > kMaxQueuedOutput) return false;
    queued_bytes_ += packet.size();
    queue_.push_back(std::move(packet));
    if (final) {
      final_queued_ = true;
      finished_ = true;
    }
  }
  wake();
  return true;
}

bool ExecRelay::flush() {
  std::lock_guard lock(mu_);
  while (!queue_.empty()) {
    const std::string& packet = queue_.front();
    ssize_t n = ::send(fd_.get(), packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0) {  // the client is gone
      queue_.clear();
      queued_bytes_ = 0;
      return true;
    }
    queued_bytes_ -= packet.size();
    queue_.pop_front();
  }
  return final_queued_;
}

void ExecRelay::close_to_agent() {
  if (id_ == 0) return;  // an attach: the containers do not depend on its client
  guest::HostMessage close;
  close.kind = guest::HostMessage::Kind::kExecClose;
  close.id = id_;
  (void)send_(close);
}

void ExecRelay::output(bool is_stderr, std::string_view data) {
  if (enqueue(is_stderr ? 'E' : 'o', data, false)) return;
  // More than kMaxQueuedOutput behind: the output queued so far is dropped and the exec ends.
  {
    std::lock_guard lock(mu_);
    queue_.clear();
    queued_bytes_ = 0;
  }
  close_to_agent();
  failed("the client did not read the output fast enough; ended");
}

void ExecRelay::exited(std::int64_t status) {
  const auto s = static_cast<std::uint32_t>(static_cast<std::int32_t>(status));
  const char be[4] = {static_cast<char>(s >> 24), static_cast<char>(s >> 16),
                      static_cast<char>(s >> 8), static_cast<char>(s)};
  (void)enqueue('x', std::string_view(be, 4), true);
}

void ExecRelay::failed(const std::string& why) {
  (void)enqueue('f', why.substr(0, kMaxExecPacket), true);
}

void ExecRelay::run() {
  std::string buf(kMaxExecPacket + 1, '\0');
  std::optional<std::chrono::steady_clock::time_point> final_deadline;
  while (!stop_) {
    bool want_out, final;
    {
      std::lock_guard lock(mu_);
      want_out = !queue_.empty();
      final = final_queued_;
    }
    if (final && !want_out) break;  // the final packet went out
    if (final && !final_deadline)
      final_deadline = std::chrono::steady_clock::now() + kFinalPacketTimeout;
    if (final_deadline && std::chrono::steady_clock::now() >= *final_deadline) break;
    pollfd p[2] = {{fd_.get(), static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0},
                   {wake_.get(), POLLIN, 0}};
    int r = ::poll(p, 2, kPollSliceMs);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    if (p[1].revents & POLLIN) {
      std::uint64_t count;
      [[maybe_unused]] ssize_t n = ::read(wake_.get(), &count, sizeof count);
    }
    if ((p[0].revents & POLLOUT) && flush()) break;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    // MSG_TRUNC: the packet's real length, so an oversize one is seen, not cut.
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      // The client went away: the command has no one to talk to.
      if (!finished_) close_to_agent();
      finished_ = true;
      break;
    }
    if (id_ == 0 || finished_) continue;  // an attach takes no input; after the end, none
    if (static_cast<std::size_t>(n) > buf.size()) {
      close_to_agent();
      failed("a packet of " + std::to_string(n) + " bytes, more than " +
             std::to_string(kMaxExecPacket + 1) + "; ended");
      continue;
    }
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
    if (Status sent = send_(message); !sent.ok()) {
      close_to_agent();
      failed("cannot pass input to the agent: " + sent.error().message);
    }
  }
  finished_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);
  drained_ = true;
}

}  // namespace confpod::pods
