#include "attest/measure/ovmf.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>

namespace confpod::measure {

namespace {

constexpr std::size_t kResetVectorTail = 32;  // bytes after the table, at the image's end
constexpr std::size_t kEntryTrailer = 18;     // u16 length + GUID

template <std::size_t N>
std::array<std::uint8_t, N> one_shot(const EVP_MD* md, ByteView data) {
  std::array<std::uint8_t, N> out{};
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure; the digest is then all zero and the
  // measurement will not match anything, which fails closed.
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  return out;
}

}  // namespace

Sha256Digest sha256_of(ByteView data) { return one_shot<32>(EVP_sha256(), data); }
Sha384Digest sha384_of(ByteView data) { return one_shot<48>(EVP_sha384(), data); }

std::string guid_to_string(const Guid& g) {
  char text[37];
  std::snprintf(text, sizeof text,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2],
                g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
                g[15]);
  return text;
}

const OvmfTableEntry* OvmfTable::find(const Guid& g) const {
  for (const auto& e : entries)
    if (e.guid == g) return &e;
  return nullptr;
}

Result<std::uint32_t> OvmfTable::u32(const Guid& g, std::string_view what,
                                     const std::string& code) const {
  const OvmfTableEntry* e = find(g);
  if (e == nullptr)
    return make_error(code, "firmware has no " + std::string(what) + " entry (GUID " +
                                guid_to_string(g) + ") in its OVMF table");
  if (e->data.size() < 4)
    return make_error(code, std::string(what) + " entry (GUID " + guid_to_string(g) + ") has " +
                                std::to_string(e->data.size()) + " data bytes, expected 4");
  return load_le32(e->data.data());
}

Result<OvmfTable> parse_ovmf_table(ByteView image, const std::string& code) {
  if (image.size() < kResetVectorTail + kEntryTrailer)
    return make_error(code, "firmware image is " + std::to_string(image.size()) +
                                " bytes, too small to hold an OVMF table footer");
  const std::size_t footer = image.size() - kResetVectorTail - kEntryTrailer;
  Guid footer_guid{};
  std::copy_n(image.data() + footer + 2, 16, footer_guid.begin());
  if (footer_guid != kOvmfTableFooterGuid)
    return make_error(code, "no OVMF table footer GUID " + guid_to_string(kOvmfTableFooterGuid) +
                                " at offset " + std::to_string(footer + 2) + " (found " +
                                guid_to_string(footer_guid) + ")");
  const std::size_t table_len = load_le16(image.data() + footer);
  if (table_len < kEntryTrailer)
    return make_error(code, "OVMF table length " + std::to_string(table_len) +
                                " is smaller than its own 18-byte footer");
  const std::size_t body_len = table_len - kEntryTrailer;
  if (body_len > footer)
    return make_error(code, "OVMF table length " + std::to_string(table_len) +
                                " reaches before the start of the image");

  OvmfTable table;
  ByteView rest = image.subspan(footer - body_len, body_len);
  while (rest.size() >= kEntryTrailer) {
    const std::size_t trailer = rest.size() - kEntryTrailer;
    const std::size_t entry_len = load_le16(rest.data() + trailer);
    OvmfTableEntry entry;
    std::copy_n(rest.data() + trailer + 2, 16, entry.guid.begin());
    if (entry_len < kEntryTrailer || entry_len > rest.size())
      return make_error(code, "OVMF table entry " + guid_to_string(entry.guid) + " has length " +
                                  std::to_string(entry_len) + ", outside 18.." +
                                  std::to_string(rest.size()));
    entry.data = rest.subspan(rest.size() - entry_len, entry_len - kEntryTrailer);
    table.entries.push_back(entry);
    rest = rest.first(rest.size() - entry_len);
  }
  // Fewer than 18 bytes left cannot form an entry; QEMU ignores them too.
  return table;
}

}  // namespace confpod::measure
