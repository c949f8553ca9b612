#include "attest/snp/report_json.h"

#include <gtest/gtest.h>

#include "attest/crypto/crypto.h"
#include "tests/support/fixtures.h"

namespace confpod::snp {
namespace {

TEST(SevReportJson, RoundTripsRealReportsByteForByte) {
  for (const char* name : {"snp/virtee_report_milan.bin", "snp/gosev_attestation.bin"}) {
    Bytes raw = confpod::testing::read_fixture(name);
    ASSERT_EQ(raw.size(), 1184u) << name;
    auto back = raw_report_from_sev_json(sev_json_from_raw_report(raw));
    ASSERT_TRUE(back.ok()) << back.error().describe();
    EXPECT_EQ(to_hex(*back), to_hex(raw)) << name;
  }
}

// What confpod's agent sends is exactly what Trustee's attester sends: the real Genoa evidence
// Trustee's own tests use re-encodes to bytes that turn back into the very same object.
TEST(SevReportJson, ReproducesTrusteesObjectForRealEvidence) {
  auto evidence = nlohmann::json::parse(
      confpod::testing::read_fixture_text("kbs/trustee_snp_evidence_genoa.json"));
  const nlohmann::json& upstream = evidence["attestation_report"];
  auto raw = raw_report_from_sev_json(upstream);
  ASSERT_TRUE(raw.ok()) << raw.error().describe();
  EXPECT_EQ(to_hex(crypto::sha256(*raw)),
            "18e907bf99a957d8ccf30f2081da17f673da648a7a0b9d551a866e875234c21a");
  EXPECT_EQ(sev_json_from_raw_report(*raw), upstream);
}

TEST(SevReportJson, TurinTcbLayoutAndVersion5Fields) {
  Bytes raw(1184, 0);
  raw[0] = 5;         // version 5
  raw[0x188] = 0x1A;  // Turin family
  raw[0x38] = 9;      // current_tcb.fmc
  raw[0x3B] = 7;      // current_tcb.snp (Turin: byte 3)
  raw[0x1F8] = 0x11;  // launch_mit_vector
  raw[0x200] = 0x22;  // current_mit_vector
  auto back = raw_report_from_sev_json(sev_json_from_raw_report(raw));
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(*back, raw);
}

TEST(SevReportJson, RefusesMissingWrongAndOutOfRangeMembers) {
  Bytes raw = confpod::testing::read_fixture("snp/virtee_report_milan.bin");
  auto good = sev_json_from_raw_report(raw);
  auto code = [](const nlohmann::json& j) {
    auto r = raw_report_from_sev_json(j);
    return r.ok() ? std::string("ok") : r.error().code;
  };
  ASSERT_EQ(code(good), "ok");
  for (const char* member :
       {"version", "policy", "measurement", "current_tcb", "signature", "current", "chip_id"}) {
    auto j = good;
    j.erase(member);
    EXPECT_EQ(code(j), "snp.json") << member;
  }
  auto j = good;
  j["vmpl"] = 4294967296ull;  // does not fit u32
  EXPECT_EQ(code(j), "snp.json");
  j = good;
  j["measurement"][0] = 256;
  EXPECT_EQ(code(j), "snp.json");
  j = good;
  j["measurement"].push_back(0);
  EXPECT_EQ(code(j), "snp.json");
  j = good;
  j["guest_svn"] = -1;
  EXPECT_EQ(code(j), "snp.json");
  j = good;
  j["reported_tcb"]["snp"] = 1.5;
  EXPECT_EQ(code(j), "snp.json");
  j = good;
  j["signature"]["r"] = "AAAA";
  EXPECT_EQ(code(j), "snp.json");
  EXPECT_EQ(code(nlohmann::json::array()), "snp.json");
}

}  // namespace
}  // namespace confpod::snp
