#include "vmm/channel.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "vmm/qmp.h"

namespace confpod::vmm {

namespace {
Error channel_error(const char* code, std::string message) {
  return make_error(std::string("vmm.channel.") + code, std::move(message));
}
}  // namespace

Result<GuestChannel> GuestChannel::connect(const std::string& socket_path,
                                           std::chrono::milliseconds timeout) {
  CONFPOD_ASSIGN_OR_RETURN(
      UniqueFd fd, detail::connect_unix(socket_path, Clock::now() + timeout, "vmm.channel"));
  return GuestChannel(std::move(fd));
}

std::string ChannelAddress::describe() const {
  if (kind == Kind::kUnix) return path;
  return "vsock " + std::to_string(cid) + ":" + std::to_string(port);
}

namespace {

// One non-blocking AF_VSOCK connect, waited for until `deadline`: the connected socket, or
// the errno of the attempt (ETIMEDOUT when the deadline passed first).
Result<UniqueFd> try_connect_vsock(std::uint32_t cid, std::uint32_t port,
                                   GuestChannel::Clock::time_point deadline, int& err) {
  err = 0;
  UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    err = errno;
    return channel_error("connect", std::string("socket(AF_VSOCK): ") + std::strerror(err));
  }
  sockaddr_vm address{};
  address.svm_family = AF_VSOCK;
  address.svm_cid = cid;
  address.svm_port = port;
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0)
    return fd;
  err = errno;
  if (err == EINPROGRESS || err == EINTR) {
    pollfd pfd{fd.get(), POLLOUT, 0};
    int ready;
    do ready = ::poll(&pfd, 1, detail::poll_timeout_ms(deadline));
    while (ready < 0 && errno == EINTR);
    socklen_t length = sizeof err;
    if (ready == 0)
      err = ETIMEDOUT;
    else if (ready < 0 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &length) < 0)
      err = errno;
    if (ready > 0 && err == 0) return fd;
  }
  return channel_error("connect", std::strerror(err));
}

}  // namespace

Result<GuestChannel> GuestChannel::connect(const ChannelAddress& address,
                                           std::chrono::milliseconds timeout) {
  if (address.kind == ChannelAddress::Kind::kUnix) return connect(address.path, timeout);
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int err = 0;
    auto fd = try_connect_vsock(address.cid, address.port, deadline, err);
    if (fd.ok()) return GuestChannel(std::move(*fd));
    // Nothing listens yet (the guest is booting: reset or refused), the CID is not running
    // yet (no such device), or this attempt timed out: again, until the deadline.
    bool retryable = err == ECONNRESET || err == ECONNREFUSED || err == ENODEV ||
                     err == EHOSTUNREACH || err == ETIMEDOUT || err == EAGAIN;
    if (!retryable || Clock::now() >= deadline)
      return channel_error("connect", "connect " + address.describe() + ": " + fd.error().message);
    // The guest boots for seconds: no need to ask more often than this.
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(100), deadline - Clock::now()));
  }
}

Result<GuestChannel> GuestChannel::from_fd(UniqueFd fd) {
  int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    return channel_error("io", std::string("fcntl: ") + std::strerror(errno));
  return GuestChannel(std::move(fd));
}

Status GuestChannel::fill(Clock::time_point deadline) {
  while (true) {
    if (eof_) return channel_error("closed", "the channel was closed by QEMU");
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, detail::poll_timeout_ms(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return channel_error("io", std::string("poll: ") + std::strerror(errno));
    if (ready == 0) return channel_error("timeout", "nothing from the guest before the deadline");
    char chunk[16384];
    ssize_t n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
      return ok_status();
    }
    if (n == 0 || errno == ECONNRESET) {
      eof_ = true;
      continue;
    }
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
      return channel_error("io", std::string("recv: ") + std::strerror(errno));
  }
}

Result<std::string> GuestChannel::read_line(std::chrono::milliseconds timeout,
                                            std::size_t max_bytes) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    auto newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      if (newline > max_bytes)
        return channel_error("too_long", "line of " + std::to_string(newline) + " bytes exceeds " +
                                             std::to_string(max_bytes));
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    if (buffer_.size() > max_bytes)
      return channel_error("too_long", "no newline within " + std::to_string(max_bytes) + " bytes");
    CONFPOD_TRY(fill(deadline));
  }
}

Result<std::string> GuestChannel::read_frame(std::chrono::milliseconds timeout,
                                             std::size_t max_bytes) {
  auto deadline = Clock::now() + timeout;
  while (buffer_.size() < 4) CONFPOD_TRY(fill(deadline));
  std::uint32_t length = 0;
  for (int i = 0; i < 4; ++i) length = (length << 8) | static_cast<unsigned char>(buffer_[i]);
  if (length > max_bytes)
    return channel_error("too_long", "frame of " + std::to_string(length) + " bytes exceeds " +
                                         std::to_string(max_bytes));
  while (buffer_.size() < 4 + static_cast<std::size_t>(length)) CONFPOD_TRY(fill(deadline));
  std::string payload = buffer_.substr(4, length);
  buffer_.erase(0, 4 + static_cast<std::size_t>(length));
  return payload;
}

Status GuestChannel::write_all(std::string_view data, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pfd{fd_.get(), POLLOUT, 0};
      if (::poll(&pfd, 1, detail::poll_timeout_ms(deadline)) == 0)
        return channel_error("timeout", "the guest did not drain the channel before the deadline");
      continue;
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return channel_error("closed", "the channel was closed by QEMU");
    return channel_error("io", std::string("send: ") + std::strerror(errno));
  }
  return ok_status();
}

Status GuestChannel::write_frame(std::string_view payload, std::chrono::milliseconds timeout) {
  if (payload.size() > kChannelMaxFrameBytes)
    return channel_error("too_long", "frame of " + std::to_string(payload.size()) + " bytes");
  auto length = static_cast<std::uint32_t>(payload.size());
  std::string frame;
  frame.reserve(4 + payload.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    frame.push_back(static_cast<char>((length >> shift) & 0xff));
  frame.append(payload);
  return write_all(frame, timeout);
}

}  // namespace confpod::vmm
