#include "guest/agent/host_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "guest/agent/log.h"

namespace confpod::guest::agent {

void HostChannel::send(const GuestMessage& message) {
  if (broken_) return;
  std::string frame = encode_frame(to_payload(message));
  std::size_t off = 0;
  while (off < frame.size()) {
    ssize_t n = ::send(fd_.get(), frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd_.get(), frame.data() + off, frame.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log(std::string("channel write failed: ") + std::strerror(errno) + "; no more frames");
      broken_ = true;
      return;
    }
    off += static_cast<std::size_t>(n);
  }
}

bool HostChannel::read() {
  char buf[64 << 10];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
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

}  // namespace confpod::guest::agent
