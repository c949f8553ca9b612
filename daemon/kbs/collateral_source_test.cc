// The KBS's collateral source over a real SQLite store filled from the real fixtures: it finds
// the VCEK of a report and the DCAP collateral of a quote, and nothing forged in the store
// makes evidence verify.
#include "daemon/kbs/collateral_source.h"

#include <gtest/gtest.h>

#include "attest/snp/verify.h"
#include "attest/tdx/verify.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod::kbs_http {
namespace {

constexpr UnixSeconds kSnpAt = 1'780'272'000;  // 2026-06-01, inside the Genoa VCEK's validity
constexpr UnixSeconds kV4At = 1752919234;      // inside the dcap-qvl v4 collateral's window

class CollateralSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::SqliteCollateralStore::open(dir_.path() + "/confpod.db");
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_ = std::move(*s);
    source_ = std::make_unique<CollateralSource>(*store_);
  }
  // Stores the file's items as they are: the store verifies nothing (import does).
  std::vector<collateral::Item> put(const std::string& fixture, Bytes bytes = {}) {
    if (bytes.empty()) bytes = testing::read_fixture(fixture);
    auto items = collateral::parse_file(bytes, fixture);
    EXPECT_TRUE(items.ok()) << items.error().describe();
    if (!items.ok()) return {};
    EXPECT_TRUE(store_->add(*items, fixture, 1).ok());
    return *items;
  }
  snp::Report genoa_report() {
    auto r = snp::parse_report(testing::read_fixture("snp/ms_genoa_report_v3.bin"));
    EXPECT_TRUE(r.ok());
    return r.ok() ? std::move(r).value() : snp::Report{};
  }
  // What the KBS does with a VCEK from a source: chain to the pinned ARK, then the report.
  static Status verify(const Bytes& vek_der, const snp::Report& report) {
    auto vek = crypto::parse_certificate(vek_der);
    if (!vek.ok()) return vek.error();
    CONFPOD_ASSIGN_OR_RETURN(auto chain,
                             snp::verify_chain(vek->get(), nullptr, nullptr, std::nullopt, kSnpAt));
    return snp::parse_and_verify(report.raw, chain).ok() ? ok_status() : make_error("x", "report");
  }

  testing::TempDir dir_;
  std::unique_ptr<store::SqliteCollateralStore> store_;
  std::unique_ptr<CollateralSource> source_;
};

TEST_F(CollateralSourceTest, AReportFindsItsVcekByChipAndTcb) {
  const snp::Report report = genoa_report();
  auto none = source_->snp_vek(report);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "kbs.collateral.missing");
  // The message says where AMD serves exactly this certificate.
  EXPECT_NE(
      none.error().message.find("https://kdsintf.amd.com/vcek/v1/Genoa/" + to_hex(report.chip_id) +
                                "?blSPL=10&teeSPL=0&snpSPL=23&ucodeSPL=84"),
      std::string::npos)
      << none.error().message;
  put("snp/trustee_genoa_vcek.der");  // another Genoa chip: not this report's
  EXPECT_FALSE(source_->snp_vek(report).ok());
  put("snp/ms_genoa_vcek.pem");
  auto vek = source_->snp_vek(report);
  ASSERT_TRUE(vek.ok()) << vek.error().describe();
  Status verified = verify(*vek, report);
  EXPECT_TRUE(verified.ok()) << verified.error().describe();
}

TEST_F(CollateralSourceTest, AForgedVcekInTheStoreDoesNotMakeTheReportPass) {
  const snp::Report report = genoa_report();
  Bytes der;
  {
    auto items = collateral::parse_file(testing::read_fixture("snp/ms_genoa_vcek.pem"), "v");
    ASSERT_TRUE(items.ok());
    der = (*items)[0].data;
  }
  der[der.size() - 7] ^= 0x20;  // in the signature: same subject, TCB and chip id
  put("forged.der", der);
  auto vek = source_->snp_vek(report);
  ASSERT_TRUE(vek.ok()) << vek.error().describe();  // found by its key...
  Status verified = verify(*vek, report);
  ASSERT_FALSE(verified.ok());  // ...and refused by the chain
  EXPECT_EQ(verified.error().code, "snp.chain.vek_signature");
}

TEST_F(CollateralSourceTest, RequireCrlRefusesAChainWithoutAnAmdCrl) {
  auto vek = crypto::parse_certificate(testing::read_fixture("snp/ms_genoa_vcek.pem"));
  ASSERT_TRUE(vek.ok());
  auto chain = snp::verify_chain(vek->get(), nullptr, nullptr, std::nullopt, kSnpAt);
  ASSERT_TRUE(chain.ok()) << chain.error().describe();
  EXPECT_TRUE(source_->snp_revocation(*chain, kSnpAt, false).ok());
  Status required = source_->snp_revocation(*chain, kSnpAt, true);
  ASSERT_FALSE(required.ok());
  EXPECT_EQ(required.error().code, "kbs.collateral.missing");
  EXPECT_NE(required.error().message.find("https://kdsintf.amd.com/vcek/v1/Genoa/crl"),
            std::string::npos)
      << required.error().message;
  // A "CRL" in the store that AMD's ARK did not sign (Intel's root CRL under AMD's kind and
  // key) is refused, not taken as "nothing revoked".
  auto intel = collateral::parse_file(testing::read_fixture("tdx/gotdx_rootcrl.der"), "crl");
  ASSERT_TRUE(intel.ok());
  (*intel)[0].kind = collateral::Kind::kSnpCrl;
  (*intel)[0].key = "genoa";
  ASSERT_TRUE(store_->add(*intel, "crl", 1).ok());
  EXPECT_EQ(source_->snp_revocation(*chain, kSnpAt, false).error().code, "snp.crl.signature");
}

TEST_F(CollateralSourceTest, AQuoteGetsVerifiedCollateralOncePerStoreContents) {
  auto quote = tdx::parse_quote(testing::read_fixture("tdx/dcapqvl_quote_v4.dat"));
  ASSERT_TRUE(quote.ok());
  auto missing = source_->tdx_collateral(*quote, kV4At);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "kbs.collateral.missing");
  EXPECT_NE(missing.error().message.find("/tdx/certification/v4/tcb?fmspc="), std::string::npos)
      << missing.error().message;

  put("tdx/dcapqvl_collateral_v4.json");
  auto collateral = source_->tdx_collateral(*quote, kV4At);
  ASSERT_TRUE(collateral.ok()) << collateral.error().describe();
  auto verdict = tdx::verify_quote(*quote, **collateral, kV4At);
  ASSERT_TRUE(verdict.ok()) << verdict.error().describe();
  EXPECT_FALSE(verdict->tcb_status.empty());
  EXPECT_EQ(source_->tdx_verifications(), 1u);
  ASSERT_TRUE(source_->tdx_collateral(*quote, kV4At).ok());
  EXPECT_EQ(source_->tdx_verifications(), 1u);  // the same store: verified once
  put("snp/ms_genoa_vcek.pem");                 // the store changed
  ASSERT_TRUE(source_->tdx_collateral(*quote, kV4At).ok());
  EXPECT_EQ(source_->tdx_verifications(), 2u);
}

TEST_F(CollateralSourceTest, ForgedTdxCollateralInTheStoreIsRefused) {
  auto quote = tdx::parse_quote(testing::read_fixture("tdx/dcapqvl_quote_v4.dat"));
  ASSERT_TRUE(quote.ok());
  std::string text = testing::read_fixture_text("tdx/dcapqvl_collateral_v4.json");
  // TCB info claims a later evaluation data number than Intel signed.
  const std::string field = "tcbEvaluationDataNumber\\\":";
  const std::size_t at = text.find(field);
  ASSERT_NE(at, std::string::npos);
  text[at + field.size()] = text[at + field.size()] == '9' ? '8' : '9';
  put("forged.json", Bytes(text.begin(), text.end()));
  auto collateral = source_->tdx_collateral(*quote, kV4At);
  ASSERT_FALSE(collateral.ok());
  EXPECT_EQ(collateral.error().code, "tdx.collateral.signature") << collateral.error().describe();
}

TEST_F(CollateralSourceTest, ExpiryWarningsCoverTheNext30DaysAndThePast) {
  put("tdx/dcapqvl_collateral_v4.json");
  auto entries = store_->list();
  ASSERT_TRUE(entries.ok());
  UnixSeconds soonest = entries->front().item.not_after;
  for (const auto& e : *entries) soonest = std::min(soonest, e.item.not_after);
  // 40 days before the first expiry: nothing; 20 days before: that one; after it: it too.
  EXPECT_TRUE(expiring_within(*entries, soonest - 40 * 86400).empty());
  auto soon = expiring_within(*entries, soonest - 20 * 86400);
  ASSERT_FALSE(soon.empty());
  EXPECT_EQ(soon.front().item.not_after, soonest);
  EXPECT_LT(soon.size(), entries->size());  // the root CA certificate lasts for decades
  auto late = expiring_within(*entries, soonest + 1);
  EXPECT_GE(late.size(), soon.size());
}

}  // namespace
}  // namespace confpod::kbs_http
