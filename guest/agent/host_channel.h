// The agent's end of the host channel (a virtio-serial port in the VM, a socket in tests):
// whole frames out, one at a time, and the frame stream in. Everything that arrives is
// hostile: frames are bounded by the decoder, and after a frame whose length cannot be right
// the stream cannot be resynchronised, so the rest is discarded until the host reconnects.
#pragma once

#include <optional>
#include <string>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "guest/protocol/messages.h"

namespace confpod::guest::agent {

class HostChannel {
 public:
  explicit HostChannel(UniqueFd fd) : fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }

  // Writes the message as one whole frame (blocking; no SIGPIPE). After a failed write no
  // more frames are written (a torn frame would desynchronise the host's reader): broken().
  void send(const GuestMessage& message);
  bool broken() const { return broken_; }

  // Reads what the channel has (one read) into the decoder; false on end-of-file or error.
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
  UniqueFd fd_;
  FrameDecoder decoder_;
  bool failed_ = false;
  bool broken_ = false;
};

}  // namespace confpod::guest::agent
