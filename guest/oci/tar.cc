#include "guest/oci/tar.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace confpod::guest::oci {

namespace {

constexpr std::size_t kBlock = 512;

Error tar_error(const std::string& message) { return make_error("oci.tar", message); }

// A NUL-terminated (or full-width) string field.
std::string field_string(const std::uint8_t* p, std::size_t width) {
  std::size_t n = 0;
  while (n < width && p[n] != 0) ++n;
  return std::string(reinterpret_cast<const char*>(p), n);
}

// An octal field (leading spaces, digits, then space/NUL), or GNU base-256 when the high bit
// of the first byte is set. Negative base-256 values are rejected.
Result<std::uint64_t> field_number(const std::uint8_t* p, std::size_t width, const char* name) {
  if (p[0] & 0x80) {
    if (p[0] & 0x40) return tar_error(std::string("negative base-256 ") + name);
    std::uint64_t v = p[0] & 0x3f;
    for (std::size_t i = 1; i < width; ++i) {
      if (v >> 55) return tar_error(std::string("base-256 ") + name + " overflows");
      v = (v << 8) | p[i];
    }
    return v;
  }
  std::size_t i = 0;
  while (i < width && p[i] == ' ') ++i;
  std::uint64_t v = 0;
  for (; i < width && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return tar_error(std::string("octal ") + name + " overflows");
    v = v * 8 + (p[i] - '0');
  }
  for (; i < width; ++i)
    if (p[i] != ' ' && p[i] != 0) return tar_error(std::string("bad octal ") + name + " field");
  return v;
}

bool all_zero(const std::uint8_t* p, std::size_t n) {
  return std::all_of(p, p + n, [](std::uint8_t b) { return b == 0; });
}

// Header-only types carry no data whatever their size field says (as Go's archive/tar reads).
bool header_only(char typeflag) {
  return typeflag == '1' || typeflag == '2' || typeflag == '3' || typeflag == '4' ||
         typeflag == '5' || typeflag == '6';
}

struct PaxValues {
  std::optional<std::string> path, linkpath;
  std::optional<std::uint64_t> size;
};

// "LEN key=value\n" records, LEN counting the whole record.
Status parse_pax(std::string_view data, PaxValues& out, std::size_t max_path) {
  while (!data.empty()) {
    std::size_t sp = data.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 20) return tar_error("bad pax record");
    std::uint64_t len = 0;
    for (std::size_t i = 0; i < sp; ++i) {
      if (data[i] < '0' || data[i] > '9') return tar_error("bad pax record length");
      len = len * 10 + static_cast<std::uint64_t>(data[i] - '0');
    }
    if (len <= sp + 1 || len > data.size() || data[len - 1] != '\n')
      return tar_error("bad pax record length");
    std::string_view rec = data.substr(sp + 1, len - sp - 2);
    data.remove_prefix(len);
    std::size_t eq = rec.find('=');
    if (eq == std::string_view::npos) return tar_error("pax record without '='");
    std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
    if (key == "path" || key == "linkpath") {
      if (value.find('\0') != std::string_view::npos) return tar_error("NUL in pax path");
      if (value.size() > max_path)
        return make_error("oci.too_large", "pax " + std::string(key) + " longer than limit");
      (key == "path" ? out.path : out.linkpath) = std::string(value);
    } else if (key == "size") {
      if (value.empty() || value.size() > 19) return tar_error("bad pax size");
      std::uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return tar_error("bad pax size");
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      out.size = v;
    }
  }
  return ok_status();
}

}  // namespace

Status ByteSource::skip(std::uint64_t n) {
  std::array<std::uint8_t, 16384> buf;
  while (n > 0) {
    CONFPOD_ASSIGN_OR_RETURN(
        std::size_t got,
        read(buf.data(), static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()))));
    if (got == 0) return tar_error("truncated: stream ended inside an entry");
    n -= got;
  }
  return ok_status();
}

Status read_exact(ByteSource& source, std::uint8_t* buf, std::size_t n, const char* what) {
  std::size_t done = 0;
  while (done < n) {
    CONFPOD_ASSIGN_OR_RETURN(std::size_t got, source.read(buf + done, n - done));
    if (got == 0) return tar_error(std::string("truncated: stream ended inside ") + what);
    done += got;
  }
  return ok_status();
}

FdSource::FdSource(int fd, std::uint64_t offset, std::uint64_t length)
    : fd_(fd),
      pos_(offset),
      end_(length == kToEnd || offset + length < offset ? kToEnd : offset + length) {}

Result<std::size_t> FdSource::read(std::uint8_t* buf, std::size_t n) {
  if (end_ != kToEnd) n = static_cast<std::size_t>(std::min<std::uint64_t>(n, end_ - pos_));
  if (n == 0) return std::size_t{0};
  ssize_t got;
  do {
    got = ::pread(fd_, buf, n, static_cast<off_t>(pos_));
  } while (got < 0 && errno == EINTR);
  if (got < 0) return make_error("oci.io", std::string("read: ") + std::strerror(errno));
  if (got == 0 && end_ != kToEnd)
    return make_error("oci.io", "archive ended at offset " + std::to_string(pos_) +
                                    " inside a blob (changed underneath us?)");
  pos_ += static_cast<std::uint64_t>(got);
  return static_cast<std::size_t>(got);
}

Result<std::size_t> MemorySource::read(std::uint8_t* buf, std::size_t n) {
  n = std::min(n, size_ - pos_);
  if (n > 0) std::memcpy(buf, data_ + pos_, n);
  pos_ += n;
  return n;
}

GzipSource::GzipSource(ByteSource& compressed) : in_(compressed), buf_(64 * 1024) {
  // 16 + 15: gzip wrapper only, full 32 KiB window.
  init_ok_ = inflateInit2(&zs_, 16 + 15) == Z_OK;
}

GzipSource::~GzipSource() {
  if (init_ok_) inflateEnd(&zs_);
}

Status GzipSource::refill() {
  CONFPOD_ASSIGN_OR_RETURN(std::size_t got, in_.read(buf_.data(), buf_.size()));
  if (got == 0) in_eof_ = true;
  zs_.next_in = buf_.data();
  zs_.avail_in = static_cast<uInt>(got);
  return ok_status();
}

Result<std::size_t> GzipSource::read(std::uint8_t* buf, std::size_t n) {
  if (!init_ok_) return make_error("oci.layer", "inflateInit2 failed");
  if (done_ || n == 0) return std::size_t{0};
  n = std::min<std::size_t>(n, 1u << 30);
  zs_.next_out = buf;
  zs_.avail_out = static_cast<uInt>(n);
  while (zs_.avail_out == n) {
    if (zs_.avail_in == 0 && !in_eof_) CONFPOD_TRY(refill());
    if (zs_.avail_in == 0 && in_eof_) return make_error("oci.layer", "gzip stream truncated");
    int rc = inflate(&zs_, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      // Another member may follow (gzip concatenation is one stream).
      if (zs_.avail_in == 0 && !in_eof_) CONFPOD_TRY(refill());
      if (zs_.avail_in == 0) {
        done_ = true;
        break;
      }
      if (inflateReset(&zs_) != Z_OK) return make_error("oci.layer", "inflateReset failed");
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      return make_error("oci.layer",
                        std::string("bad gzip data: ") + (zs_.msg ? zs_.msg : "inflate error"));
  }
  return n - zs_.avail_out;
}

TarReader::TarReader(ByteSource& source, TarLimits limits) : src_(source), limits_(limits) {}

Result<bool> TarReader::read_block(std::uint8_t* block) {
  std::size_t done = 0;
  while (done < kBlock) {
    CONFPOD_ASSIGN_OR_RETURN(std::size_t got, src_.read(block + done, kBlock - done));
    if (got == 0) {
      if (done == 0) return false;
      return tar_error("truncated: stream ended inside a header");
    }
    done += got;
  }
  pos_ += kBlock;
  return true;
}

Status TarReader::skip_data() {
  std::uint64_t n = remaining_ + padding_;
  if (n == 0) return ok_status();
  CONFPOD_TRY(src_.skip(n));
  pos_ += n;
  remaining_ = padding_ = 0;
  return ok_status();
}

Result<std::size_t> TarReader::read(std::uint8_t* buf, std::size_t n) {
  n = static_cast<std::size_t>(std::min<std::uint64_t>(n, remaining_));
  if (n == 0) return std::size_t{0};
  CONFPOD_ASSIGN_OR_RETURN(std::size_t got, src_.read(buf, n));
  if (got == 0) return tar_error("truncated: stream ended inside entry data");
  remaining_ -= got;
  pos_ += got;
  return got;
}

Result<std::string> TarReader::read_all(std::uint64_t max) {
  if (remaining_ > max)
    return make_error("oci.too_large", "entry of " + std::to_string(remaining_) +
                                           " bytes exceeds the limit of " + std::to_string(max));
  std::string out(static_cast<std::size_t>(remaining_), '\0');
  CONFPOD_TRY(read_exact(src_, reinterpret_cast<std::uint8_t*>(out.data()), out.size(), "entry"));
  pos_ += remaining_;
  remaining_ = 0;
  return out;
}

Result<std::string> TarReader::read_meta(std::uint64_t size, const char* what) {
  if (size > limits_.max_meta_bytes)
    return make_error("oci.too_large", std::string(what) + " of " + std::to_string(size) +
                                           " bytes exceeds the limit");
  remaining_ = size;
  padding_ = (kBlock - size % kBlock) % kBlock;
  CONFPOD_ASSIGN_OR_RETURN(std::string data, read_all(size));
  CONFPOD_TRY(skip_data());
  return data;
}

Result<std::optional<TarEntry>> TarReader::next() {
  if (finished_) return tar_error("read past the end of the archive");
  CONFPOD_TRY(skip_data());

  PaxValues local;
  std::optional<std::string> gnu_name, gnu_link;
  std::array<std::uint8_t, kBlock> h;
  for (;;) {
    CONFPOD_ASSIGN_OR_RETURN(bool got, read_block(h.data()));
    if (!got) return tar_error("truncated: no end-of-archive marker");
    if (all_zero(h.data(), kBlock)) {
      // End of archive: a second zero block must follow; what comes after is not read.
      CONFPOD_ASSIGN_OR_RETURN(bool got2, read_block(h.data()));
      if (!got2) return tar_error("truncated: only one end-of-archive block");
      if (!all_zero(h.data(), kBlock)) return tar_error("a lone zero block inside the archive");
      finished_ = true;
      return std::optional<TarEntry>();
    }

    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t stored, field_number(h.data() + 148, 8, "chksum"));
    std::uint64_t usum = 0;
    std::int64_t ssum = 0;
    for (std::size_t i = 0; i < kBlock; ++i) {
      std::uint8_t b = (i >= 148 && i < 156) ? ' ' : h[i];
      usum += b;
      ssum += static_cast<std::int8_t>(b);
    }
    if (stored != usum && static_cast<std::int64_t>(stored) != ssum)
      return tar_error("header checksum mismatch at offset " + std::to_string(pos_ - kBlock));

    char typeflag = static_cast<char>(h[156]);
    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t size, field_number(h.data() + 124, 12, "size"));

    if (typeflag == 'x' || typeflag == 'g') {
      CONFPOD_ASSIGN_OR_RETURN(std::string data, read_meta(size, "pax header"));
      PaxValues values;
      CONFPOD_TRY(parse_pax(data, values, limits_.max_path_bytes));
      if (typeflag == 'g') {
        if (values.path) global_path_ = values.path;
        if (values.linkpath) global_linkpath_ = values.linkpath;
      } else {
        if (values.path) local.path = values.path;
        if (values.linkpath) local.linkpath = values.linkpath;
        if (values.size) local.size = values.size;
      }
      continue;
    }
    if (typeflag == 'L' || typeflag == 'K') {
      CONFPOD_ASSIGN_OR_RETURN(std::string data, read_meta(size, "GNU long name"));
      std::size_t nul = data.find('\0');
      if (nul != std::string::npos) data.resize(nul);
      if (data.size() > limits_.max_path_bytes)
        return make_error("oci.too_large", "GNU long name longer than the limit");
      (typeflag == 'L' ? gnu_name : gnu_link) = std::move(data);
      continue;
    }

    TarEntry e;
    e.typeflag = typeflag;
    // The ustar prefix field only exists in POSIX ustar ("ustar\0"); old GNU headers
    // ("ustar  \0") keep times there.
    std::string name = field_string(h.data(), 100);
    if (std::memcmp(h.data() + 257, "ustar\0", 6) == 0) {
      std::string prefix = field_string(h.data() + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    e.path = local.path ? *local.path : gnu_name ? *gnu_name : global_path_ ? *global_path_ : name;
    e.linkpath = local.linkpath     ? *local.linkpath
                 : gnu_link         ? *gnu_link
                 : global_linkpath_ ? *global_linkpath_
                                    : field_string(h.data() + 157, 100);
    if (e.path.empty()) return tar_error("entry with an empty name");
    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t mode, field_number(h.data() + 100, 8, "mode"));
    CONFPOD_ASSIGN_OR_RETURN(e.uid, field_number(h.data() + 108, 8, "uid"));
    CONFPOD_ASSIGN_OR_RETURN(e.gid, field_number(h.data() + 116, 8, "gid"));
    e.mode = static_cast<std::uint32_t>(mode & 07777);
    if (local.size) size = *local.size;
    if (header_only(typeflag)) size = 0;

    switch (typeflag) {
      case '0':
      case '\0':
      case '7':
        // Pre-POSIX archives mark directories only by a trailing '/'.
        e.type = (e.path.back() == '/' && size == 0) ? TarType::kDirectory : TarType::kFile;
        break;
      case '1':
        e.type = TarType::kHardlink;
        break;
      case '2':
        e.type = TarType::kSymlink;
        break;
      case '3':
        e.type = TarType::kCharDevice;
        break;
      case '4':
        e.type = TarType::kBlockDevice;
        break;
      case '5':
        e.type = TarType::kDirectory;
        break;
      case '6':
        e.type = TarType::kFifo;
        break;
      default:
        e.type = TarType::kOther;
    }
    if (size > limits_.max_entry_bytes)
      return make_error("oci.too_large", "entry '" + e.path.substr(0, 200) + "' of " +
                                             std::to_string(size) + " bytes exceeds the limit");
    e.size = size;
    e.data_offset = pos_;
    remaining_ = size;
    padding_ = (kBlock - size % kBlock) % kBlock;
    return std::optional<TarEntry>(std::move(e));
  }
}

}  // namespace confpod::guest::oci
