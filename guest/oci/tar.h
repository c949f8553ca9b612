// A bounded, streaming tar reader for hostile input, and the byte sources it reads from.
//
// Formats: ustar (with the POSIX name prefix), POSIX pax 'x' and 'g' headers (path, linkpath,
// size; other keys ignored), GNU 'L'/'K' long names, GNU base-256 sizes. The header checksum
// is verified. Reading stops at the end-of-archive marker (two zero blocks): the source may
// be a block device padded far beyond the archive, so its size is never consulted.
//
// Everything streams: an entry's data is read in caller-sized chunks, so blobs can be hashed
// or inflated without holding them in memory. Errors: "oci.tar" (malformed or truncated),
// "oci.too_large" (a size above TarLimits), "oci.io" (read failure), "oci.layer" (bad gzip).
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"

namespace confpod::guest::oci {

// A sequential stream of bytes.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `n` bytes into `buf`; 0 only at the end of the stream.
  virtual Result<std::size_t> read(std::uint8_t* buf, std::size_t n) = 0;
  // Discards `n` bytes (default: reads them). Error "oci.tar" if the stream ends first.
  virtual Status skip(std::uint64_t n);
};

// Reads exactly `n` bytes; error "oci.tar" naming `what` if the stream ends first.
Status read_exact(ByteSource& source, std::uint8_t* buf, std::size_t n, const char* what);

// [offset, offset + length) of a file descriptor, read with pread (the fd's file position is
// not used, so several sources may share one fd). With length kToEnd the stream ends where
// the file does; with a bounded length, ending early is an "oci.io" error (the file shrank).
class FdSource final : public ByteSource {
 public:
  static constexpr std::uint64_t kToEnd = ~std::uint64_t{0};
  FdSource(int fd, std::uint64_t offset, std::uint64_t length = kToEnd);
  Result<std::size_t> read(std::uint8_t* buf, std::size_t n) override;
  std::uint64_t position() const { return pos_; }

 private:
  int fd_;
  std::uint64_t pos_;
  std::uint64_t end_;
};

// A byte range in memory (tests, fuzzing).
class MemorySource final : public ByteSource {
 public:
  MemorySource(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  Result<std::size_t> read(std::uint8_t* buf, std::size_t n) override;

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Inflates a gzip stream (RFC 1952; concatenated members are one stream). Errors "oci.layer".
class GzipSource final : public ByteSource {
 public:
  explicit GzipSource(ByteSource& compressed);
  ~GzipSource() override;
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;
  Result<std::size_t> read(std::uint8_t* buf, std::size_t n) override;

 private:
  Status refill();

  ByteSource& in_;
  z_stream zs_{};
  bool init_ok_ = false;
  bool in_eof_ = false;
  bool done_ = false;
  std::vector<std::uint8_t> buf_;
};

enum class TarType {
  kFile,
  kDirectory,
  kSymlink,
  kHardlink,
  kCharDevice,
  kBlockDevice,
  kFifo,
  kOther,  // any typeflag we do not create (GNU sparse, volume labels, ...): data skipped
};

struct TarEntry {
  TarType type = TarType::kFile;
  char typeflag = '0';
  std::string path;        // as recorded (pax/GNU long name applied), not normalized
  std::string linkpath;    // symlink target or hardlink target
  std::uint64_t size = 0;  // data bytes (0 for header-only types whatever the header says)
  std::uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky (07777)
  std::uint64_t uid = 0;
  std::uint64_t gid = 0;
  std::uint64_t data_offset = 0;  // stream offset of the first data byte
};

struct TarLimits {
  std::uint64_t max_entry_bytes = 1ull << 30;  // one entry's data
  std::uint64_t max_meta_bytes = 1u << 20;     // one pax header or GNU long name
  std::size_t max_path_bytes = 4096;           // a path or link target (PATH_MAX)
};

class TarReader {
 public:
  explicit TarReader(ByteSource& source, TarLimits limits = {});

  // The next entry, or nullopt at the end-of-archive marker. Unread data of the previous
  // entry is skipped. After nullopt or an error, the reader must not be used again.
  Result<std::optional<TarEntry>> next();
  // Up to `n` bytes of the current entry's data; 0 once it is all read.
  Result<std::size_t> read(std::uint8_t* buf, std::size_t n);
  // The rest of the current entry's data (at most `max` bytes, else "oci.too_large").
  Result<std::string> read_all(std::uint64_t max);
  // Bytes consumed from the source so far.
  std::uint64_t position() const { return pos_; }

 private:
  // Reads one 512-byte block; false at a clean end of stream before its first byte.
  Result<bool> read_block(std::uint8_t* block);
  Status skip_data();
  Result<std::string> read_meta(std::uint64_t size, const char* what);

  ByteSource& src_;
  TarLimits limits_;
  std::uint64_t pos_ = 0;
  std::uint64_t remaining_ = 0;  // data bytes of the current entry not yet read
  std::uint64_t padding_ = 0;    // padding after them
  bool finished_ = false;
  // pax 'g' values apply to every later entry.
  std::optional<std::string> global_path_, global_linkpath_;
};

}  // namespace confpod::guest::oci
