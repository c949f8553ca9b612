#include "guest/agent/exec_input.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>

namespace confpod::guest::agent {

bool ExecInput::add(std::string_view data, bool eof) {
  if (!fd_) return true;  // stdin was not asked for, or is closed: the bytes go nowhere
  if (pending_.size() + data.size() > max_pending_) {
    close();
    return false;
  }
  pending_.append(data);
  eof_ = eof_ || eof;
  flush();
  return true;
}

void ExecInput::close() {
  fd_.reset();
  pending_.clear();
  pending_.shrink_to_fit();
}

void ExecInput::flush() {
  while (fd_ && !pending_.empty()) {
    ssize_t n = ::write(fd_.get(), pending_.data(), pending_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {  // the command closed its stdin (EPIPE) or the terminal is gone
      close();
      return;
    }
    last_ = pending_[static_cast<std::size_t>(n) - 1];
    pending_.erase(0, static_cast<std::size_t>(n));
  }
  if (!fd_ || !pending_.empty() || !eof_) return;
  if (!pty_) {
    close();
    return;
  }
  // A terminal has no end of input to close: VEOF ends it, twice after a partial line (the
  // first only ends that line).
  if (eof_sent_) return;
  eof_sent_ = true;
  termios t{};
  char veof = 4;
  if (::tcgetattr(fd_.get(), &t) == 0 && t.c_cc[VEOF] != 0) veof = static_cast<char>(t.c_cc[VEOF]);
  const char eofs[2] = {veof, veof};
  [[maybe_unused]] ssize_t n = ::write(fd_.get(), eofs, last_ == '\n' ? 1 : 2);
}

}  // namespace confpod::guest::agent
