#include "attest/measure/tdx_measure.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/fixtures.h"

namespace confpod::measure {
namespace {

Bytes synthetic() { return confpod::testing::read_fixture("tdx/synthetic_tdvf_64k.bin"); }

constexpr const char* kDebianOvmf = "/usr/share/ovmf/OVMF.fd";
constexpr const char* kDebianOvmfSha256 =
    "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773";

std::string mrtd_hex(ByteView image) {
  auto m = tdx_mrtd(image);
  if (!m.ok()) return "error " + m.error().describe();
  return to_hex(*m);
}

TEST(TdxMeasure, SyntheticTdvfMetadata) {
  auto sections = parse_tdvf_metadata(synthetic());
  ASSERT_TRUE(sections.ok()) << sections.error().describe();
  ASSERT_EQ(sections->size(), 4u);
  const TdvfSection& bfv = (*sections)[0];
  EXPECT_EQ(bfv.type, TdvfSectionType::kBfv);
  EXPECT_EQ(bfv.data_offset, 0x2000u);
  EXPECT_EQ(bfv.raw_data_size, 0xE000u);
  EXPECT_EQ(bfv.memory_address, 0xFFFF2000u);
  EXPECT_EQ(bfv.memory_data_size, 0xE000u);
  EXPECT_EQ(bfv.attributes, kTdvfAttrMrExtend);
  EXPECT_EQ((*sections)[1].type, TdvfSectionType::kCfv);
  EXPECT_EQ((*sections)[1].attributes, 0u);
  EXPECT_EQ((*sections)[2].type, TdvfSectionType::kTdHob);
  EXPECT_EQ((*sections)[2].memory_address, 0x809000u);
  EXPECT_EQ((*sections)[3].type, TdvfSectionType::kTempMem);
  EXPECT_EQ((*sections)[3].memory_data_size, 0x6000u);
}

TEST(TdxMeasure, SyntheticTdvfMrtdMatchesReadme) {
  EXPECT_EQ(mrtd_hex(synthetic()),
            "1918701c3755294a3e9d5492f555e94d273e3e752123c3d1c1f865c424781d9647c2bdbe3bf7fc84e0a1"
            "f6faca1434da");
}

TEST(TdxMeasure, DebianOvmfMrtdMatchesReadme) {
  if (!std::filesystem::exists(kDebianOvmf)) GTEST_SKIP() << kDebianOvmf << " not installed";
  auto image = read_file(kDebianOvmf);
  ASSERT_TRUE(image.ok()) << image.error().describe();
  // The README's value is for exactly this build; a Debian point release changes both.
  ASSERT_EQ(to_hex(sha256_of(*image)), kDebianOvmfSha256) << "different OVMF.fd build";
  auto sections = parse_tdvf_metadata(*image);
  ASSERT_TRUE(sections.ok()) << sections.error().describe();
  ASSERT_EQ(sections->size(), 6u);
  EXPECT_EQ((*sections)[0].memory_address, 0xFFE20000u);
  EXPECT_EQ((*sections)[0].raw_data_size, 0x1E0000u);
  EXPECT_EQ((*sections)[4].type, TdvfSectionType::kTdHob);
  EXPECT_EQ(mrtd_hex(*image),
            "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a21"
            "2967fb231c47");
}

TEST(TdxMeasure, ContentOfExtendedSectionsChangesMrtd) {
  const std::string base = mrtd_hex(synthetic());
  Bytes bfv = synthetic();
  bfv[0x2000 + 5] ^= 1;  // BFV is MR.EXTEND: measured
  EXPECT_NE(mrtd_hex(bfv), base);
  Bytes cfv = synthetic();
  cfv[0x10] ^= 1;  // CFV is not extended: only its GPAs count
  EXPECT_EQ(mrtd_hex(cfv), base);
}

// Offsets in the synthetic image: descriptor at 0xF000, sections from 0xF010, 32 bytes each.
constexpr std::size_t kDesc = 0xF000;
constexpr std::size_t kSec = kDesc + 16;

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::string error_message(const Bytes& image) {
  auto m = tdx_mrtd(image);
  if (m.ok()) return "ok";
  EXPECT_EQ(m.error().code, "measure.tdvf") << m.error().message;
  return m.error().message;
}

TEST(TdxMeasure, RejectsBrokenImagesByName) {
  const Bytes good = synthetic();
  for (std::size_t n = 0; n < good.size(); n += 1021) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_NE(error_message(cut), "ok") << n;
  }
  Bytes sig = good;
  sig[kDesc] = 'X';
  EXPECT_NE(error_message(sig).find("'TDVF'"), std::string::npos);
  Bytes guid = good;
  guid[kDesc - 1] ^= 1;
  EXPECT_NE(error_message(guid).find("does not precede"), std::string::npos);
  Bytes version = good;
  put32(version, kDesc + 8, 2);
  EXPECT_NE(error_message(version).find("version 2"), std::string::npos);
  Bytes count = good;
  put32(count, kDesc + 12, 1000);
  EXPECT_NE(error_message(count).find("cannot hold 1000"), std::string::npos);
  Bytes type = good;
  put32(type, kSec + 24, 42);
  EXPECT_NE(error_message(type).find("unknown type 42"), std::string::npos);
  Bytes attr = good;
  put32(attr, kSec + 28, 0x5);
  EXPECT_NE(error_message(attr).find("reserved attribute"), std::string::npos);
  Bytes outside = good;
  put32(outside, kSec, 0xF000);  // BFV data 0xF000 + 0xE000 > 64 KiB
  EXPECT_NE(error_message(outside).find("outside the 65536-byte image"), std::string::npos);
  Bytes unaligned = good;
  put32(unaligned, kSec + 32 + 8, 0xFFFF0100);  // CFV memory address
  EXPECT_NE(error_message(unaligned).find("not 4 KiB aligned"), std::string::npos);
  Bytes overlap = good;
  put32(overlap, kSec + 96 + 8, 0x808000);  // TEMP_MEM 0x808000+0x6000 runs into TD_HOB
  EXPECT_NE(error_message(overlap).find("overlap"), std::string::npos);
  Bytes huge = good;
  put32(huge, kSec + 96 + 16, 0);  // TEMP_MEM size 0x1'0000'0000 (high dword 1)
  put32(huge, kSec + 96 + 20, 1);
  EXPECT_NE(error_message(huge).find("implausible"), std::string::npos);
  Bytes partial_extend = good;
  put32(partial_extend, kSec + 4, 0xD000);  // BFV raw 0xD000 < memory 0xE000
  EXPECT_NE(error_message(partial_extend).find("MR.EXTEND"), std::string::npos);
}

TEST(TdxMeasure, SevOnlyFirmwareHasNoUsableTdxMetadata) {
  // The AmdSev suffix names TDX metadata but is only the last 4 KiB of the image.
  auto m = tdx_mrtd(confpod::testing::read_fixture("snp/ovmf_AmdSev_suffix.bin"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "measure.tdvf");
}

}  // namespace
}  // namespace confpod::measure
