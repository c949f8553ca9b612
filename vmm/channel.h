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
// Or vsock (vhost-vsock-pci, needs /dev/vhost-vsock): the agent listens on a port in the guest
// and the host connects to the guest's CID, which fails until the guest has booted that far;
// connect() retries until its deadline.
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

// Where the host reaches a guest's channel: a unix socket (QEMU's chardev; in tests, an agent
// listening on one) or a vsock address (guest CID and port).
struct ChannelAddress {
  enum class Kind { kUnix, kVsock } kind = Kind::kUnix;
  std::string path;        // kUnix
  std::uint32_t cid = 0;   // kVsock
  std::uint32_t port = 0;  // kVsock
  static ChannelAddress unix_socket(std::string path) { return {Kind::kUnix, std::move(path)}; }
  static ChannelAddress vsock(std::uint32_t cid, std::uint32_t port) {
    return {Kind::kVsock, "", cid, port};
  }
  std::string describe() const;  // the path, or "vsock CID:PORT"
  bool operator==(const ChannelAddress&) const = default;
};

class GuestChannel {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to QEMU's chardev socket, retrying while QEMU has not created it yet.
  static Result<GuestChannel> connect(const std::string& socket_path,
                                      std::chrono::milliseconds timeout);
  // Connects to `address`, retrying until `timeout` while nothing listens there yet (the
  // socket file is missing, the guest has not booted to its listener).
  static Result<GuestChannel> connect(const ChannelAddress& address,
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
