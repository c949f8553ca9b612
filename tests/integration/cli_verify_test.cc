// confpodctl verify snp|tdx, run as a real process on the real fixtures: exit codes, the
// JSON claims on stdout, and one line on stderr naming the failed check.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "attest/base/bytes.h"
#include "attest/tdx/collateral.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using testing::fixture_path;
using testing::ProcessResult;
using testing::read_fixture;
using testing::read_fixture_text;
using testing::run_process;
using testing::TempDir;

ProcessResult ctl(std::vector<std::string> args) {
  args.insert(args.begin(), CONFPODCTL_PATH);
  return run_process(args);
}

std::string snp(const std::string& name) { return fixture_path("snp/" + name); }
std::string tdx(const std::string& name) { return fixture_path("tdx/" + name); }

nlohmann::json accepted(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  auto claims = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(claims.is_object()) << r.out;
  return claims;
}

// A rejection: exit 1, nothing on stdout, exactly one line on stderr containing `check`.
void expect_rejected(const ProcessResult& r, const std::string& check) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(check), std::string::npos) << "stderr: " << r.err;
}

void expect_usage_error(const ProcessResult& r) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_FALSE(r.err.empty());
}

// ---- SEV-SNP ---------------------------------------------------------------------------

// Trustee's evidence shape (fixtures/kbs/trustee_snp_evidence_genoa.json, real Genoa evidence):
// the report re-encoded from the sev crate's object, its signature, the VCEK in cert_chain
// chained to the pinned Genoa root.
TEST(CliVerifySnpEvidence, TrusteeShapedGenoaEvidence) {
  const std::string file = fixture_path("kbs/trustee_snp_evidence_genoa.json");
  auto claims = accepted(ctl({"verify", "snp-evidence", file, "--at", "2026-01-01T00:00:00Z"}));
  EXPECT_EQ(claims["tee"], "snp");
  EXPECT_EQ(claims["product"], "genoa");
  EXPECT_EQ(
      claims["measurement"],
      "6a6519d757e68c2e939c9dbbbc1828498e8de35d2766dd05f1a2cca5059d0cf4ae62a36d75c837974dd50b3"
      "15506e73e");
  // Before the VCEK was issued (2025-05-27) the chain is not valid.
  auto early = ctl({"verify", "snp-evidence", file, "--at", "2025-01-01T00:00:00Z"});
  EXPECT_EQ(early.exit_code, 1) << early.err;
}

TEST(CliVerifySnpEvidence, AlteredOrMalformedEvidenceIsRejectedNamingTheCheck) {
  auto evidence = nlohmann::json::parse(read_fixture_text("kbs/trustee_snp_evidence_genoa.json"));
  TempDir dir;
  auto run = [&](const nlohmann::json& j) {
    return ctl(
        {"verify", "snp-evidence", dir.write("e.json", j.dump()), "--at", "2026-01-01T00:00:00Z"});
  };
  auto altered = evidence;
  altered["attestation_report"]["measurement"][0] =
      (altered["attestation_report"]["measurement"][0].get<int>() + 1) % 256;
  expect_rejected(run(altered), "snp.signature");
  auto no_report = evidence;
  no_report.erase("attestation_report");
  expect_rejected(run(no_report), "snp.json");
  auto bad_member = evidence;
  bad_member["attestation_report"]["vmpl"] = "zero";
  expect_rejected(run(bad_member), "attestation_report.vmpl");
  auto no_vcek = evidence;
  no_vcek["cert_chain"] = nullptr;
  expect_rejected(run(no_vcek), "no VCEK or VLEK");
  expect_usage_error(ctl({"verify", "snp-evidence", dir.write("x.json", "not json")}));
}

TEST(CliVerifySnp, MilanReportWithCompiledInRoots) {
  auto claims = accepted(ctl(
      {"verify", "snp", snp("virtee_report_milan.bin"), "--vcek", snp("virtee_vcek_milan.der")}));
  EXPECT_EQ(claims["tee"], "snp");
  EXPECT_EQ(claims["product"], "milan");
  EXPECT_EQ(claims["measurement"],
            "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9"
            "c480cd81841f");
  EXPECT_EQ(claims["report_data"],
            "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be0"
            "63fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd");
  EXPECT_EQ(claims["host_data"], std::string(64, '0'));
  EXPECT_EQ(claims["chip_id"].get<std::string>().substr(0, 32), "d49554ec717f4e5b0fe6b143bcf0405b");
  EXPECT_EQ(claims["reported_tcb"]["bootloader"], 3);
  EXPECT_EQ(claims["reported_tcb"]["tee"], 0);
  EXPECT_EQ(claims["reported_tcb"]["snp"], 8);
  EXPECT_EQ(claims["reported_tcb"]["microcode"], 115);
  EXPECT_EQ(claims["debug"], false);
}

TEST(CliVerifySnp, ExplicitAskArkAndKdsBundle) {
  accepted(
      ctl({"verify", "snp", snp("virtee_report_milan.bin"), "--vcek", snp("virtee_vcek_milan.der"),
           "--ask", snp("ask_milan.pem"), "--ark", snp("ark_milan.pem"), "--product", "milan"}));
  accepted(ctl({"verify", "snp", snp("virtee_report_milan.bin"), "--vcek",
                snp("virtee_vcek_milan.der"), "--ask", snp("virtee_cert_chain_milan.pem")}));
}

TEST(CliVerifySnp, WrongProductRootIsRejected) {
  auto by_flag = ctl({"verify", "snp", snp("virtee_report_milan.bin"), "--vcek",
                      snp("virtee_vcek_milan.der"), "--product", "genoa"});
  expect_rejected(by_flag, "snp.");
  auto by_certs =
      ctl({"verify", "snp", snp("virtee_report_milan.bin"), "--vcek", snp("virtee_vcek_milan.der"),
           "--ask", snp("ask_genoa.pem"), "--ark", snp("ark_genoa.pem")});
  expect_rejected(by_certs, "snp.");
}

TEST(CliVerifySnp, DebugGuestRejectedUnlessAllowed) {
  expect_rejected(
      ctl({"verify", "snp", snp("gosev_attestation.bin"), "--vcek", snp("gosev_vcek.der")}),
      "snp.policy.debug");
  auto claims = accepted(ctl({"verify", "snp", snp("gosev_attestation.bin"), "--vcek",
                              snp("gosev_vcek.der"), "--allow-debug"}));
  EXPECT_EQ(claims["debug"], true);
  EXPECT_EQ(claims["measurement"],
            "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb"
            "0cf2e4872b01");
}

TEST(CliVerifySnp, CertificateSwappedBetweenReportsIsRejected) {
  auto r = ctl({"verify", "snp", snp("virtee_report_milan.bin"), "--vcek", snp("gosev_vcek.der"),
                "--allow-debug"});
  expect_rejected(r, "snp.");
  auto r2 = ctl({"verify", "snp", snp("gosev_attestation.bin"), "--vcek",
                 snp("virtee_vcek_milan.der"), "--allow-debug"});
  expect_rejected(r2, "snp.");
}

TEST(CliVerifySnp, TamperedAndTruncatedReportsAreRejected) {
  TempDir dir;
  Bytes report = read_fixture("snp/virtee_report_milan.bin");
  ASSERT_EQ(report.size(), 1184u);
  Bytes flipped = report;
  flipped[0x90] ^= 0x01;  // inside the measurement
  auto path = dir.write("flipped.bin", std::string(flipped.begin(), flipped.end()));
  expect_rejected(ctl({"verify", "snp", path, "--vcek", snp("virtee_vcek_milan.der")}),
                  "snp.signature");
  auto short_path = dir.write("short.bin", std::string(report.begin(), report.begin() + 1000));
  expect_rejected(ctl({"verify", "snp", short_path, "--vcek", snp("virtee_vcek_milan.der")}),
                  "snp.report.size");
}

TEST(CliVerifySnp, UnusableArgumentsExitTwo) {
  expect_usage_error(
      ctl({"verify", "snp", "/nonexistent/report.bin", "--vcek", snp("virtee_vcek_milan.der")}));
  expect_usage_error(ctl({"verify", "snp", snp("virtee_report_milan.bin")}));  // no --vcek
  expect_usage_error(ctl({"verify", "snp", snp("virtee_report_milan.bin"), "--vcek",
                          snp("virtee_vcek_milan.der"), "--product", "naples"}));
  expect_usage_error(ctl({"verify", "snp", snp("virtee_report_milan.bin"), "--vcek",
                          snp("virtee_report_milan.bin")}));  // not a certificate
  expect_usage_error(ctl({"verify"}));
  expect_usage_error(ctl({"verify", "sgx", "x"}));
}

// ---- TDX -------------------------------------------------------------------------------

TEST(CliVerifyTdx, QuoteV4UpToDate) {
  auto claims = accepted(ctl({"verify", "tdx", tdx("dcapqvl_quote_v4.dat"), "--collateral",
                              tdx("dcapqvl_collateral_v4.json"), "--at", "2025-07-19T10:00:34Z"}));
  EXPECT_EQ(claims["tee"], "tdx");
  EXPECT_EQ(claims["tcb_status"], "UpToDate");
  EXPECT_EQ(claims["mrtd"],
            "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b"
            "2538873118b7");
  EXPECT_EQ(claims["rtmr0"],
            "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540"
            "cf994b9bc9c0");
  EXPECT_EQ(claims["rtmr3"], std::string(96, '0'));
  EXPECT_EQ(claims["report_data"],
            "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163c"
            "f52493d6e44aed55d51ec39b7e518fadb92c2b523f20");
  EXPECT_EQ(claims["debug"], false);
}

TEST(CliVerifyTdx, ExpiredCollateralFailsClosed) {
  expect_rejected(ctl({"verify", "tdx", tdx("dcapqvl_quote_v4.dat"), "--collateral",
                       tdx("dcapqvl_collateral_v4.json"), "--at", "2025-07-19T10:00:36Z"}),
                  "tdx.collateral.expired");
}

TEST(CliVerifyTdx, QuoteV5UpToDateAndOutdatedPlatformRejected) {
  auto claims = accepted(ctl({"verify", "tdx", tdx("gotdx_quote_v5.dat"), "--collateral",
                              tdx("dcapqvl_collateral_v5.json"), "--at", "2026-03-20T10:41:14Z"}));
  EXPECT_EQ(claims["tcb_status"], "UpToDate");
  EXPECT_EQ(claims["mrtd"],
            "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f"
            "750c3bc8f876");
  expect_rejected(ctl({"verify", "tdx", tdx("dcapqvl_quote_v5_outdated.dat"), "--collateral",
                       tdx("dcapqvl_collateral_v5.json"), "--at", "2026-03-20T10:41:14Z"}),
                  "tdx.tcb.not_supported");
}

TEST(CliVerifyTdx, DebugTdRejectedUnlessAllowed) {
  // The go-tdx-guest PCS responses, assembled into the collateral file format.
  auto collateral =
      tdx::collateral_from_pcs(read_fixture_text("tdx/gotdx_pcs_tcbinfo_50806f000000.json"),
                               read_fixture_text("tdx/gotdx_pcs_qeidentity.json"),
                               read_fixture_text("tdx/gotdx_tcb_info_issuer_chain.pem"),
                               read_fixture("tdx/gotdx_pckcrl_platform.der"),
                               read_fixture_text("tdx/gotdx_pck_crl_issuer_chain.pem"),
                               read_fixture("tdx/gotdx_rootcrl.der"));
  ASSERT_TRUE(collateral.ok()) << collateral.error().describe();
  TempDir dir;
  auto path = dir.write("collateral.json", tdx::collateral_to_json(*collateral));
  expect_rejected(ctl({"verify", "tdx", tdx("trustee_quote_v4_debug.dat"), "--collateral", path,
                       "--at", "2023-07-01T01:00:00Z"}),
                  "tdx.policy.debug");
  auto claims = accepted(ctl({"verify", "tdx", tdx("trustee_quote_v4_debug.dat"), "--collateral",
                              path, "--at", "2023-07-01T01:00:00Z", "--allow-debug"}));
  EXPECT_EQ(claims["debug"], true);
  EXPECT_EQ(claims["tcb_status"], "UpToDate");
  // The SPR E4 quote: every signature valid, but its platform matches no TCB level.
  expect_rejected(ctl({"verify", "tdx", tdx("gotdx_quote_v4_spr_e4.dat"), "--collateral", path,
                       "--at", "2023-07-01T01:00:00Z"}),
                  "tdx.tcb.not_supported");
}

TEST(CliVerifyTdx, UnusableArgumentsExitTwo) {
  expect_usage_error(ctl({"verify", "tdx", tdx("dcapqvl_quote_v4.dat"), "--collateral",
                          tdx("dcapqvl_collateral_v4.json"), "--at", "last tuesday"}));
  expect_usage_error(ctl({"verify", "tdx", tdx("dcapqvl_quote_v4.dat"), "--collateral",
                          "/nonexistent.json", "--at", "2025-07-19T10:00:34Z"}));
  expect_usage_error(ctl({"verify", "tdx", tdx("dcapqvl_quote_v4.dat"), "--at",
                          "2025-07-19T10:00:34Z"}));  // no --collateral
  TempDir dir;
  auto junk = dir.write("junk.json", "{\"tcb_info\": 5");
  expect_usage_error(ctl({"verify", "tdx", tdx("dcapqvl_quote_v4.dat"), "--collateral", junk,
                          "--at", "2025-07-19T10:00:34Z"}));
}

TEST(CliVerifyTdx, TruncatedQuoteRejected) {
  TempDir dir;
  Bytes quote = read_fixture("tdx/dcapqvl_quote_v4.dat");
  auto path = dir.write("short.dat", std::string(quote.begin(), quote.begin() + 600));
  expect_rejected(ctl({"verify", "tdx", path, "--collateral", tdx("dcapqvl_collateral_v4.json"),
                       "--at", "2025-07-19T10:00:34Z"}),
                  "tdx.quote");
}

}  // namespace
}  // namespace confpod
