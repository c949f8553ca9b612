// Byte buffers, hex, base64, files and bounds-checked little-endian reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"

namespace confpod {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Lower-case hex of the bytes.
std::string to_hex(ByteView bytes);
// A number as "0x" + lower-case hex without leading zeros ("0x30000", "0x0"), the way QEMU,
// libvirt and our error messages spell policies, addresses and sizes.
std::string hex_number(std::uint64_t value);
// Accepts upper or lower case, no separators, optional "0x" prefix. Error code "hex.invalid".
Result<Bytes> from_hex(std::string_view hex);

// Standard base64 (RFC 4648 section 4) with padding.
std::string to_base64(ByteView bytes);
// Accepts padded standard base64; ignores no characters. Error code "base64.invalid".
Result<Bytes> from_base64(std::string_view text);

// Whole-file reads; refuse files larger than max_bytes. Error code "file.read".
Result<Bytes> read_file(const std::string& path, std::size_t max_bytes = 64u << 20);
Result<std::string> read_text_file(const std::string& path, std::size_t max_bytes = 64u << 20);

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool is_all_zero(ByteView bytes);

// Little-endian loads from a span the caller has already bounds-checked.
inline std::uint16_t load_le16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t load_le32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
inline std::uint64_t load_le64(const std::uint8_t* p) {
  return static_cast<std::uint64_t>(load_le32(p)) |
         (static_cast<std::uint64_t>(load_le32(p + 4)) << 32);
}

// A cursor over untrusted bytes: every read is bounds-checked and a short read
// is reported with the name of the field being read.
class ByteReader {
 public:
  explicit ByteReader(ByteView data, std::string error_code = "bytes.truncated")
      : data_(data), error_code_(std::move(error_code)) {}

  std::size_t offset() const { return offset_; }
  std::size_t remaining() const { return data_.size() - offset_; }

  Result<std::uint8_t> u8(std::string_view field);
  Result<std::uint16_t> u16(std::string_view field);
  Result<std::uint32_t> u32(std::string_view field);
  Result<std::uint64_t> u64(std::string_view field);
  Result<ByteView> take(std::size_t n, std::string_view field);
  Status skip(std::size_t n, std::string_view field);

 private:
  Status need(std::size_t n, std::string_view field) const;

  ByteView data_;
  std::size_t offset_ = 0;
  std::string error_code_;
};

}  // namespace confpod
