#include "attest/tdx/verify.h"

#include <gtest/gtest.h>

#include "attest/tdx/roots.h"
#include "attest/tdx/tdx_test_util.h"

namespace confpod::tdx {
namespace {

using testing::at;
using testing::fixture;
using testing::fixture_text;
using testing::hex;
using testing::kPcsAt;
using testing::kV4At;
using testing::kV5At;

VerifiedCollateral verified(const std::string& json_name, UnixSeconds when) {
  auto c = parse_collateral_json(fixture_text(json_name));
  EXPECT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  auto v = verify_collateral(*c, root.get(), when);
  EXPECT_TRUE(v.ok()) << v.error().describe();
  return std::move(v).value();
}

VerifiedCollateral verified_pcs() {
  auto c = testing::pcs_collateral();
  EXPECT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  auto v = verify_collateral(*c, root.get(), kPcsAt);
  EXPECT_TRUE(v.ok()) << v.error().describe();
  return std::move(v).value();
}

Quote parsed(const Bytes& data) {
  auto q = parse_quote(data);
  EXPECT_TRUE(q.ok()) << q.error().describe();
  return std::move(q).value();
}

std::string code_of(const Result<Verdict>& r) { return r.ok() ? "ok" : r.error().code; }
std::string code_of(const Result<VerifiedSignatures>& r) { return r.ok() ? "ok" : r.error().code; }

// README case 1.
TEST(TdxVerify, DcapQvlV4IsUpToDate) {
  const auto collateral = verified("dcapqvl_collateral_v4.json", kV4At);
  const Quote quote = parsed(fixture("dcapqvl_quote_v4.dat"));
  auto v = verify_quote(quote, collateral, kV4At);
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->tcb_status, "UpToDate");
  EXPECT_TRUE(v->advisory_ids.empty());
  EXPECT_EQ(hex(v->fmspc), "b0c06f000000");
  EXPECT_EQ(hex(v->pce_id), "0000");
  EXPECT_EQ(v->pce_svn, 11);
  EXPECT_EQ(hex(v->cpu_svn), "03030202040100050000000000000000");
  EXPECT_EQ(v->qe_isvsvn, 6);
  EXPECT_EQ(v->module_tcb_status, "UpToDate");  // TDX_01 identity
  EXPECT_EQ(v->collateral_expiry, at("2025-07-19T10:00:35Z"));
  EXPECT_FALSE(v->tcb_date.empty());
}

TEST(TdxVerify, DcapQvlV4ExpiredOrEarlyCollateralFailsClosed) {
  const auto collateral = verified("dcapqvl_collateral_v4.json", kV4At);
  const Quote quote = parsed(fixture("dcapqvl_quote_v4.dat"));
  auto v = verify_quote(quote, collateral, at("2025-07-19T10:00:36Z"));
  EXPECT_EQ(code_of(v), "tdx.collateral.expired");
  EXPECT_NE(v.error().message.find("pck_crl"), std::string::npos);
  EXPECT_EQ(code_of(verify_quote(quote, collateral, at("2025-06-19T10:32:26Z"))),
            "tdx.collateral.not_yet_valid");
  EXPECT_EQ(code_of(verify_quote(quote, collateral, at("2025-06-19T10:32:27Z"))), "ok");
}

TEST(TdxVerify, PckCertificateValuesOfV4) {
  auto root = intel_sgx_root_ca();
  auto s = verify_quote_signatures(parsed(fixture("dcapqvl_quote_v4.dat")), root.get(), kV4At);
  ASSERT_TRUE(s.ok()) << s.error().describe();
  EXPECT_EQ(hex(s->pck.fmspc), "b0c06f000000");
  EXPECT_EQ(s->pck.pce_svn, 11);
  EXPECT_EQ(hex(s->pck.tcb_components), "03030202040100050000000000000000");
  EXPECT_EQ(hex(s->pck.cpu_svn), "03030202040100050000000000000000");
  EXPECT_EQ(crypto::not_before(s->pck_leaf.get()), at("2025-02-06T23:25:51Z"));
  EXPECT_EQ(crypto::not_after(s->pck_leaf.get()), at("2032-02-06T23:25:51Z"));
  EXPECT_NE(crypto::subject_name(s->pck_intermediate.get()).find("PCK Platform CA"),
            std::string::npos);
}

// README case 2.
TEST(TdxVerify, GoTdxV5IsUpToDate) {
  const auto collateral = verified("dcapqvl_collateral_v5.json", kV5At);
  auto v = verify_quote(parsed(fixture("gotdx_quote_v5.dat")), collateral, kV5At);
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->tcb_status, "UpToDate");
  EXPECT_EQ(v->platform_tcb_status, "UpToDate");
  EXPECT_EQ(v->module_tcb_status, "UpToDate");
  EXPECT_EQ(v->qe_tcb_status, "UpToDate");
  EXPECT_EQ(v->tcb_date, "2024-11-13T00:00:00Z");
  EXPECT_TRUE(v->advisory_ids.empty());
  EXPECT_EQ(hex(v->fmspc), "90c06f000000");
  EXPECT_EQ(v->pce_svn, 13);
  EXPECT_EQ(hex(v->cpu_svn), "04040202040100050000000000000000");
  EXPECT_EQ(v->qe_isvsvn, 7);
}

// README case 3.
TEST(TdxVerify, OutdatedV5PlatformIsNotSupported) {
  const auto collateral = verified("dcapqvl_collateral_v5.json", kV5At);
  const Quote quote = parsed(fixture("dcapqvl_quote_v5_outdated.dat"));
  auto root = intel_sgx_root_ca();
  auto s = verify_quote_signatures(quote, root.get(), kV5At);  // every signature is fine
  ASSERT_TRUE(s.ok()) << s.error().describe();
  EXPECT_EQ(hex(s->pck.cpu_svn), "03030202040100030000000000000000");
  auto v = verify_quote(quote, collateral, kV5At);
  EXPECT_EQ(code_of(v), "tdx.tcb.not_supported");
}

// README case 4.
TEST(TdxVerify, SprE4WithPcsCollateralIsNotSupported) {
  const auto collateral = verified_pcs();
  const Quote quote = parsed(fixture("gotdx_quote_v4_spr_e4.dat"));
  auto root = intel_sgx_root_ca();
  auto s = verify_quote_signatures(quote, root.get(), kPcsAt);
  ASSERT_TRUE(s.ok()) << s.error().describe();
  EXPECT_EQ(hex(s->pck.fmspc), "50806f000000");
  EXPECT_EQ(s->pck.pce_svn, 11);
  EXPECT_EQ(hex(s->pck.ppid), "089ddfdb9c0359c82a3bc7719239574e");
  EXPECT_EQ(crypto::not_after(s->pck_leaf.get()), at("2029-09-20T13:20:31Z"));
  EXPECT_EQ(code_of(verify_quote(quote, collateral, kPcsAt)), "tdx.tcb.not_supported");
  // At 2053 the PCK certificate has expired (as well as the collateral).
  EXPECT_EQ(code_of(verify_quote_signatures(quote, root.get(), at("2053-07-01T01:00:00Z"))),
            "tdx.pck.validity");
  EXPECT_EQ(code_of(verify_quote(quote, collateral, at("2053-07-01T01:00:00Z"))),
            "tdx.collateral.expired");
}

// go-tdx-guest's byte-flip negatives on the SPR E4 quote, at the raw offsets.
TEST(TdxVerify, SprE4ByteFlipNegatives) {
  const Bytes data = fixture("gotdx_quote_v4_spr_e4.dat");
  auto root = intel_sgx_root_ca();
  auto flipped = [&](std::size_t offset) {
    Bytes b = data;
    b[offset] ^= 0x01;
    auto q = parse_quote(b);
    if (!q.ok()) return q.error().code;
    return code_of(verify_quote_signatures(*q, root.get(), kPcsAt));
  };
  EXPECT_EQ(flipped(0x1E), "tdx.quote.signature");  // header user_data
  EXPECT_EQ(flipped(0x3C), "tdx.quote.signature");  // body tee_tcb_svn
  EXPECT_EQ(flipped(0xB77), "tdx.pck.chain");       // PCK leaf signature
  EXPECT_EQ(flipped(0xF5F), "tdx.pck.chain");       // intermediate signature
  EXPECT_EQ(flipped(0x1329), "tdx.pck.chain");      // the quote's root: not the pinned one
  EXPECT_EQ(flipped(0x1343), "tdx.pck.chain");      // PEM END line broken
}

// README case 5.
TEST(TdxVerify, DebugTdQuoteIsUpToDate) {
  const auto collateral = verified_pcs();
  auto v = verify_quote(parsed(fixture("trustee_quote_v4_debug.dat")), collateral, kPcsAt);
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->tcb_status, "UpToDate");
  EXPECT_EQ(v->tcb_date, "2023-02-15T00:00:00Z");
  EXPECT_EQ(hex(v->cpu_svn), "05050d02030100030000000000000000");
  EXPECT_EQ(v->qe_isvsvn, 4);
  EXPECT_TRUE(v->module_tcb_status.empty());  // module major version 0
}

// README case 6: no TCB collateral, signatures only.
TEST(TdxVerify, GcpQuoteSignaturesVerify) {
  const Quote quote = parsed(fixture("gcp_cos113_quote_v4.dat"));
  auto root = intel_sgx_root_ca();
  auto s = verify_quote_signatures(quote, root.get(), at("2025-01-01T00:00:00Z"));
  ASSERT_TRUE(s.ok()) << s.error().describe();
  EXPECT_EQ(hex(s->pck.fmspc), "00806f050000");
  EXPECT_EQ(s->pck.pce_svn, 11);
  EXPECT_EQ(hex(s->pck.cpu_svn), "07070202030100030000000000000000");
  EXPECT_EQ(code_of(verify_quote_signatures(quote, root.get(), at("2024-07-02T12:07:36Z"))),
            "tdx.pck.validity");
  EXPECT_EQ(code_of(verify_quote_signatures(quote, root.get(), at("2031-07-02T12:07:37Z"))), "ok");
}

// Tampering, per field class, on the v4 quote with full collateral.
class TdxTamper : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = fixture("dcapqvl_quote_v4.dat");
    collateral_ = verified("dcapqvl_collateral_v4.json", kV4At);
  }
  std::string verify_with(std::size_t offset, std::uint8_t mask = 0x01) {
    Bytes b = data_;
    b[offset] ^= mask;
    auto q = parse_quote(b);
    if (!q.ok()) return q.error().code;
    return code_of(verify_quote(*q, collateral_, kV4At));
  }
  Bytes data_;
  VerifiedCollateral collateral_;
};

constexpr std::size_t kBody = 48;
constexpr std::size_t kSig = 636;
constexpr std::size_t kCert = kSig + 134;

TEST_F(TdxTamper, Untouched) { EXPECT_EQ(verify_with(kSig + 4000, 0), "ok"); }

TEST_F(TdxTamper, MeasurementsAndReportDataBreakTheQuoteSignature) {
  EXPECT_EQ(verify_with(kBody + 136), "tdx.quote.signature");       // mr_td
  EXPECT_EQ(verify_with(kBody + 184 + 47), "tdx.quote.signature");  // mr_config_id
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_EQ(verify_with(kBody + 328 + 48 * i + 7), "tdx.quote.signature") << "rtmr" << i;
  EXPECT_EQ(verify_with(kBody + 520), "tdx.quote.signature");      // report_data
  EXPECT_EQ(verify_with(kBody + 120), "tdx.quote.signature");      // td_attributes (DEBUG)
  EXPECT_EQ(verify_with(kBody + 0, 0x80), "tdx.quote.signature");  // tee_tcb_svn
  EXPECT_EQ(verify_with(12), "tdx.quote.signature");               // qe_vendor_id
}

TEST_F(TdxTamper, SignatureKeyAndQeReport) {
  EXPECT_EQ(verify_with(kSig + 5), "tdx.quote.signature");                    // signature r
  EXPECT_EQ(verify_with(kSig + 64 + 3), "tdx.qe_report.binding");             // attestation key
  EXPECT_EQ(verify_with(kCert + 10), "tdx.qe_report.signature");              // QE report cpusvn
  EXPECT_EQ(verify_with(kCert + 320), "tdx.qe_report.signature");             // QE report data
  EXPECT_EQ(verify_with(kCert + 384 + 7), "tdx.qe_report.signature");         // its signature
  EXPECT_EQ(verify_with(kCert + 384 + 64 + 2 + 5), "tdx.qe_report.binding");  // QE auth data
}

TEST_F(TdxTamper, PckCertificateFromAnotherQuote) {
  // The whole type-6 certification data (QE report, signature, auth data, PCK chain) of
  // another platform's quote spliced in: every piece is genuine, the binding is not.
  const Bytes other = fixture("trustee_quote_v4_debug.dat");
  Bytes spliced(data_.begin(), data_.begin() + kSig + 128);
  spliced.insert(spliced.end(), other.begin() + kSig + 128, other.end());
  auto q = parse_quote(spliced);
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(code_of(verify_quote(*q, collateral_, kV4At)), "tdx.qe_report.binding");

  // Only the PEM chain replaced: the QE report signature no longer verifies.
  Quote mixed = parsed(data_);
  mixed.pck_cert_chain_pem = parsed(fixture("gotdx_quote_v5.dat")).pck_cert_chain_pem;
  auto root = intel_sgx_root_ca();
  EXPECT_EQ(code_of(verify_quote_signatures(mixed, root.get(), kV5At)), "tdx.qe_report.signature");
}

TEST_F(TdxTamper, OtherPlatformsCollateralIsAnFmspcMismatch) {
  const auto v5 = verified("dcapqvl_collateral_v5.json", kV5At);
  // The v4 quote's PCK is valid in 2026 too; only the FMSPC differs.
  EXPECT_EQ(code_of(verify_quote(parsed(data_), v5, kV5At)), "tdx.fmspc");
}

TEST_F(TdxTamper, WrongRootRejectsTheChain) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  auto chain = crypto::parse_pem_certificates(c->tcb_info_issuer_chain);
  ASSERT_TRUE(chain.ok());
  X509* not_the_root = (*chain)[0].get();
  EXPECT_EQ(code_of(verify_quote_signatures(parsed(data_), not_the_root, kV4At)), "tdx.pck.chain");
}

TEST_F(TdxTamper, PckChainWithoutItsRootStillVerifies) {
  Quote q = parsed(data_);
  const auto second_end = q.pck_cert_chain_pem.find(
      "-----END CERTIFICATE-----", q.pck_cert_chain_pem.find("-----END CERTIFICATE-----") + 1);
  q.pck_cert_chain_pem.resize(second_end + 25);
  EXPECT_EQ(code_of(verify_quote(q, collateral_, kV4At)), "ok");
  // Leaf only: no path to the root.
  q.pck_cert_chain_pem.resize(q.pck_cert_chain_pem.find("-----END CERTIFICATE-----") + 25);
  EXPECT_EQ(code_of(verify_quote(q, collateral_, kV4At)), "tdx.pck.chain");
}

// TCB evaluation on hand-made TCB info, to pin the QVL rules.
class TdxTcbEval : public ::testing::Test {
 protected:
  void SetUp() override {
    info_.id = "TDX";
    info_.version = 3;
    TcbLevel high;
    high.sgx_components.fill(5);
    high.pce_svn = 13;
    high.tdx_components.fill(0);
    high.tdx_components[0] = 5;
    high.tdx_components[2] = 3;
    high.tcb_date = "2024-11-13T00:00:00Z";
    high.tcb_status = "UpToDate";
    TcbLevel low = high;
    low.sgx_components.fill(2);
    low.pce_svn = 5;
    low.tdx_components[0] = 2;
    low.tdx_components[2] = 1;
    low.tcb_date = "2023-01-01T00:00:00Z";
    low.tcb_status = "OutOfDate";
    low.advisory_ids = {"INTEL-SA-00001"};
    info_.tcb_levels = {high, low};
    TdxModuleIdentity m1;
    m1.id = "TDX_01";
    m1.attributes_mask.fill(0xFF);
    m1.tcb_levels = {{6, "2024-11-13T00:00:00Z", "UpToDate", {}},
                     {4, "2024-03-13T00:00:00Z", "OutOfDate", {"INTEL-SA-01036"}}};
    info_.tdx_module_identities = {m1};
    info_.tdx_module.attributes_mask.fill(0xFF);
    qe_.tcb_levels = {{8, "2024-11-13T00:00:00Z", "UpToDate", {}},
                      {4, "2023-01-01T00:00:00Z", "OutOfDate", {"INTEL-SA-00002"}}};
    pck_.tcb_components.fill(5);
    pck_.pce_svn = 13;
    td_.tee_tcb_svn = {6, 1, 3};
  }
  Result<Verdict> eval(std::uint16_t qe_isvsvn = 8) {
    return evaluate_tcb(info_, pck_, td_, qe_, qe_isvsvn);
  }
  TcbInfo info_;
  QeIdentity qe_;
  PckExtensions pck_;
  TdReport td_;
};

TEST_F(TdxTcbEval, AllCurrentIsUpToDate) {
  auto v = eval();
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->tcb_status, "UpToDate");
  EXPECT_EQ(v->tcb_date, "2024-11-13T00:00:00Z");
}

TEST_F(TdxTcbEval, ModuleMajorSkipsTheFirstTwoTdxBytes) {
  td_.tee_tcb_svn[0] = 4;  // below the level's 5, but judged by TDX_01 (isvsvn 4: OutOfDate)
  auto v = eval();
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->platform_tcb_status, "UpToDate");
  EXPECT_EQ(v->module_tcb_status, "OutOfDate");
  EXPECT_EQ(v->tcb_status, "OutOfDate");
  EXPECT_EQ(v->advisory_ids, std::vector<std::string>{"INTEL-SA-01036"});
  td_.tee_tcb_svn[0] = 3;  // below every TDX_01 level
  EXPECT_EQ(code_of(eval()), "tdx.tcb.not_supported");
}

TEST_F(TdxTcbEval, ModuleMajorZeroComparesAllSixteenBytes) {
  td_.tee_tcb_svn = {4, 0, 3};  // byte 0 below the high level's 5: falls to the low level
  auto v = eval();
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->tcb_status, "OutOfDate");
  EXPECT_TRUE(v->module_tcb_status.empty());
  EXPECT_EQ(v->advisory_ids, std::vector<std::string>{"INTEL-SA-00001"});
  td_.tee_tcb_svn = {1, 0, 3};
  EXPECT_EQ(code_of(eval()), "tdx.tcb.not_supported");
}

TEST_F(TdxTcbEval, UnknownModuleVersionOrSignerIsAModuleMismatch) {
  td_.tee_tcb_svn[1] = 2;  // TDX_02 absent
  EXPECT_EQ(code_of(eval()), "tdx.tdx_module");
  td_.tee_tcb_svn[1] = 1;
  td_.mr_signer_seam[0] = 1;
  EXPECT_EQ(code_of(eval()), "tdx.tdx_module");
  td_.mr_signer_seam[0] = 0;
  td_.seam_attributes[7] = 0x80;
  EXPECT_EQ(code_of(eval()), "tdx.tdx_module");
}

TEST_F(TdxTcbEval, PlatformBelowEveryLevel) {
  pck_.tcb_components[7] = 1;
  EXPECT_EQ(code_of(eval()), "tdx.tcb.not_supported");
  pck_.tcb_components[7] = 5;
  pck_.pce_svn = 4;
  EXPECT_EQ(code_of(eval()), "tdx.tcb.not_supported");
  pck_.pce_svn = 12;  // below the high level's 13: the low one matches
  EXPECT_EQ(eval()->tcb_status, "OutOfDate");
}

TEST_F(TdxTcbEval, QeStatusConvergesAsQvlDoes) {
  auto v = eval(5);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->qe_tcb_status, "OutOfDate");
  EXPECT_EQ(v->tcb_status, "OutOfDate");
  info_.tcb_levels[0].tcb_status = "ConfigurationNeeded";
  EXPECT_EQ(eval(5)->tcb_status, "OutOfDateConfigurationNeeded");
  info_.tcb_levels[0].tcb_status = "SWHardeningNeeded";
  EXPECT_EQ(eval(5)->tcb_status, "OutOfDate");
  EXPECT_EQ(eval(8)->tcb_status, "SWHardeningNeeded");
  EXPECT_EQ(code_of(eval(3)), "tdx.tcb.not_supported");
}

TEST_F(TdxTcbEval, RevokedIsAnError) {
  info_.tcb_levels[0].tcb_status = "Revoked";
  EXPECT_EQ(code_of(eval()), "tdx.tcb.revoked");
  info_.tcb_levels[0].tcb_status = "UpToDate";
  qe_.tcb_levels[0].tcb_status = "Revoked";
  EXPECT_EQ(code_of(eval()), "tdx.tcb.revoked");
}

TEST(TdxQeIdentity, MasksApply) {
  QeIdentity id;
  id.mrsigner.fill(0xAA);
  id.isvprodid = 2;
  id.miscselect_mask = 0x0000FFFF;
  id.attributes[0] = 0x11;
  id.attributes_mask[0] = 0xFB;
  QeReport qe;
  qe.mr_signer.fill(0xAA);
  qe.isv_prod_id = 2;
  qe.miscselect = 0xABCD0000;  // outside the mask
  qe.attributes[0] = 0x15;     // bit 2 outside the mask
  qe.attributes[9] = 0xFF;     // mask byte 0
  EXPECT_TRUE(match_qe_identity(qe, id).ok());
  qe.attributes[0] = 0x13;
  EXPECT_EQ(match_qe_identity(qe, id).error().code, "tdx.qe_identity");
  qe.attributes[0] = 0x11;
  qe.miscselect = 1;
  EXPECT_EQ(match_qe_identity(qe, id).error().code, "tdx.qe_identity");
  qe.miscselect = 0;
  qe.isv_prod_id = 1;
  EXPECT_EQ(match_qe_identity(qe, id).error().code, "tdx.qe_identity");
  qe.isv_prod_id = 2;
  qe.mr_signer[31] = 0;
  EXPECT_EQ(match_qe_identity(qe, id).error().code, "tdx.qe_identity");
}

}  // namespace
}  // namespace confpod::tdx
