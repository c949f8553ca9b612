#include "attest/tdx/appraisal.h"

#include <gtest/gtest.h>

#include "attest/tdx/roots.h"
#include "attest/tdx/tdx_test_util.h"

namespace confpod::tdx {
namespace {

using testing::fixture;
using testing::fixture_text;
using testing::kPcsAt;
using testing::kV4At;

struct Verified {
  Quote quote;
  Verdict verdict;
};

Verified verify_v4() {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  EXPECT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  auto vc = verify_collateral(*c, root.get(), kV4At);
  EXPECT_TRUE(vc.ok());
  auto q = parse_quote(fixture("dcapqvl_quote_v4.dat"));
  EXPECT_TRUE(q.ok());
  auto v = verify_quote(*q, *vc, kV4At);
  EXPECT_TRUE(v.ok()) << v.error().describe();
  return {std::move(q).value(), std::move(v).value()};
}

Bytes from(const std::string& hex) {
  auto b = from_hex(hex);
  EXPECT_TRUE(b.ok());
  return *b;
}

// README case 5: the debug TD verifies, but only an explicit policy accepts it.
TEST(TdxAppraisal, DebugTdRejectedByDefault) {
  auto c = testing::pcs_collateral();
  ASSERT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  auto vc = verify_collateral(*c, root.get(), kPcsAt);
  ASSERT_TRUE(vc.ok()) << vc.error().describe();
  auto q = parse_quote(fixture("trustee_quote_v4_debug.dat"));
  ASSERT_TRUE(q.ok());
  auto v = verify_quote(*q, *vc, kPcsAt);
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->tcb_status, "UpToDate");
  auto s = appraise(*q, *v, Policy{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "tdx.policy.debug");
  Policy allow;
  allow.allow_debug = true;
  EXPECT_TRUE(appraise(*q, *v, allow).ok());
  EXPECT_EQ(claims(*q, *v)["debug"], true);
}

TEST(TdxAppraisal, MatchingPolicyAccepts) {
  auto [quote, verdict] = verify_v4();
  Policy p;
  p.mrtd = from(
      "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b253887"
      "3118b7");
  p.rtmr[0] = Bytes(quote.body.rtmr[0].begin(), quote.body.rtmr[0].end());
  p.rtmr[3] = Bytes(48, 0);
  p.mrconfigid = Bytes(48, 0);
  p.report_data = Bytes(quote.body.report_data.begin(), quote.body.report_data.end());
  p.accepted_tcb_statuses = {"UpToDate", "SWHardeningNeeded"};
  EXPECT_TRUE(appraise(quote, verdict, p).ok());
}

TEST(TdxAppraisal, EachMismatchHasItsCode) {
  auto [quote, verdict] = verify_v4();
  const Bytes wrong48(48, 0xEE);
  {
    Policy p;
    p.mrtd = wrong48;
    auto s = appraise(quote, verdict, p);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "tdx.mrtd");
    EXPECT_NE(s.error().message.find(std::string(96, 'e')), std::string::npos);
    EXPECT_NE(s.error().message.find("91eb2b44"), std::string::npos);
  }
  for (std::size_t i = 0; i < 4; ++i) {
    Policy p;
    p.rtmr[i] = wrong48;
    auto s = appraise(quote, verdict, p);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "tdx.rtmr" + std::to_string(i));
  }
  {
    Policy p;
    p.mrconfigid = wrong48;
    EXPECT_EQ(appraise(quote, verdict, p).error().code, "tdx.mrconfigid");
  }
  {
    Policy p;
    p.report_data = Bytes(64, 0);
    EXPECT_EQ(appraise(quote, verdict, p).error().code, "tdx.report_data");
    p.report_data = Bytes(quote.body.report_data.begin(), quote.body.report_data.begin() + 32);
    EXPECT_EQ(appraise(quote, verdict, p).error().code, "tdx.report_data");  // too short
  }
  {
    Policy p;
    p.accepted_tcb_statuses = {"OutOfDate"};
    auto s = appraise(quote, verdict, p);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, "tdx.tcb.status");
  }
}

TEST(TdxAppraisal, Claims) {
  auto [quote, verdict] = verify_v4();
  const auto c = claims(quote, verdict);
  EXPECT_EQ(c["tee"], "tdx");
  EXPECT_EQ(c["quote_version"], 4);
  EXPECT_EQ(c["mrtd"], to_hex(quote.body.mr_td));
  EXPECT_EQ(c["rtmr2"],
            "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e"
            "01d48c3132");
  EXPECT_EQ(c["rtmr3"], std::string(96, '0'));
  EXPECT_EQ(c["mrconfigid"], std::string(96, '0'));
  EXPECT_EQ(c["mrowner"], std::string(96, '0'));
  EXPECT_EQ(c["mrownerconfig"], std::string(96, '0'));
  EXPECT_EQ(c["mrsignerseam"], std::string(96, '0'));
  EXPECT_EQ(c["td_attributes"], "0000001000000000");
  EXPECT_EQ(c["xfam"], "e702060000000000");
  EXPECT_EQ(c["tee_tcb_svn"], "06010300000000000000000000000000");
  EXPECT_EQ(c["tcb_status"], "UpToDate");
  EXPECT_TRUE(c["advisory_ids"].is_array());
  EXPECT_TRUE(c["advisory_ids"].empty());
  EXPECT_EQ(c["fmspc"], "b0c06f000000");
  EXPECT_EQ(c["pce_svn"], 11);
  EXPECT_EQ(c["cpu_svn"], "03030202040100050000000000000000");
  EXPECT_EQ(c["qe_isvsvn"], 6);
  EXPECT_EQ(c["debug"], false);
  EXPECT_EQ(c["collateral_expiry"], "2025-07-19T10:00:35Z");
  EXPECT_FALSE(c.contains("mrservicetd"));  // TDX 1.0 body
  for (const char* key : {"mrtd", "rtmr0", "rtmr1", "report_data", "mrseam"}) {
    const std::string value = c[key];
    EXPECT_EQ(value.find_first_of("ABCDEF"), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace confpod::tdx
