// The agent's log lines go to its stderr: the VM's console, which the host reads. So no
// secret reaches them, and host-supplied text appears only through printable().
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace confpod::guest::agent {

inline void log(const std::string& message) {
  std::fprintf(stderr, "confpod-agent: %s\n", message.c_str());
  std::fflush(stderr);
}

// Host-supplied text as it may appear in a log line: printable ASCII, at most 128 bytes.
inline std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 128)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > 128) out += "...";
  return out;
}

}  // namespace confpod::guest::agent
