// Appraisal of (signature-verified) reports against the verifier's policy.
#include "attest/snp/appraisal.h"

#include <gtest/gtest.h>

#include "attest/snp/snp_test_util.h"

namespace confpod::snp {
namespace {

using testutil::code_of;
using testutil::gosev_report_bytes;
using testutil::hex;
using testutil::message_of;
using testutil::milan_report_bytes;
using testutil::parse_ok;

Report milan() { return parse_ok(milan_report_bytes(), Product::kMilan); }

TEST(SnpAppraisal, DefaultPolicyAcceptsTheMilanGuest) {
  EXPECT_EQ(code_of(appraise(milan(), Policy{})), "ok");
}

TEST(SnpAppraisal, DebugGuestRejectedUnlessAllowed) {
  Report gosev = parse_ok(gosev_report_bytes());
  auto result = appraise(gosev, Policy{});
  EXPECT_EQ(code_of(result), "snp.policy.debug");
  EXPECT_NE(message_of(result).find("0xb0000"), std::string::npos) << message_of(result);
  Policy policy;
  policy.allow_debug = true;
  EXPECT_EQ(code_of(appraise(gosev, policy)), "ok");
}

TEST(SnpAppraisal, SmtRefusedWhenThePolicySaysSo) {
  Policy policy;
  policy.allow_smt = false;
  EXPECT_EQ(code_of(appraise(milan(), policy)), "snp.policy.smt");  // policy 0x30000 has SMT
  Report no_smt = milan();
  no_smt.policy = decode_policy(0x20000);
  EXPECT_EQ(code_of(appraise(no_smt, policy)), "ok");
}

TEST(SnpAppraisal, MigrationAgentRefusedByDefault) {
  Bytes bytes = milan_report_bytes();
  bytes[0x0A] |= 0x04;  // policy bit 18
  Report report = parse_ok(bytes);
  EXPECT_TRUE(report.policy.migrate_ma);
  EXPECT_EQ(code_of(appraise(report, Policy{})), "snp.policy.migration_agent");
  Policy policy;
  policy.allow_migration_agent = true;
  EXPECT_EQ(code_of(appraise(report, policy)), "ok");
}

TEST(SnpAppraisal, MinimumTcbNamesTheComponent) {
  Policy policy;
  policy.min_tcb = TcbVersion{3, 0, 8, 0x73, std::nullopt};
  EXPECT_EQ(code_of(appraise(milan(), policy)), "ok");
  policy.min_tcb = TcbVersion{1, 0, 1, 0x10, std::nullopt};
  EXPECT_EQ(code_of(appraise(milan(), policy)), "ok");

  policy.min_tcb = TcbVersion{3, 0, 9, 0, std::nullopt};
  auto snp = appraise(milan(), policy);
  EXPECT_EQ(code_of(snp), "snp.tcb.minimum");
  EXPECT_NE(message_of(snp).find("snp 8 is below the minimum 9"), std::string::npos)
      << message_of(snp);

  policy.min_tcb = TcbVersion{3, 0, 8, 0x74, std::nullopt};
  auto micro = appraise(milan(), policy);
  EXPECT_EQ(code_of(micro), "snp.tcb.minimum");
  EXPECT_NE(message_of(micro).find("microcode 115 is below the minimum 116"), std::string::npos)
      << message_of(micro);

  policy.min_tcb = TcbVersion{4, 0, 0, 0, std::nullopt};
  EXPECT_NE(message_of(appraise(milan(), policy)).find("bootloader 3"), std::string::npos);
  policy.min_tcb = TcbVersion{0, 1, 0, 0, std::nullopt};
  EXPECT_NE(message_of(appraise(milan(), policy)).find("tee 0"), std::string::npos);

  // An fmc minimum needs a Turin TCB.
  policy.min_tcb = TcbVersion{0, 0, 0, 0, std::uint8_t{0}};
  EXPECT_EQ(code_of(appraise(milan(), policy)), "snp.tcb.minimum");
  Report as_turin = parse_ok(milan_report_bytes(), Product::kTurin);  // fmc = 3
  policy.min_tcb = TcbVersion{0, 0, 0, 0, std::uint8_t{3}};
  EXPECT_EQ(code_of(appraise(as_turin, policy)), "ok");
  policy.min_tcb = TcbVersion{0, 0, 0, 0, std::uint8_t{4}};
  auto fmc = appraise(as_turin, policy);
  EXPECT_EQ(code_of(fmc), "snp.tcb.minimum");
  EXPECT_NE(message_of(fmc).find("fmc 3"), std::string::npos) << message_of(fmc);
}

TEST(SnpAppraisal, MeasurementAllowList) {
  Policy policy;
  policy.allowed_measurements = {hex(testutil::kGosevMeasurement),
                                 hex(testutil::kMilanMeasurement)};
  EXPECT_EQ(code_of(appraise(milan(), policy)), "ok");
  policy.allowed_measurements = {hex(testutil::kGosevMeasurement)};
  auto result = appraise(milan(), policy);
  EXPECT_EQ(code_of(result), "snp.measurement");
  EXPECT_NE(message_of(result).find(testutil::kGosevMeasurement), std::string::npos);
  EXPECT_NE(message_of(result).find(testutil::kMilanMeasurement), std::string::npos);
  // A prefix of the right measurement is not the measurement.
  Bytes prefix = hex(testutil::kMilanMeasurement);
  prefix.pop_back();
  policy.allowed_measurements = {prefix};
  EXPECT_EQ(code_of(appraise(milan(), policy)), "snp.measurement");
}

TEST(SnpAppraisal, HostData) {
  Policy policy;
  policy.host_data = Bytes(32, 0);
  EXPECT_EQ(code_of(appraise(milan(), policy)), "ok");
  policy.host_data = hex("01");
  auto result = appraise(milan(), policy);
  EXPECT_EQ(code_of(result), "snp.host_data");
  EXPECT_NE(message_of(result).find("expected 01, actual " + std::string(64, '0')),
            std::string::npos)
      << message_of(result);
  policy.host_data = Bytes(33, 0);  // longer than the field
  EXPECT_EQ(code_of(appraise(milan(), policy)), "snp.host_data");
}

TEST(SnpAppraisal, ReportData) {
  Policy policy;
  policy.report_data = hex(testutil::kMilanReportData);
  EXPECT_EQ(code_of(appraise(milan(), policy)), "ok");
  Bytes wrong = hex(testutil::kMilanReportData);
  wrong[63] ^= 1;
  policy.report_data = wrong;
  auto result = appraise(milan(), policy);
  EXPECT_EQ(code_of(result), "snp.report_data");
  EXPECT_NE(message_of(result).find(to_hex(wrong)), std::string::npos);

  // gosev's report_data is 0102030405 then zeros: a short expected value is zero-padded.
  Policy nonce;
  nonce.allow_debug = true;
  nonce.report_data = hex("0102030405");
  Report gosev = parse_ok(gosev_report_bytes());
  EXPECT_EQ(code_of(appraise(gosev, nonce)), "ok");
  nonce.report_data = hex("0102030406");
  EXPECT_EQ(code_of(appraise(gosev, nonce)), "snp.report_data");
  nonce.report_data = hex("01020304");  // the 05 byte is not zero
  EXPECT_EQ(code_of(appraise(gosev, nonce)), "snp.report_data");
}

TEST(SnpAppraisal, VmplGuestSvnAndIdKey) {
  Report report = milan();
  Policy policy;
  policy.max_vmpl = 0;
  policy.min_guest_svn = 0;
  policy.id_key_digest = Bytes(48, 0);
  EXPECT_EQ(code_of(appraise(report, policy)), "ok");
  report.vmpl = 2;
  EXPECT_EQ(code_of(appraise(report, policy)), "snp.vmpl");
  policy.max_vmpl = 3;
  EXPECT_EQ(code_of(appraise(report, policy)), "ok");
  policy.min_guest_svn = 1;
  EXPECT_EQ(code_of(appraise(report, policy)), "snp.guest_svn");
  policy.min_guest_svn.reset();
  policy.id_key_digest = Bytes(48, 0xAB);
  EXPECT_EQ(code_of(appraise(report, policy)), "snp.id_key_digest");
}

TEST(SnpAppraisal, PolicyChecksComeBeforeMeasurement) {
  // A debug guest with an unknown measurement is reported as a debug guest: the more basic
  // property fails first, so the diagnosis does not depend on the allow-list.
  Policy policy;
  policy.allowed_measurements = {hex(testutil::kMilanMeasurement)};
  EXPECT_EQ(code_of(appraise(parse_ok(gosev_report_bytes()), policy)), "snp.policy.debug");
}

}  // namespace
}  // namespace confpod::snp
