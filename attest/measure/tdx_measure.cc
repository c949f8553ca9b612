#include "attest/measure/tdx_measure.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace confpod::measure {

namespace {

constexpr const char* kTdvf = "measure.tdvf";
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kChunk = 256;  // TDH.MR.EXTEND granularity
constexpr std::size_t kDescriptorHeader = 16;
constexpr std::size_t kSectionSize = 32;
// Real TDVF images add a few MiB of pages; this bound keeps a hostile image from asking for
// a measurement of terabytes.
constexpr std::uint64_t kMaxAddedBytes = 1ull << 30;
constexpr std::uint64_t kMaxGpa = 1ull << 52;

std::string describe(std::size_t index, const TdvfSection& s) {
  return "TDVF section " + std::to_string(index) + " (" + std::string(to_string(s.type)) + ")";
}

Status check_section(std::size_t index, const TdvfSection& s, std::uint64_t image_size) {
  const std::string where = describe(index, s);
  if ((s.attributes & ~(kTdvfAttrMrExtend | kTdvfAttrPageAug)) != 0)
    return make_error(kTdvf,
                      where + " has reserved attribute bits set: " + hex_number(s.attributes));
  if ((s.attributes & kTdvfAttrMrExtend) && (s.attributes & kTdvfAttrPageAug))
    return make_error(kTdvf, where +
                                 " is both MR.EXTEND and PAGE.AUG; an AUG page is never "
                                 "measured");
  if (s.memory_address % kPage != 0 || s.memory_data_size % kPage != 0)
    return make_error(kTdvf, where + " memory " + hex_number(s.memory_address) + " size " +
                                 hex_number(s.memory_data_size) + " is not 4 KiB aligned");
  if (s.memory_address >= kMaxGpa || s.memory_data_size > kMaxGpa - s.memory_address)
    return make_error(kTdvf, where + " memory " + hex_number(s.memory_address) + " size " +
                                 hex_number(s.memory_data_size) + " exceeds the 52-bit GPA space");
  if (std::uint64_t{s.data_offset} + s.raw_data_size > image_size)
    return make_error(kTdvf, where + " data [" + hex_number(s.data_offset) + ", +" +
                                 hex_number(s.raw_data_size) + ") lies outside the " +
                                 std::to_string(image_size) + "-byte image");
  if (s.raw_data_size > s.memory_data_size)
    return make_error(kTdvf, where + " has " + hex_number(s.raw_data_size) + " bytes of data for " +
                                 hex_number(s.memory_data_size) + " bytes of memory");
  if ((s.type == TdvfSectionType::kBfv || s.type == TdvfSectionType::kCfv) && s.raw_data_size == 0)
    return make_error(kTdvf, where + " carries no data; firmware volumes must");
  if ((s.attributes & kTdvfAttrMrExtend) && s.raw_data_size != s.memory_data_size)
    return make_error(kTdvf, where + " is MR.EXTEND with " + hex_number(s.raw_data_size) +
                                 " bytes of data for " + hex_number(s.memory_data_size) +
                                 " bytes of memory; the extended contents would be undefined");
  return ok_status();
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

}  // namespace

std::string_view to_string(TdvfSectionType type) {
  switch (type) {
    case TdvfSectionType::kBfv:
      return "BFV";
    case TdvfSectionType::kCfv:
      return "CFV";
    case TdvfSectionType::kTdHob:
      return "TD_HOB";
    case TdvfSectionType::kTempMem:
      return "TEMP_MEM";
    case TdvfSectionType::kPermMem:
      return "PERM_MEM";
    case TdvfSectionType::kPayload:
      return "PAYLOAD";
    case TdvfSectionType::kPayloadParam:
      return "PAYLOAD_PARAM";
    case TdvfSectionType::kTdInfo:
      return "TD_INFO";
    case TdvfSectionType::kTdParams:
      return "TD_PARAMS";
  }
  return "?";
}

Result<std::vector<TdvfSection>> parse_tdvf_metadata(ByteView image) {
  CONFPOD_ASSIGN_OR_RETURN(OvmfTable table, parse_ovmf_table(image, kTdvf));
  CONFPOD_ASSIGN_OR_RETURN(std::uint32_t from_end,
                           table.u32(kTdxMetadataOffsetGuid, "TDX metadata offset", kTdvf));
  if (from_end > image.size() || from_end < kDescriptorHeader ||
      image.size() - from_end < sizeof(Guid))
    return make_error(kTdvf, "TDX metadata offset " + hex_number(from_end) +
                                 " from the end does not fit the " + std::to_string(image.size()) +
                                 "-byte image");
  const std::size_t start = image.size() - from_end;
  if (!std::equal(kTdxMetadataGuid.begin(), kTdxMetadataGuid.end(),
                  image.begin() + static_cast<std::ptrdiff_t>(start - sizeof(Guid))))
    return make_error(kTdvf, "TDX metadata GUID " + guid_to_string(kTdxMetadataGuid) +
                                 " does not precede the descriptor at offset " +
                                 std::to_string(start));
  const std::uint8_t* d = image.data() + start;
  if (std::memcmp(d, "TDVF", 4) != 0)
    return make_error(kTdvf, "TDX metadata descriptor at offset " + std::to_string(start) +
                                 " lacks the 'TDVF' signature");
  const std::uint32_t length = load_le32(d + 4);
  const std::uint32_t version = load_le32(d + 8);
  const std::uint32_t count = load_le32(d + 12);
  if (version != 1)
    return make_error(kTdvf, "TDX metadata version " + std::to_string(version) + " (expected 1)");
  if (length > from_end)
    return make_error(
        kTdvf, "TDX metadata length " + std::to_string(length) + " runs past the end of the image");
  if (count == 0 || length < kDescriptorHeader ||
      (length - kDescriptorHeader) / kSectionSize < count)
    return make_error(kTdvf, "TDX metadata length " + std::to_string(length) + " cannot hold " +
                                 std::to_string(count) + " 32-byte sections (at least one)");

  std::vector<TdvfSection> sections;
  std::uint64_t added = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* p = d + kDescriptorHeader + kSectionSize * i;
    TdvfSection s;
    s.data_offset = load_le32(p);
    s.raw_data_size = load_le32(p + 4);
    s.memory_address = load_le64(p + 8);
    s.memory_data_size = load_le64(p + 16);
    const std::uint32_t type = load_le32(p + 24);
    s.attributes = load_le32(p + 28);
    if (type > static_cast<std::uint32_t>(TdvfSectionType::kTdParams))
      return make_error(
          kTdvf, "TDVF section " + std::to_string(i) + " has unknown type " + std::to_string(type));
    s.type = static_cast<TdvfSectionType>(type);
    CONFPOD_TRY(check_section(i, s, image.size()));
    if (!(s.attributes & kTdvfAttrPageAug)) {
      added += s.memory_data_size;
      if (added > kMaxAddedBytes)
        return make_error(kTdvf, "TDVF sections add more than " +
                                     std::to_string(kMaxAddedBytes >> 20) +
                                     " MiB of pages; refusing an implausible image");
    }
    sections.push_back(s);
  }

  // The TDX module refuses to add a page twice: overlapping sections are a broken image.
  std::vector<std::size_t> order(sections.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return sections[a].memory_address < sections[b].memory_address;
  });
  for (std::size_t k = 1; k < order.size(); ++k) {
    const TdvfSection& prev = sections[order[k - 1]];
    const TdvfSection& next = sections[order[k]];
    if (prev.memory_address + prev.memory_data_size > next.memory_address)
      return make_error(kTdvf, describe(order[k - 1], prev) + " and " + describe(order[k], next) +
                                   " overlap at " + hex_number(next.memory_address));
  }
  return sections;
}

Result<Sha384Digest> tdx_mrtd(ByteView image) {
  CONFPOD_ASSIGN_OR_RETURN(std::vector<TdvfSection> sections, parse_tdvf_metadata(image));

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha384(), nullptr) != 1)
    return make_error(kTdvf, "cannot initialise SHA-384");
  // The 128-byte records the TDX module hashes: an ASCII operation name, zero padded to 16
  // bytes, the GPA as u64 LE at offset 16, zeros to 128 bytes.
  std::array<std::uint8_t, 128> page_add{};
  std::memcpy(page_add.data(), "MEM.PAGE.ADD", 12);
  std::array<std::uint8_t, 128> extend{};
  std::memcpy(extend.data(), "MR.EXTEND", 9);
  auto put_gpa = [](std::array<std::uint8_t, 128>& record, std::uint64_t gpa) {
    for (int i = 0; i < 8; ++i) record[16 + i] = static_cast<std::uint8_t>(gpa >> (8 * i));
  };

  for (const TdvfSection& s : sections) {
    if (s.attributes & kTdvfAttrPageAug) continue;  // accepted by the guest later, unmeasured
    const bool measure = s.attributes & kTdvfAttrMrExtend;
    for (std::uint64_t off = 0; off < s.memory_data_size; off += kPage) {
      put_gpa(page_add, s.memory_address + off);
      EVP_DigestUpdate(ctx.get(), page_add.data(), page_add.size());
      if (!measure) continue;
      for (std::uint64_t c = off; c < off + kPage; c += kChunk) {
        put_gpa(extend, s.memory_address + c);
        EVP_DigestUpdate(ctx.get(), extend.data(), extend.size());
        EVP_DigestUpdate(ctx.get(), image.data() + s.data_offset + c, kChunk);
      }
    }
  }
  Sha384Digest mrtd{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), mrtd.data(), &len) != 1 || len != mrtd.size())
    return make_error(kTdvf, "SHA-384 failed");
  return mrtd;
}

}  // namespace confpod::measure
