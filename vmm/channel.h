// Host side of the host<->guest byte channel.
//
// A virtio-serial port (virtserialport, name "org.confpod.agent.0") whose backend is a QEMU
// chardev socket in server mode (-chardev socket,path=..,server=on,wait=off): QEMU listens,
// the daemon connects. Until the daemon connects, the guest's writes to the port block (the
// port is "host-disconnected"), so nothing is lost by connecting late.
//
// Everything read here comes from the guest, which the host does not control but also must
// not trust to be well-formed: every read has a deadline and a size cap.
//
// vsock (vhost-vsock-pci, needs /dev/vhost-vsock) would replace this with AF_VSOCK to the
// guest's CID; the probe reports /dev/vhost-vsock, the driver uses virtio-serial (docs/vmm.md).
//
// Errors: vmm.channel.connect, .timeout, .closed, .io, .too_long
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"

namespace confpod::vmm {

inline constexpr std::size_t kChannelMaxLineBytes = 64u << 10;
inline constexpr std::size_t kChannelMaxFrameBytes = 16u << 20;

class GuestChannel {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to QEMU's chardev socket, retrying while QEMU has not created it yet.
  static Result<GuestChannel> connect(const std::string& socket_path,
                                      std::chrono::milliseconds timeout);
  // Wraps an already-connected stream socket (tests).
  static Result<GuestChannel> from_fd(UniqueFd fd);

  // One line, without its "\n" (a trailing "\r" is dropped too); at most max_bytes.
  Result<std::string> read_line(std::chrono::milliseconds timeout,
                                std::size_t max_bytes = kChannelMaxLineBytes);
  // One frame: a 4-byte big-endian length, then that many bytes; at most max_bytes.
  Result<std::string> read_frame(std::chrono::milliseconds timeout,
                                 std::size_t max_bytes = kChannelMaxFrameBytes);
  Status write_all(std::string_view data, std::chrono::milliseconds timeout);
  Status write_frame(std::string_view payload, std::chrono::milliseconds timeout);

  int fd() const { return fd_.get(); }

 private:
  explicit GuestChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  // Reads more bytes into buffer_ (false on timeout/EOF/error with `error` set).
  Status fill(Clock::time_point deadline);

  UniqueFd fd_;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace confpod::vmm
