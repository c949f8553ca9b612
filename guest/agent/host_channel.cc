#include "guest/agent/host_channel.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "attest/base/bytes.h"
#include "guest/agent/log.h"

namespace confpod::guest::agent {

HostChannel HostChannel::listening(UniqueFd listener, GuestMessage greeting) {
  HostChannel channel{UniqueFd()};
  const int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags >= 0) ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK);
  channel.listener_ = std::move(listener);
  channel.greeting_ = std::move(greeting);
  return channel;
}

bool HostChannel::accept_host() {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  UniqueFd conn(::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
  if (!conn) {
    // Gone before we took it, or woken for nothing: keep listening.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
      return true;
    log(std::string("channel accept failed: ") + std::strerror(errno));
    return false;
  }
  if (peer.ss_family == AF_VSOCK) {
    const auto& vm = reinterpret_cast<const sockaddr_vm&>(peer);
    if (vm.svm_cid != VMADDR_CID_HOST) {
      log("channel: refused a vsock connection from CID " + std::to_string(vm.svm_cid) +
          "; only the host (CID 2) may connect");
      return true;
    }
  }
  fd_ = std::move(conn);
  restart();
  broken_ = false;
  send(*greeting_);
  // What happened while no host was connected, in order, after the greeting.
  if (dropped_output_bytes_ > 0) {
    GuestMessage dropped;
    dropped.kind = GuestMessage::Kind::kStatus;
    dropped.state = "output-dropped";
    dropped.detail = std::to_string(dropped_output_bytes_) +
                     " bytes of output were dropped while no host was connected";
    send(dropped);
    dropped_output_bytes_ = 0;
  }
  while (!backlog_.empty() && !broken_) {
    write_frame(backlog_.front().frame);
    backlog_bytes_ -= backlog_.front().frame.size();
    backlog_.pop_front();
  }
  return true;
}

void HostChannel::keep(std::string frame, std::size_t output_bytes) {
  backlog_bytes_ += frame.size();
  backlog_.push_back({std::move(frame), output_bytes});
  // Output goes first, oldest first; what is not output (exits, statuses) is small and is
  // what the host most needs, so it goes only if output alone cannot make room.
  for (auto it = backlog_.begin(); backlog_bytes_ > kMaxBacklogBytes && it != backlog_.end();) {
    if (it->output_bytes == 0) {
      ++it;
      continue;
    }
    backlog_bytes_ -= it->frame.size();
    dropped_output_bytes_ += it->output_bytes;
    it = backlog_.erase(it);
  }
  while (backlog_bytes_ > kMaxBacklogBytes && !backlog_.empty()) {
    backlog_bytes_ -= backlog_.front().frame.size();
    backlog_.pop_front();
  }
}

void HostChannel::send(const GuestMessage& message) {
  if (broken_) return;
  if (!fd_) {
    if (listener_ && message.kind != GuestMessage::Kind::kHello)
      keep(encode_frame(to_payload(message)),
           message.kind == GuestMessage::Kind::kOutput ? message.data.size() : 0);
    return;
  }
  write_frame(encode_frame(to_payload(message)));
}

bool HostChannel::write_frame(const std::string& frame) {
  std::size_t off = 0;
  while (off < frame.size()) {
    ssize_t n = ::send(fd_.get(), frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd_.get(), frame.data() + off, frame.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log(std::string("channel write failed: ") + std::strerror(errno) + "; no more frames");
      broken_ = true;
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool HostChannel::read() {
  if (!fd_) return listener_ ? accept_host() : false;
  char buf[64 << 10];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (listener_) fd_.reset();  // this host is gone; the next one is accepted
      return false;
    }
    if (!failed_) decoder_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    return true;
  }
}

Result<std::optional<std::string>> HostChannel::next() {
  if (failed_) return std::optional<std::string>();
  auto next = decoder_.next();
  if (!next.ok()) failed_ = true;
  return next;
}

void HostChannel::restart() {
  decoder_ = FrameDecoder();
  failed_ = false;
}

namespace {

// The address of the unix socket at `path`; agent.channel when it does not fit.
Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return make_error("agent.channel", "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Result<UniqueFd> listen_on(int family, const sockaddr* addr, socklen_t len,
                           const std::string& what) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd || ::bind(fd.get(), addr, len) != 0 || ::listen(fd.get(), 4) != 0)
    return make_error("agent.channel", "cannot listen on " + what + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

Result<UniqueFd> listen_vsock(unsigned port) {
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = port;
  return listen_on(AF_VSOCK, reinterpret_cast<const sockaddr*>(&addr), sizeof addr,
                   "vsock port " + std::to_string(port));
}

Result<UniqueFd> listen_unix(const std::string& path) {
  CONFPOD_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(path));
  return listen_on(AF_UNIX, reinterpret_cast<const sockaddr*>(&addr), sizeof addr, path);
}

Result<UniqueFd> connect_unix(const std::string& path) {
  CONFPOD_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return make_error("agent.channel", std::string("socket: ") + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return make_error("agent.channel", "connect " + path + ": " + std::strerror(errno));
  return fd;
}

bool has_virtio_vsock(const std::string& root) {
  std::error_code ec;
  const std::filesystem::path devices = std::filesystem::path(root) / "sys/bus/virtio/devices";
  for (const auto& entry : std::filesystem::directory_iterator(devices, ec)) {
    auto id = read_text_file((entry.path() / "device").string(), 64);
    // The kernel prints the virtio device id as 0x%04x; vsock is 19.
    if (id.ok() && id->rfind("0x0013", 0) == 0) return true;
  }
  return false;
}

}  // namespace confpod::guest::agent
