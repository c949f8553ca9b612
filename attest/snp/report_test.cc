// Parsing of real SEV-SNP reports and of every malformed shape the parser must refuse.
#include "attest/snp/report.h"

#include <gtest/gtest.h>

#include "attest/snp/snp_test_util.h"

namespace confpod::snp {
namespace {

using testutil::code_of;
using testutil::gosev_report_bytes;
using testutil::milan_report_bytes;
using testutil::parse_ok;
using testutil::put_le32;
using testutil::put_le64;

// A copy of the Milan report rewritten as version `version` with the given CPUID fields.
Bytes as_version(std::uint32_t version, std::uint8_t family, std::uint8_t model,
                 std::uint8_t stepping) {
  Bytes bytes = milan_report_bytes();
  put_le32(bytes, 0x000, version);
  bytes[0x188] = family;
  bytes[0x189] = model;
  bytes[0x18A] = stepping;
  return bytes;
}

TEST(SnpReport, MilanFixtureFields) {
  Bytes bytes = milan_report_bytes();
  Report r = parse_ok(bytes);
  EXPECT_EQ(r.raw, bytes);
  EXPECT_EQ(r.signed_bytes().size(), 0x2A0u);
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(r.guest_svn, 0u);
  EXPECT_EQ(r.policy.raw, 0x30000u);
  EXPECT_TRUE(r.policy.smt);
  EXPECT_FALSE(r.policy.debug);
  EXPECT_FALSE(r.policy.migrate_ma);
  EXPECT_FALSE(r.policy.single_socket);
  EXPECT_EQ(r.policy.abi_major, 0);
  EXPECT_EQ(r.policy.abi_minor, 0);
  EXPECT_EQ(r.vmpl, 0u);
  EXPECT_EQ(r.signature_algo, 1u);
  EXPECT_EQ(r.signing_key, SigningKey::kVcek);
  EXPECT_FALSE(r.mask_chip_key);
  EXPECT_FALSE(r.author_key_en);
  EXPECT_EQ(r.platform_info.raw, 1u);
  EXPECT_TRUE(r.platform_info.smt_enabled);
  EXPECT_EQ(to_hex(r.measurement), testutil::kMilanMeasurement);
  EXPECT_EQ(to_hex(r.report_data), testutil::kMilanReportData);
  EXPECT_TRUE(is_all_zero(r.host_data));
  EXPECT_EQ(to_hex(r.reported_tcb.raw), "0300000000000873");
  EXPECT_EQ(to_hex(r.current_tcb.raw), "0300000000000873");
  EXPECT_EQ(to_hex(r.committed_tcb.raw), "0300000000000873");
  EXPECT_EQ(to_hex(r.launch_tcb.raw), "0300000000000873");
  EXPECT_EQ(r.reported_tcb.version, (TcbVersion{3, 0, 8, 0x73, std::nullopt}));
  EXPECT_EQ(r.current_tcb.version, r.reported_tcb.version);
  EXPECT_EQ(to_hex(r.chip_id).substr(0, 32), "d49554ec717f4e5b0fe6b143bcf0405b");
  EXPECT_EQ(r.current, (FirmwareVersion{1, 52, 4}));
  EXPECT_EQ(r.committed, (FirmwareVersion{1, 52, 4}));
  EXPECT_FALSE(r.cpuid.has_value());  // version 2
  EXPECT_FALSE(r.launch_mit_vector.has_value());
  EXPECT_FALSE(r.product.has_value());  // v2 without a product: layout not known
  EXPECT_EQ(to_hex(ByteView(r.signature_r).subspan(48)), std::string(48, '0'));
  EXPECT_EQ(to_hex(r.signature_s).substr(0, 8), "209d7eb9");
}

TEST(SnpReport, GosevFixtureFields) {
  Report r = parse_ok(gosev_report_bytes());
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(r.policy.raw, 0xb0000u);
  EXPECT_TRUE(r.policy.debug);
  EXPECT_TRUE(r.policy.smt);
  EXPECT_EQ(r.vmpl, 0u);
  EXPECT_EQ(to_hex(r.measurement), testutil::kGosevMeasurement);
  EXPECT_EQ(to_hex(r.report_data), "0102030405" + std::string(118, '0'));
  EXPECT_TRUE(is_all_zero(r.host_data));
  EXPECT_EQ(to_hex(r.reported_tcb.raw), "0200000000000544");
  EXPECT_EQ(to_hex(r.current_tcb.raw), "0200000000000544");
  EXPECT_EQ(r.reported_tcb.version, (TcbVersion{2, 0, 5, 0x44, std::nullopt}));
  EXPECT_EQ(to_hex(r.chip_id).substr(0, 32), "3ac3fe21e13fb0990eb28a802e3fb6a2");
  EXPECT_EQ(r.current, (FirmwareVersion{1, 49, 3}));
}

TEST(SnpReport, EveryTruncationIsRejectedAsSize) {
  Bytes bytes = milan_report_bytes();
  ASSERT_EQ(bytes.size(), kReportSize);
  for (std::size_t n = 0; n < kReportSize; ++n) {
    auto r = parse_report(ByteView(bytes).first(n));
    ASSERT_EQ(code_of(r), "snp.report.size") << "length " << n;
  }
  Bytes longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(code_of(parse_report(longer)), "snp.report.size");
  EXPECT_NE(testutil::message_of(parse_report(ByteView(bytes).first(1000))).find("1000"),
            std::string::npos);
}

TEST(SnpReport, UnknownVersionsAreRejected) {
  for (std::uint32_t version : {0u, 1u, 4u, 6u, 0x100u, 0xFFFFFFFFu}) {
    Bytes bytes = milan_report_bytes();
    put_le32(bytes, 0, version);
    EXPECT_EQ(code_of(parse_report(bytes)), "snp.report.version") << version;
  }
  for (std::uint32_t version : {2u, 3u, 5u}) {
    Bytes bytes = as_version(version, 0x19, 0x01, 0x01);
    EXPECT_EQ(code_of(parse_report(bytes)), "ok") << version;
  }
}

TEST(SnpReport, Version3CpuidSelectsTheProductAndLayout) {
  Report milan = parse_ok(as_version(3, 0x19, 0x01, 0x01));
  ASSERT_TRUE(milan.cpuid.has_value());
  EXPECT_EQ(milan.cpuid->family, 0x19);
  EXPECT_EQ(milan.cpuid->model, 0x01);
  EXPECT_EQ(milan.cpuid->stepping, 0x01);
  EXPECT_EQ(milan.product, Product::kMilan);
  EXPECT_EQ(milan.reported_tcb.version, (TcbVersion{3, 0, 8, 0x73, std::nullopt}));

  Report genoa = parse_ok(as_version(3, 0x19, 0x11, 0x01));
  EXPECT_EQ(genoa.product, Product::kGenoa);

  // Turin: [fmc, bootloader, tee, snp, reserved x3, microcode].
  Report turin = parse_ok(as_version(3, 0x1A, 0x02, 0x00));
  EXPECT_EQ(turin.product, Product::kTurin);
  EXPECT_EQ(turin.reported_tcb.version, (TcbVersion{0, 0, 0, 0x73, std::uint8_t{3}}));

  // A CPUID this code does not know leaves the product open.
  Report unknown = parse_ok(as_version(3, 0x17, 0x31, 0x00));
  EXPECT_FALSE(unknown.product.has_value());
}

TEST(SnpReport, ExplicitProductDecidesTheLayoutOfAVersion2Report) {
  Report as_turin = parse_ok(milan_report_bytes(), Product::kTurin);
  EXPECT_EQ(as_turin.product, Product::kTurin);
  EXPECT_EQ(as_turin.reported_tcb.version, (TcbVersion{0, 0, 0, 0x73, std::uint8_t{3}}));
  Report as_milan = parse_ok(milan_report_bytes(), Product::kMilan);
  EXPECT_EQ(as_milan.product, Product::kMilan);
  EXPECT_EQ(as_milan.reported_tcb.version, (TcbVersion{3, 0, 8, 0x73, std::nullopt}));
}

TEST(SnpReport, ProductContradictingTheSignedCpuidIsRejected) {
  Bytes turin = as_version(3, 0x1A, 0x02, 0x00);
  EXPECT_EQ(code_of(parse_report(turin, Product::kMilan)), "snp.report.product");
  EXPECT_EQ(code_of(parse_report(turin, Product::kTurin)), "ok");
  Bytes milan = as_version(5, 0x19, 0x01, 0x01);
  EXPECT_EQ(code_of(parse_report(milan, Product::kGenoa)), "snp.report.product");
}

TEST(SnpReport, Version5MitigationVectors) {
  Bytes bytes = as_version(5, 0x1A, 0x02, 0x00);
  put_le64(bytes, 0x1F8, 0x0102030405060708ull);
  put_le64(bytes, 0x200, 0x1112131415161718ull);
  Report r = parse_ok(bytes);
  ASSERT_TRUE(r.launch_mit_vector.has_value());
  ASSERT_TRUE(r.current_mit_vector.has_value());
  EXPECT_EQ(*r.launch_mit_vector, 0x0102030405060708ull);
  EXPECT_EQ(*r.current_mit_vector, 0x1112131415161718ull);
  // The same bytes are reserved in version 3.
  put_le32(bytes, 0, 3);
  EXPECT_FALSE(parse_ok(bytes).launch_mit_vector.has_value());
}

TEST(SnpReport, SignerInfoBits) {
  Bytes bytes = milan_report_bytes();
  put_le32(bytes, 0x48, (1u << 2) | 0x2 | 0x1);  // VLEK, MASK_CHIP_KEY, AUTHOR_KEY_EN
  Report r = parse_ok(bytes);
  EXPECT_EQ(r.signing_key, SigningKey::kVlek);
  EXPECT_TRUE(r.mask_chip_key);
  EXPECT_TRUE(r.author_key_en);

  put_le32(bytes, 0x48, 7u << 2);
  EXPECT_EQ(parse_ok(bytes).signing_key, SigningKey::kNone);
  for (std::uint32_t reserved = 2; reserved <= 6; ++reserved) {
    put_le32(bytes, 0x48, reserved << 2);
    EXPECT_EQ(code_of(parse_report(bytes)), "snp.report.signing_key") << reserved;
  }
}

TEST(SnpReport, PolicyBits) {
  GuestPolicy p = decode_policy(0x3FF0000ull | 0x0102);
  EXPECT_EQ(p.abi_minor, 0x02);
  EXPECT_EQ(p.abi_major, 0x01);
  EXPECT_TRUE(p.smt && p.migrate_ma && p.debug && p.single_socket && p.cxl_allowed &&
              p.mem_aes_256_xts && p.rapl_disabled && p.ciphertext_hiding && p.page_swap_disabled);
  GuestPolicy only_debug = decode_policy(1ull << 19);
  EXPECT_TRUE(only_debug.debug);
  EXPECT_FALSE(only_debug.smt || only_debug.migrate_ma || only_debug.single_socket);
  GuestPolicy only_ma = decode_policy(1ull << 18);
  EXPECT_TRUE(only_ma.migrate_ma);
  EXPECT_FALSE(only_ma.debug);
  EXPECT_EQ(format_hex(0x30000), "0x30000");
  EXPECT_EQ(format_hex(0), "0x0");
}

TEST(SnpReport, PlatformInfoBits) {
  PlatformInfo p = decode_platform_info(0xBF);
  EXPECT_TRUE(p.smt_enabled && p.tsme_enabled && p.ecc_enabled && p.rapl_disabled &&
              p.ciphertext_hiding_enabled && p.alias_check_complete && p.tio_enabled);
  PlatformInfo tsme = decode_platform_info(0x2);
  EXPECT_TRUE(tsme.tsme_enabled);
  EXPECT_FALSE(tsme.smt_enabled || tsme.tio_enabled);
}

TEST(SnpReport, TcbLayoutsRoundTrip) {
  TcbVersion legacy{1, 2, 3, 4, std::nullopt};
  EXPECT_EQ(to_hex(encode_tcb(legacy, Product::kMilan)), "0102000000000304");
  EXPECT_EQ(to_hex(encode_tcb(legacy, Product::kGenoa)), "0102000000000304");
  EXPECT_EQ(decode_tcb(encode_tcb(legacy, Product::kGenoa), Product::kGenoa), legacy);
  TcbVersion turin{1, 2, 3, 4, std::uint8_t{5}};
  EXPECT_EQ(to_hex(encode_tcb(turin, Product::kTurin)), "0501020300000004");
  EXPECT_EQ(decode_tcb(encode_tcb(turin, Product::kTurin), Product::kTurin), turin);
  EXPECT_EQ(to_string(turin), "bootloader=1 tee=2 snp=3 microcode=4 fmc=5");
}

TEST(SnpReport, ProductNames) {
  EXPECT_EQ(code_of(parse_product("naples")), "snp.product");
  EXPECT_EQ(code_of(parse_product("")), "snp.product");
  for (Product p : {Product::kMilan, Product::kGenoa, Product::kTurin}) {
    auto parsed = parse_product(product_name(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(*parse_product("Genoa"), Product::kGenoa);
  EXPECT_EQ(*parse_product("TURIN"), Product::kTurin);
  EXPECT_EQ(product_from_cpuid(0x19, 0x00), Product::kMilan);
  EXPECT_EQ(product_from_cpuid(0x19, 0x0F), Product::kMilan);
  EXPECT_EQ(product_from_cpuid(0x19, 0x10), Product::kGenoa);
  EXPECT_EQ(product_from_cpuid(0x19, 0xA0), Product::kGenoa);
  EXPECT_EQ(product_from_cpuid(0x19, 0x20), std::nullopt);
  EXPECT_EQ(product_from_cpuid(0x1A, 0x11), Product::kTurin);
  EXPECT_EQ(product_from_cpuid(0x1A, 0x50), std::nullopt);
  EXPECT_EQ(product_from_cpuid(0x17, 0x31), std::nullopt);
}

}  // namespace
}  // namespace confpod::snp
