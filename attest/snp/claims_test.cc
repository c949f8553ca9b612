// The JSON claims the CLI prints and the key broker consumes.
#include "attest/snp/claims.h"

#include <gtest/gtest.h>

#include "attest/snp/snp_test_util.h"

namespace confpod::snp {
namespace {

using testutil::gosev_report_bytes;
using testutil::milan_report_bytes;
using testutil::parse_ok;

TEST(SnpClaims, MilanReport) {
  nlohmann::json c = claims(parse_ok(milan_report_bytes()), Product::kMilan);
  for (const char* key :
       {"tee",           "version",           "product",     "policy",        "debug",
        "vmpl",          "measurement",       "report_data", "host_data",     "chip_id",
        "id_key_digest", "author_key_digest", "family_id",   "image_id",      "guest_svn",
        "signing_key",   "reported_tcb",      "current_tcb", "committed_tcb", "launch_tcb"})
    EXPECT_TRUE(c.contains(key)) << key;
  EXPECT_EQ(c["tee"], "snp");
  EXPECT_EQ(c["version"], 2);
  EXPECT_EQ(c["product"], "milan");
  EXPECT_EQ(c["policy"], "0x30000");
  EXPECT_EQ(c["debug"], false);
  EXPECT_EQ(c["smt_allowed"], true);
  EXPECT_EQ(c["vmpl"], 0);
  EXPECT_EQ(c["guest_svn"], 0);
  EXPECT_EQ(c["measurement"], testutil::kMilanMeasurement);
  EXPECT_EQ(c["report_data"], testutil::kMilanReportData);
  EXPECT_EQ(c["host_data"], std::string(64, '0'));
  EXPECT_EQ(c["chip_id"].get<std::string>().size(), 128u);
  EXPECT_EQ(c["chip_id"].get<std::string>().substr(0, 32), "d49554ec717f4e5b0fe6b143bcf0405b");
  EXPECT_EQ(c["family_id"], std::string(32, '0'));
  EXPECT_EQ(c["id_key_digest"], std::string(96, '0'));
  EXPECT_EQ(c["signing_key"], "vcek");
  EXPECT_EQ(c["platform_info"], "0x1");
  EXPECT_EQ(c["current_firmware"], "1.52.4");
  for (const char* tcb : {"reported_tcb", "current_tcb", "committed_tcb", "launch_tcb"}) {
    SCOPED_TRACE(tcb);
    EXPECT_EQ(c[tcb]["bootloader"], 3);
    EXPECT_EQ(c[tcb]["tee"], 0);
    EXPECT_EQ(c[tcb]["snp"], 8);
    EXPECT_EQ(c[tcb]["microcode"], 115);
    EXPECT_EQ(c[tcb]["raw"], "0300000000000873");
    EXPECT_FALSE(c[tcb].contains("fmc"));
  }
}

TEST(SnpClaims, TurinTcbHasFmc) {
  nlohmann::json c = claims(parse_ok(milan_report_bytes()), Product::kTurin);
  EXPECT_EQ(c["product"], "turin");
  EXPECT_EQ(c["reported_tcb"]["fmc"], 3);
  EXPECT_EQ(c["reported_tcb"]["bootloader"], 0);
  EXPECT_EQ(c["reported_tcb"]["microcode"], 115);
}

TEST(SnpClaims, DebugGuest) {
  nlohmann::json c = claims(parse_ok(gosev_report_bytes()), Product::kMilan);
  EXPECT_EQ(c["debug"], true);
  EXPECT_EQ(c["policy"], "0xb0000");
  EXPECT_EQ(c["report_data"], "0102030405" + std::string(118, '0'));
  EXPECT_EQ(c["reported_tcb"]["raw"], "0200000000000544");
  EXPECT_EQ(c["reported_tcb"]["microcode"], 0x44);
}

}  // namespace
}  // namespace confpod::snp
