#include "attest/measure/ovmf.h"

#include <gtest/gtest.h>

#include "tests/support/fixtures.h"

namespace confpod::measure {
namespace {

TEST(OvmfTable, GuidBytesAreMixedEndian) {
  constexpr Guid g = guid("96b582de-1fb2-45f7-baea-a366c55a082d");
  EXPECT_EQ(to_hex(g), "de82b596b21ff745baeaa366c55a082d");
  EXPECT_EQ(guid_to_string(g), "96b582de-1fb2-45f7-baea-a366c55a082d");
}

TEST(OvmfTable, ParsesAmdSevSuffix) {
  const Bytes image = confpod::testing::read_fixture("snp/ovmf_AmdSev_suffix.bin");
  auto table = parse_ovmf_table(image, "measure.ovmf");
  ASSERT_TRUE(table.ok()) << table.error().describe();
  ASSERT_EQ(table->entries.size(), 5u);
  auto eip = table->u32(kSevEsResetBlockGuid, "SEV-ES reset block", "measure.ovmf");
  ASSERT_TRUE(eip.ok());
  EXPECT_EQ(*eip, 0x80b004u);
  auto meta = table->u32(kSevMetadataGuid, "SEV metadata", "measure.ovmf");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(*meta, 0x554u);
  const OvmfTableEntry* tdx = table->find(kTdxMetadataOffsetGuid);
  ASSERT_NE(tdx, nullptr);
  EXPECT_EQ(to_hex(tdx->data), "d0090000");
}

TEST(OvmfTable, MissingEntryIsNamed) {
  const Bytes image = confpod::testing::read_fixture("tdx/synthetic_tdvf_64k.bin");
  auto table = parse_ovmf_table(image, "measure.tdvf");
  ASSERT_TRUE(table.ok()) << table.error().describe();
  ASSERT_EQ(table->entries.size(), 1u);
  auto eip = table->u32(kSevEsResetBlockGuid, "SEV-ES reset block", "measure.ovmf");
  ASSERT_FALSE(eip.ok());
  EXPECT_EQ(eip.error().code, "measure.ovmf");
  EXPECT_NE(eip.error().message.find("00f771de-1a7e-4fcb-890e-68c77e2fb44e"), std::string::npos);
}

TEST(OvmfTable, RejectsBadEntryLengths) {
  Bytes image = confpod::testing::read_fixture("tdx/synthetic_tdvf_64k.bin");
  // The only entry's length (22) sits just before its GUID, 18 bytes before the footer.
  const std::size_t entry_len = image.size() - 32 - 18 - 18;
  ASSERT_EQ(image[entry_len], 22);
  image[entry_len] = 5;
  auto table = parse_ovmf_table(image, "measure.tdvf");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().code, "measure.tdvf");
  EXPECT_NE(table.error().message.find("has length 5"), std::string::npos);
  EXPECT_FALSE(parse_ovmf_table(Bytes(40, 0), "measure.ovmf").ok());
}

}  // namespace
}  // namespace confpod::measure
