#include "attest/kbs/snp_report_json.h"

#include <gtest/gtest.h>

#include "attest/kbs/kbs_test_util.h"
#include "tests/support/fixtures.h"

namespace confpod::kbs {
namespace {

TEST(SevReportJson, RoundTripsRealReportsByteForByte) {
  for (const char* name : {"snp/virtee_report_milan.bin", "snp/gosev_attestation.bin"}) {
    Bytes raw = confpod::testing::read_fixture(name);
    ASSERT_EQ(raw.size(), 1184u) << name;
    auto back = raw_report_from_sev_json(testing::sev_report_json(raw));
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(to_hex(*back), to_hex(raw)) << name;
  }
}

TEST(SevReportJson, TurinTcbLayoutAndVersion5Fields) {
  Bytes raw(1184, 0);
  raw[0] = 5;         // version 5
  raw[0x188] = 0x1A;  // Turin family
  raw[0x38] = 9;      // current_tcb.fmc
  raw[0x3B] = 7;      // current_tcb.snp (Turin: byte 3)
  raw[0x1F8] = 0x11;  // launch_mit_vector
  raw[0x200] = 0x22;  // current_mit_vector
  auto back = raw_report_from_sev_json(testing::sev_report_json(raw, /*turin=*/true));
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(*back, raw);
}

TEST(SevReportJson, RefusesMissingWrongAndOutOfRangeMembers) {
  Bytes raw = confpod::testing::read_fixture("snp/virtee_report_milan.bin");
  auto good = testing::sev_report_json(raw);
  auto code = [](const nlohmann::json& j) {
    auto r = raw_report_from_sev_json(j);
    return r.ok() ? std::string("ok") : r.error().code;
  };
  ASSERT_EQ(code(good), "ok");
  for (const char* member :
       {"version", "policy", "measurement", "current_tcb", "signature", "current", "chip_id"}) {
    auto j = good;
    j.erase(member);
    EXPECT_EQ(code(j), "kbs.evidence.snp") << member;
  }
  auto j = good;
  j["vmpl"] = 4294967296ull;  // does not fit u32
  EXPECT_EQ(code(j), "kbs.evidence.snp");
  j = good;
  j["measurement"][0] = 256;
  EXPECT_EQ(code(j), "kbs.evidence.snp");
  j = good;
  j["measurement"].push_back(0);
  EXPECT_EQ(code(j), "kbs.evidence.snp");
  j = good;
  j["guest_svn"] = -1;
  EXPECT_EQ(code(j), "kbs.evidence.snp");
  j = good;
  j["reported_tcb"]["snp"] = 1.5;
  EXPECT_EQ(code(j), "kbs.evidence.snp");
  j = good;
  j["signature"]["r"] = "AAAA";
  EXPECT_EQ(code(j), "kbs.evidence.snp");
  EXPECT_EQ(code(nlohmann::json::array()), "kbs.evidence.snp");
}

}  // namespace
}  // namespace confpod::kbs
