#include "attest/base/bytes.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace confpod {

std::string hex_number(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[value & 0xf]);
    value >>= 4;
  } while (value != 0);
  return "0x" + out;
}

std::string to_hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<Bytes> from_hex(std::string_view hex) {
  if (hex.size() >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex.remove_prefix(2);
  if (hex.size() % 2 != 0)
    return make_error("hex.invalid", "hex string has odd length " + std::to_string(hex.size()));
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return make_error("hex.invalid", "non-hex character at position " +
                                           std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

std::string to_base64(ByteView bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<Bytes> from_base64(std::string_view text) {
  if (text.size() % 4 != 0)
    return make_error("base64.invalid",
                      "base64 length " + std::to_string(text.size()) + " is not a multiple of 4");
  Bytes out(3 * (text.size() / 4));
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return make_error("base64.invalid", "not valid base64");
  // EVP_DecodeBlock counts padding as zero bytes; remove them.
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

namespace {
template <class Container>
Result<Container> read_whole(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("file.read", "cannot open " + path + ": " + std::strerror(errno));
  // Read to EOF rather than trusting the size: /proc and /sys files report 0 or 4096 whatever
  // they hold. A regular file's size still sizes the buffer up front.
  Container out;
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size > 0 && static_cast<std::uint64_t>(size) <= max_bytes)
    out.reserve(static_cast<std::size_t>(size));
  char chunk[65536];
  while (in) {
    in.read(chunk, sizeof chunk);
    const auto got = static_cast<std::size_t>(in.gcount());
    if (out.size() + got > max_bytes)
      return make_error("file.read", path + " holds more than the " + std::to_string(max_bytes) +
                                         " bytes allowed");
    out.insert(out.end(), chunk, chunk + got);
  }
  if (in.bad()) return make_error("file.read", "cannot read " + path);
  return out;
}
}  // namespace

Result<Bytes> read_file(const std::string& path, std::size_t max_bytes) {
  return read_whole<Bytes>(path, max_bytes);
}

Result<std::string> read_text_file(const std::string& path, std::size_t max_bytes) {
  return read_whole<std::string>(path, max_bytes);
}

bool is_all_zero(ByteView bytes) {
  for (std::uint8_t b : bytes)
    if (b != 0) return false;
  return true;
}

Status ByteReader::need(std::size_t n, std::string_view field) const {
  if (remaining() < n)
    return make_error(error_code_, "truncated: " + std::string(field) + " needs " +
                                       std::to_string(n) + " bytes at offset " +
                                       std::to_string(offset_) + ", only " +
                                       std::to_string(remaining()) + " left");
  return ok_status();
}

Result<std::uint8_t> ByteReader::u8(std::string_view field) {
  CONFPOD_TRY(need(1, field));
  return data_[offset_++];
}

Result<std::uint16_t> ByteReader::u16(std::string_view field) {
  CONFPOD_TRY(need(2, field));
  auto v = load_le16(data_.data() + offset_);
  offset_ += 2;
  return v;
}

Result<std::uint32_t> ByteReader::u32(std::string_view field) {
  CONFPOD_TRY(need(4, field));
  auto v = load_le32(data_.data() + offset_);
  offset_ += 4;
  return v;
}

Result<std::uint64_t> ByteReader::u64(std::string_view field) {
  CONFPOD_TRY(need(8, field));
  auto v = load_le64(data_.data() + offset_);
  offset_ += 8;
  return v;
}

Result<ByteView> ByteReader::take(std::size_t n, std::string_view field) {
  CONFPOD_TRY(need(n, field));
  ByteView v = data_.subspan(offset_, n);
  offset_ += n;
  return v;
}

Status ByteReader::skip(std::size_t n, std::string_view field) {
  CONFPOD_TRY(need(n, field));
  offset_ += n;
  return ok_status();
}

}  // namespace confpod
