// Collateral files as sites save them from AMD's KDS and Intel's PCS (the real fixtures in
// ../shared/fixtures): what each holds, how it is keyed, and that only what chains to the
// pinned roots verifies.
#include "attest/collateral/collateral.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "attest/crypto/crypto.h"
#include "attest/snp/report.h"
#include "tests/support/fixtures.h"

namespace confpod::collateral {
namespace {

constexpr UnixSeconds kSnpAt = 1'780'272'000;  // 2026-06-01: inside both Genoa VCEKs' validity
constexpr UnixSeconds kV4At = 1752919234;      // 2025-07-19T10:00:34Z: dcap-qvl v4 collateral
constexpr UnixSeconds kPcsAt = 1688173200;     // 2023-07-01T01:00:00Z: go-tdx-guest's PCS files

std::vector<Item> parse_ok(const std::string& fixture) {
  Bytes bytes = testing::read_fixture(fixture);
  auto items = parse_file(bytes, fixture);
  EXPECT_TRUE(items.ok()) << fixture << ": " << items.error().describe();
  return items.ok() ? std::move(items).value() : std::vector<Item>{};
}

std::vector<std::string> kinds(const std::vector<Item>& items) {
  std::vector<std::string> out;
  for (const Item& i : items) out.emplace_back(kind_name(i.kind));
  return out;
}

TEST(Collateral, AVcekFromKdsIsKeyedByTheChipAndTcbItsReportsCarry) {
  auto items = parse_ok("snp/ms_genoa_vcek.pem");
  ASSERT_EQ(items.size(), 1u);
  const Item& vcek = items[0];
  EXPECT_EQ(vcek.kind, Kind::kSnpVcek);
  auto report = snp::parse_report(testing::read_fixture("snp/ms_genoa_report_v3.bin"));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(vcek.key, "genoa/" + to_hex(report->chip_id) + "/" + tcb_key(report->reported_tcb.raw));
  EXPECT_NE(vcek.subject.find("VCEK genoa"), std::string::npos) << vcek.subject;
  EXPECT_EQ(vcek.id().size(), 16u);
  Status ok = verify_item(vcek, {}, kSnpAt);
  EXPECT_TRUE(ok.ok()) << ok.error().describe();
  // The DER form of the same certificate is the same item.
  auto der = parse_ok("snp/trustee_genoa_vcek.der");
  ASSERT_EQ(der.size(), 1u);
  EXPECT_EQ(der[0].kind, Kind::kSnpVcek);
  EXPECT_TRUE(verify_item(der[0], {}, kSnpAt).ok());
}

TEST(Collateral, KdsCertChainsAndVleks) {
  auto chain = parse_ok("snp/ask_ark_milan_vlek.pem");
  EXPECT_EQ(kinds(chain), (std::vector<std::string>{"snp-asvk", "snp-ark"}));
  for (const Item& i : chain) {
    EXPECT_EQ(i.key, "milan");
    Status ok = verify_item(i, {}, kSnpAt);
    EXPECT_TRUE(ok.ok()) << i.subject << ": " << ok.error().describe();
  }
  auto ask = parse_ok("snp/ask_turin.pem");
  ASSERT_EQ(ask.size(), 1u);
  EXPECT_EQ(ask[0].kind, Kind::kSnpAsk);
  EXPECT_EQ(ask[0].key, "turin");
  EXPECT_TRUE(verify_item(ask[0], {}, kSnpAt).ok());
  auto vlek = parse_ok("snp/trustee_vlek_milan.der");
  ASSERT_EQ(vlek.size(), 1u);
  EXPECT_EQ(vlek[0].kind, Kind::kSnpVlek);
  EXPECT_TRUE(vlek[0].key.starts_with("milan/")) << vlek[0].key;
}

TEST(Collateral, ForgedAmdCertificatesNeverVerify) {
  // One bit of the VCEK's signature flipped: still a VCEK by every field, signed by nobody.
  Bytes der = testing::read_fixture("snp/trustee_genoa_vcek.der");
  der[der.size() - 5] ^= 0x01;
  auto forged = parse_file(der, "forged.der");
  ASSERT_TRUE(forged.ok()) << forged.error().describe();
  Status refused = verify_item((*forged)[0], {}, kSnpAt);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "collateral.untrusted");
  // An ARK that is not byte for byte AMD's.
  auto ark = parse_ok("snp/ark_milan.pem");
  ASSERT_EQ(ark.size(), 1u);
  EXPECT_TRUE(verify_item(ark[0], {}, kSnpAt).ok());
  Item other = ark[0];
  other.data[other.data.size() - 3] ^= 0x01;
  Status pinned = verify_item(other, {}, kSnpAt);
  ASSERT_FALSE(pinned.ok());
  EXPECT_NE(pinned.error().message.find("not AMD's pinned milan ARK"), std::string::npos)
      << pinned.error().message;
  // The Genoa VCEK presented as Milan's ASK: refused by its kind's rule.
  Item swapped = parse_ok("snp/trustee_genoa_vcek.der")[0];
  swapped.kind = Kind::kSnpAsk;
  swapped.key = "milan";
  EXPECT_EQ(verify_item(swapped, {}, kSnpAt).error().code, "collateral.untrusted");
}

TEST(Collateral, DcapQvlCollateralSplitsIntoPcsPiecesThatVerifyTogether) {
  auto items = parse_ok("tdx/dcapqvl_collateral_v4.json");
  auto names = kinds(items);
  for (const char* kind :
       {"tdx-tcb-info", "tdx-qe-identity", "intel-ca", "tdx-pck-crl", "tdx-root-crl"})
    EXPECT_NE(std::find(names.begin(), names.end(), kind), names.end()) << kind;
  for (const Item& i : items) {
    Status ok = verify_item(i, items, kV4At);
    EXPECT_TRUE(ok.ok()) << i.subject << ": " << ok.error().describe();
  }
  // Without the TCB Signing certificate the TCB info names what to import.
  const Item* tcb = nullptr;
  for (const Item& i : items)
    if (i.kind == Kind::kTdxTcbInfo) tcb = &i;
  ASSERT_NE(tcb, nullptr);
  EXPECT_EQ(tcb->key.size(), 12u);  // the FMSPC
  Status alone = verify_item(*tcb, {}, kV4At);
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.error().code, "collateral.issuer_missing");
  EXPECT_NE(alone.error().message.find("Intel SGX TCB Signing"), std::string::npos);
  // After its next update it is expired, not silently used.
  Status late = verify_item(*tcb, items, tcb->not_after + 1);
  EXPECT_EQ(late.error().code, "collateral.expired");
}

TEST(Collateral, PcsResponsesAsSavedFiles) {
  std::vector<Item> all;
  for (const char* f : {"tdx/gotdx_pcs_tcbinfo_50806f000000.json", "tdx/gotdx_pcs_qeidentity.json",
                        "tdx/gotdx_tcb_info_issuer_chain.pem", "tdx/gotdx_pckcrl_platform.der",
                        "tdx/gotdx_pck_crl_issuer_chain.pem", "tdx/gotdx_rootcrl.der"})
    for (Item& i : parse_ok(f)) all.push_back(std::move(i));
  auto names = kinds(all);
  EXPECT_EQ(std::count(names.begin(), names.end(), "tdx-tcb-info"), 1);
  EXPECT_EQ(all[0].key, "50806f000000");
  EXPECT_EQ(all[1].key, "TD_QE");
  for (const Item& i : all) {
    if (i.kind == Kind::kTdxPckCrl) {
      EXPECT_EQ(i.key, "platform");
    }
    Status ok = verify_item(i, all, kPcsAt);
    EXPECT_TRUE(ok.ok()) << i.subject << ": " << ok.error().describe();
  }
  // A TCB info whose signature no longer covers its bytes.
  Item tampered = all[0];
  auto at = std::search(tampered.data.begin(), tampered.data.end(), std::begin("\"version\":3"),
                        std::end("\"version\":3") - 1);
  ASSERT_NE(at, tampered.data.end());
  at[10] = '4';
  EXPECT_EQ(verify_item(tampered, all, kPcsAt).error().code, "collateral.untrusted");
}

TEST(Collateral, WhatIsNotCollateralGetsANamedError) {
  struct Case {
    std::string bytes;
    std::string message;
  };
  const Case cases[] = {
      {"", "empty"},
      {"hello", "neither PEM, a DER certificate or CRL, nor PCS JSON"},
      {"{\"x\":1}", "neither a PCS TCB info or QE identity response"},
      {"{\"tcbInfo\":", "JSON that does not parse"},
      {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
       "a PEM block of type \"PRIVATE KEY\""},
      {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
       "a CERTIFICATE block that does not parse"},
  };
  for (const Case& c : cases) {
    auto r = parse_file(as_bytes(c.bytes), "f.pem");
    ASSERT_FALSE(r.ok()) << c.bytes;
    EXPECT_EQ(r.error().code, "collateral.format");
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
    EXPECT_TRUE(r.error().message.starts_with("f.pem: ")) << r.error().message;
  }
  Bytes big(kMaxFileSize + 1, 'a');
  EXPECT_EQ(parse_file(big, "big").error().code, "collateral.size");
}

TEST(Collateral, KindNamesRoundTrip) {
  for (Kind k : {Kind::kSnpVcek, Kind::kSnpCrl, Kind::kIntelCa, Kind::kTdxQeIdentity})
    EXPECT_EQ(parse_kind(kind_name(k)), k);
  EXPECT_EQ(parse_kind("vcek"), std::nullopt);
}

}  // namespace
}  // namespace confpod::collateral
