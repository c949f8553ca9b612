#include "daemon/pods/pod_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>

#include "attest/base/unique_fd.h"
#include "daemon/pods/guest_link.h"
#include "daemon/pods/manager.h"

namespace confpod::pods {

std::string quote_name(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  std::size_t n = std::min<std::size_t>(name.size(), 64);
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (name.size() > n) out += "...";
  return out + "\"";
}

namespace {

// A log file opened for reading: a regular file with one link, never through a symbolic link
// and never a FIFO or device (the VM's files are in a directory the VM's user may write,
// docs/vmm.md).
struct LogFile {
  UniqueFd fd;
  std::uint64_t size = 0;
};

LogFile open_log(const std::string& path) {
  LogFile log;
  log.fd.reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  // One link only: a hard link to someone else's file is not this pod's log.
  if (!log.fd || ::fstat(log.fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
    return {};
  log.size = static_cast<std::uint64_t>(st.st_size);
  return log;
}

std::uint64_t file_size_or_zero(const std::string& path) { return open_log(path).size; }

// The last `max` bytes of a file ("" when unreadable), starting at a UTF-8 character boundary.
std::string tail_of_file(const std::string& path, std::uint64_t max) {
  LogFile log = open_log(path);
  if (log.size == 0 || max == 0) return {};
  const std::uint64_t take = std::min(log.size, max);
  std::string data(static_cast<std::size_t>(take), '\0');
  std::size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(log.fd.get(), data.data() + got, data.size() - got,
                        static_cast<off_t>(log.size - take + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  if (take < log.size) {
    std::size_t skip = 0;
    while (skip < 3 && skip < data.size() &&
           (static_cast<unsigned char>(data[skip]) & 0xc0) == 0x80)
      ++skip;
    data.erase(0, skip);
  }
  return data;
}

}  // namespace

std::string qemu_log_path(const spec::PodPaths& paths) { return paths.dir + "/qemu.log"; }

Result<std::string> read_pod_log(const spec::PodPaths& paths, std::uint64_t max_bytes) {
  // QEMU and the console first, then what the agent said, then the containers' own output.
  struct Part {
    std::string header, path;
    std::uint64_t size = 0, take = 0;
  };
  std::vector<Part> parts = {{"==> qemu.log <==\n", qemu_log_path(paths)},
                             {"==> serial.log <==\n", paths.serial_log},
                             {"==> agent.log <==\n", GuestLink::agent_log(paths.dir)},
                             {"==> containers.log <==\n", GuestLink::containers_log(paths.dir)}};
  std::uint64_t avail = std::min(max_bytes, kMaxLogBytes);
  for (Part& p : parts) {
    p.size = file_size_or_zero(p.path);
    avail = avail > p.header.size() ? avail - p.header.size() : 0;
  }
  // Fair shares: a file that needs less than its share leaves the rest to the others.
  std::size_t open_parts = 0;
  for (const Part& p : parts) open_parts += p.size > 0 ? 1 : 0;
  bool changed = true;
  while (changed && open_parts > 0) {
    changed = false;
    std::uint64_t share = avail / open_parts;
    for (Part& p : parts) {
      if (p.take == p.size) continue;
      if (p.size - p.take <= share) {
        avail -= p.size - p.take;
        p.take = p.size;
        --open_parts;
        changed = true;
      }
    }
    if (!changed)
      for (Part& p : parts)
        if (p.take < p.size) p.take += share, avail -= share;
  }
  std::string text;
  for (const Part& p : parts) {
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += p.header + tail_of_file(p.path, p.take);
  }
  return sanitize_utf8(text);
}

std::string sanitize_utf8(std::string_view bytes) {
  static constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    auto b0 = static_cast<unsigned char>(bytes[i]);
    if (b0 == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (b0 < 0x80) {
      out += static_cast<char>(b0);
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0, min = 0;
    if ((b0 & 0xe0) == 0xc0) {
      len = 2, cp = b0 & 0x1f, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
      len = 3, cp = b0 & 0x0f, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    }
    bool valid = len != 0 && i + len <= bytes.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      auto b = static_cast<unsigned char>(bytes[i + k]);
      if ((b & 0xc0) != 0x80) valid = false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (valid && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) valid = false;
    if (valid) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

Error not_found(std::string_view name) {
  return make_error("pods.not_found", "no pod named " + quote_name(name));
}

}  // namespace confpod::pods
