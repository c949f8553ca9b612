// The stdin of one exec: what the host sent and the command has not read yet, written as the
// command reads it (the fd is non-blocking, so a command that never reads cannot block the
// agent), and its end: a pipe is closed; a pty, whose master also carries the output, gets
// the line discipline's VEOF instead, as a typed ^D would.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "attest/base/unique_fd.h"

namespace confpod::guest::agent {

class ExecInput {
 public:
  // Input waiting past this is refused: a host cannot make the agent hoard memory.
  static constexpr std::size_t kMaxPending = 1u << 20;

  ExecInput() = default;
  // `fd`: the write end of the stdin pipe, or the pty master (non-blocking).
  ExecInput(UniqueFd fd, bool pty, std::size_t max_pending = kMaxPending)
      : fd_(std::move(fd)), pty_(pty), max_pending_(max_pending) {}

  bool open() const { return static_cast<bool>(fd_); }
  int fd() const { return fd_.get(); }
  std::size_t pending() const { return pending_.size(); }

  // Queues `data` (and the end of input, once `eof`) and writes what the command takes now.
  // False, with the input closed and dropped, when more than max_pending bytes would wait:
  // the caller ends the exec. Input for a closed stdin goes nowhere (true).
  bool add(std::string_view data, bool eof);
  // Writes what waits, as far as the command reads; then the end of input if it was sent.
  void flush();
  void close();

 private:
  UniqueFd fd_;
  bool pty_ = false;
  std::size_t max_pending_ = kMaxPending;
  std::string pending_;
  bool eof_ = false;       // the host said the input ends
  bool eof_sent_ = false;  // a pty's VEOF was written
  char last_ = '\n';       // the last byte written
};

}  // namespace confpod::guest::agent
