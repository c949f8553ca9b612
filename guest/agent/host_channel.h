// The agent's end of the host channel (a virtio-serial port or a vsock listener in the VM, a
// socket in tests): whole frames out, one at a time, and the frame stream in. Everything that
// arrives is hostile: frames are bounded by the decoder, and after a frame whose length cannot
// be right the stream cannot be resynchronised, so the rest is discarded until the host
// reconnects.
//
// Listening (vsock): the agent listens and the host connects, again after confpodd restarted.
// Each accepted connection gets the greeting (the agent's hello) as its first frame, so the
// host reads the same stream start as on a virtio port. While no host is connected (the
// daemon restarting), frames wait in a bounded backlog and go to the next host after its
// greeting, in order, as a virtio port would have held them: exits and statuses always,
// container output up to kMaxBacklogBytes (past that the oldest output is dropped and the
// next host is told how much, in an "output-dropped" status). On vsock only the host (CID 2)
// is accepted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "guest/protocol/messages.h"

namespace confpod::guest::agent {

class HostChannel {
 public:
  explicit HostChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  // `listener`: a listening stream socket (listen_vsock, listen_unix), made non-blocking here.
  static HostChannel listening(UniqueFd listener, GuestMessage greeting);

  // What to poll for input: the connection, or the listener while no host is connected.
  int fd() const { return fd_ ? fd_.get() : listener_.get(); }
  bool connected() const { return static_cast<bool>(fd_); }

  // Writes the message as one whole frame (blocking; no SIGPIPE). After a failed write no
  // more frames are written (a torn frame would desynchronise the host's reader): broken().
  // Listening with no host connected: the frame waits in the backlog (a hello is not kept:
  // each host gets the greeting).
  void send(const GuestMessage& message);
  static constexpr std::size_t kMaxBacklogBytes = 4u << 20;
  bool broken() const { return broken_; }

  // Reads what the channel has (one read) into the decoder; false on end-of-file or error.
  // Listening: accepts a waiting host instead (true; its stream starts fresh), and the end of
  // a connection (false) closes it and listens again.
  bool read();
  // The next complete host frame's payload, std::nullopt when more bytes are needed. An
  // error ("guest.frame.too_large") fails the stream: from then on nothing is returned.
  Result<std::optional<std::string>> next();
  bool failed() const { return failed_; }
  // At the end of the stream: "guest.frame.truncated" when it ended inside a frame.
  Status finish() const { return decoder_.finish(); }
  // The host side reconnected (a virtio port after confpodd restarted): a fresh stream.
  void restart();

 private:
  bool accept_host();
  // Writes one encoded frame whole; false (and broken()) when the write failed.
  bool write_frame(const std::string& frame);
  // Keeps a frame for the next host, dropping the oldest output past kMaxBacklogBytes.
  // `output_bytes`: the data an output frame carries (0: not output).
  void keep(std::string frame, std::size_t output_bytes);

  struct Kept {
    std::string frame;
    std::size_t output_bytes = 0;  // output (container or exec): dropped first when full
  };
  std::deque<Kept> backlog_;
  std::size_t backlog_bytes_ = 0;
  std::uint64_t dropped_output_bytes_ = 0;

  UniqueFd fd_;
  UniqueFd listener_;
  std::optional<GuestMessage> greeting_;
  FrameDecoder decoder_;
  bool failed_ = false;
  bool broken_ = false;
};

// A listening AF_VSOCK socket on `port`, any local CID. "agent.channel" on failure.
Result<UniqueFd> listen_vsock(unsigned port);
// A listening unix socket at `path` (tests). "agent.channel" on failure.
Result<UniqueFd> listen_unix(const std::string& path);
// A blocking stream connected to the unix socket at `path` (tests: the agent's
// --channel-socket, and the host's end). "agent.channel" on failure.
Result<UniqueFd> connect_unix(const std::string& path);
// The VM has a virtio vsock device (virtio device id 19 under <root>/sys/bus/virtio/devices):
// the host chose vsock over a virtio-serial port for the channel.
bool has_virtio_vsock(const std::string& root);

}  // namespace confpod::guest::agent
