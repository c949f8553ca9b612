#include "attest/kbs/evidence.h"

#include <gtest/gtest.h>

#include "attest/crypto/crypto.h"
#include "attest/kbs/kbs_test_util.h"
#include "attest/tdx/roots.h"
#include "attest/tdx/verify.h"
#include "tests/support/fixtures.h"

namespace confpod::kbs {
namespace {

using nlohmann::json;

constexpr UnixSeconds kNow = 1'767'225'600;      // 2026-01-01: inside the Milan VCEK's validity
constexpr UnixSeconds kQuoteAt = 1'752'919'234;  // 2025-07-19T10:00:34Z: TDX collateral valid
constexpr std::size_t kReportDataOffset = 0x50;  // SNP report fields (AMD SEV-SNP ABI, table 22)
constexpr std::size_t kMeasurementOffset = 0x90;
constexpr std::size_t kHostDataOffset = 0xC0;

Bytes slice(const Bytes& b, std::size_t offset, std::size_t n) {
  return Bytes(b.begin() + static_cast<std::ptrdiff_t>(offset),
               b.begin() + static_cast<std::ptrdiff_t>(offset + n));
}

class SnpEvidence : public ::testing::Test {
 protected:
  void SetUp() override {
    report_ = confpod::testing::read_fixture("snp/virtee_report_milan.bin");
    vcek_ = confpod::testing::read_fixture("snp/virtee_vcek_milan.der");
    ASSERT_EQ(report_.size(), 1184u);
    ASSERT_FALSE(vcek_.empty());
  }
  json evidence(bool with_chain = true) const {
    json e = {{"attestation_report", to_base64(report_)}};
    if (with_chain) e["cert_chain"] = json::array({{{"cert_type", "VCEK"}, {"data", json(vcek_)}}});
    return e;
  }
  Bytes report_data() const { return slice(report_, kReportDataOffset, 64); }

  Bytes report_, vcek_;
};

TEST_F(SnpEvidence, AGenuineReportBoundToItsReportDataGivesItsFacts) {
  EvidenceVerifier verifier({});
  // Both forms of the report: raw bytes and the sev crate's object Trustee's attester sends.
  for (const json& report : {json(to_base64(report_)), testing::sev_report_json(report_)}) {
    json e = evidence();
    e["attestation_report"] = report;
    auto facts = verifier.verify("snp", e, report_data(), std::nullopt, kNow);
    ASSERT_TRUE(facts.ok()) << facts.error().describe();
    EXPECT_EQ(facts->tee, "snp");
    EXPECT_FALSE(facts->insecure);
    EXPECT_EQ(to_hex(facts->measurement),
              "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95"
              "b9c480cd81841f");
    EXPECT_EQ(facts->init_data_digest, slice(report_, kHostDataOffset, 32));
    EXPECT_EQ(facts->claims["tcb_status"], "not_evaluated");
    EXPECT_EQ(facts->claims["snp"]["product"], "milan");
    EXPECT_EQ(facts->claims["snp"]["vmpl"], 0);
  }
  // One byte of the report data differs from what the challenge demands: the binding fails.
  Bytes other = report_data();
  other[63] ^= 1;
  auto refused = verifier.verify("snp", evidence(), other, std::nullopt, kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "kbs.binding");
}

TEST_F(SnpEvidence, WithoutACertChainTheVekComesFromTheProviderAndRevocationIsAsked) {
  EvidencePolicy policy;
  int vek_calls = 0, revocation_calls = 0;
  policy.snp_vek = [&](const snp::Report& report) -> Result<Bytes> {
    ++vek_calls;
    EXPECT_EQ(to_hex(report.measurement).substr(0, 8), "7a1e5c26");
    return vcek_;
  };
  bool revoked = false;
  policy.snp_revocation = [&](const snp::VerifiedChain&, UnixSeconds now) -> Status {
    ++revocation_calls;
    EXPECT_EQ(now, kNow);
    if (revoked) return make_error("snp.crl.revoked", "VCEK is revoked");
    return ok_status();
  };
  EvidenceVerifier verifier(policy);
  auto facts = verifier.verify("snp", evidence(false), report_data(), std::nullopt, kNow);
  ASSERT_TRUE(facts.ok()) << facts.error().describe();
  EXPECT_EQ(vek_calls, 1);
  EXPECT_EQ(revocation_calls, 1);
  revoked = true;
  auto refused = verifier.verify("snp", evidence(), report_data(), std::nullopt, kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "snp.crl.revoked");
  EXPECT_EQ(vek_calls, 1) << "a VCEK in cert_chain needs no provider";
  // No chain and no provider: refused naming what is missing.
  auto no_source =
      EvidenceVerifier({}).verify("snp", evidence(false), report_data(), std::nullopt, kNow);
  ASSERT_FALSE(no_source.ok());
  EXPECT_EQ(no_source.error().code, "kbs.evidence.snp");
  EXPECT_NE(no_source.error().message.find("no VCEK/VLEK"), std::string::npos);
}

TEST_F(SnpEvidence, TheMinimumTcbIsEnforced) {
  EvidencePolicy policy;
  // The report's TCB is bl 3, tee 0, snp 8, ucode 115 (fixture README).
  policy.snp_min_tcb = snp::TcbVersion{3, 0, 8, 115, std::nullopt};
  auto met = EvidenceVerifier(policy).verify("snp", evidence(), report_data(), std::nullopt, kNow);
  ASSERT_TRUE(met.ok()) << met.error().describe();
  EXPECT_EQ(met->claims["tcb_status"], "meets_minimum");
  policy.snp_min_tcb = snp::TcbVersion{3, 0, 9, 115, std::nullopt};
  auto below =
      EvidenceVerifier(policy).verify("snp", evidence(), report_data(), std::nullopt, kNow);
  ASSERT_FALSE(below.ok());
  EXPECT_NE(below.error().describe().find("snp"), std::string::npos);
}

TEST_F(SnpEvidence, HostileShapesAreRefusedBeforeAnySignatureWork) {
  EvidenceVerifier verifier({});
  auto code_of = [&](const json& e) {
    auto r = verifier.verify("snp", e, report_data(), std::nullopt, kNow);
    return r.ok() ? std::string("ok") : r.error().code;
  };
  EXPECT_EQ(code_of(json::array()), "kbs.evidence");
  EXPECT_EQ(code_of(json::object()), "kbs.evidence.snp");
  json many = evidence();
  for (int i = 0; i < 9; ++i) many["cert_chain"].push_back({{"cert_type", "ASK"}, {"data", ""}});
  EXPECT_EQ(code_of(many), "kbs.evidence.snp");
  json bad_cert = evidence();
  bad_cert["cert_chain"][0]["data"] = to_base64(Bytes(100, 0x30));
  EXPECT_NE(code_of(bad_cert), "ok");
  json huge_cert = evidence();
  huge_cert["cert_chain"][0]["data"] = to_base64(Bytes(kMaxCertSize + 1, 0x30));
  EXPECT_EQ(code_of(huge_cert), "kbs.evidence.snp");
  json truncated = evidence();
  truncated["attestation_report"] = to_base64(slice(report_, 0, 100));
  EXPECT_EQ(code_of(truncated), "snp.report.size");
  // Entries of unknown type are skipped (upstream's OTHER(uuid) entries), not refused.
  json other = evidence();
  other["cert_chain"].push_back({{"cert_type", {{"OTHER", "1234"}}}, {"data", ""}});
  EXPECT_EQ(code_of(other), "ok");
}

TEST(TdxEvidence, AGenuineQuoteGivesItsFactsWithItsCollateral) {
  auto verified = testing::verified_tdx_collateral_v4(kQuoteAt);
  ASSERT_TRUE(verified.ok()) << verified.error().describe();
  auto shared = *verified;
  EvidencePolicy policy;
  policy.tdx_collateral =
      [&](const tdx::Quote&,
          UnixSeconds) -> Result<std::shared_ptr<const tdx::VerifiedCollateral>> { return shared; };
  EvidenceVerifier verifier(policy);
  Bytes quote = confpod::testing::read_fixture("tdx/dcapqvl_quote_v4.dat");
  auto parsed = tdx::parse_quote(quote);
  ASSERT_TRUE(parsed.ok());
  Bytes report_data(parsed->body.report_data.begin(), parsed->body.report_data.end());
  json e = {{"quote", to_base64(quote)}, {"cc_eventlog", nullptr}};
  auto facts = verifier.verify("tdx", e, report_data, std::nullopt, kQuoteAt);
  ASSERT_TRUE(facts.ok()) << facts.error().describe();
  EXPECT_EQ(facts->tee, "tdx");
  EXPECT_EQ(to_hex(facts->measurement),
            "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27"
            "428b2538873118b7");
  EXPECT_EQ(facts->init_data_digest, Bytes(48, 0));  // MRCONFIGID is zero in this quote
  EXPECT_EQ(facts->claims["tcb_status"], "UpToDate");
  EXPECT_TRUE(facts->claims["tdx"]["advisory_ids"].empty());
  // The same quote again verifies from the signature cache, with the same facts.
  auto again = verifier.verify("tdx", e, report_data, std::nullopt, kQuoteAt);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->measurement, facts->measurement);
  // UpToDate not accepted by this policy: the appraisal refuses it.
  policy.tdx_accepted_tcb_statuses = {"SWHardeningNeeded"};
  auto refused = EvidenceVerifier(policy).verify("tdx", e, report_data, std::nullopt, kQuoteAt);
  ASSERT_FALSE(refused.ok());
  // A malformed event log is refused even though RTMRs are not yet appraised.
  e["cc_eventlog"] = "!!";
  auto bad_log = verifier.verify("tdx", e, report_data, std::nullopt, kQuoteAt);
  ASSERT_FALSE(bad_log.ok());
  EXPECT_EQ(bad_log.error().code, "kbs.evidence.tdx");
}

TEST(SampleEvidence, OnlyWhenInsecureIsAllowedAndBoundToTheDigest) {
  Bytes digest = crypto::sha384(as_bytes(std::string("runtime data")));
  json e = {{"svn", "1"}, {"report_data", to_base64(digest)}};
  const std::string init_data = "version = \"0.1.0\"\n";
  auto refused = EvidenceVerifier({}).verify("sample", e, digest, init_data, kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "kbs.tee.unsupported");
  EvidencePolicy insecure;
  insecure.allow_insecure = true;
  EvidenceVerifier verifier(insecure);
  auto facts =
      verifier.verify("sample", e, expected_report_data("sample", digest), init_data, kNow);
  ASSERT_TRUE(facts.ok()) << facts.error().describe();
  EXPECT_TRUE(facts->insecure);
  EXPECT_EQ(facts->init_data_digest, crypto::sha256(as_bytes(init_data)));
  EXPECT_EQ(facts->claims["sample"]["svn"], "1");
  auto unbound =
      verifier.verify("sample", e, crypto::sha384(as_bytes(std::string("x"))), init_data, kNow);
  ASSERT_FALSE(unbound.ok());
  EXPECT_EQ(unbound.error().code, "kbs.binding");
  auto unknown = verifier.verify("sev", e, digest, init_data, kNow);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "kbs.tee.unsupported");
}

TEST(ExpectedReportData, HardwareTeesPadTo64BytesAndSampleDoesNot) {
  Bytes digest(48, 0xab);
  for (const char* tee : {"snp", "tdx"}) {
    Bytes rd = expected_report_data(tee, digest);
    ASSERT_EQ(rd.size(), 64u) << tee;
    EXPECT_EQ(slice(rd, 0, 48), digest);
    EXPECT_EQ(slice(rd, 48, 16), Bytes(16, 0));
  }
  EXPECT_EQ(expected_report_data("sample", digest), digest);
}

}  // namespace
}  // namespace confpod::kbs
