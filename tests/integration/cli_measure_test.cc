// confpodctl measure snp|tdx|rtmr, run as a real process on the fixtures: the digests printed
// are the README's test vectors, bit-exact, and bad input is a clean rejection.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using testing::fixture_path;
using testing::ProcessResult;
using testing::run_process;
using testing::TempDir;

ProcessResult ctl(std::vector<std::string> args) {
  args.insert(args.begin(), CONFPODCTL_PATH);
  return run_process(args);
}

void expect_output(const ProcessResult& r, const std::string& expected) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected);
}

void expect_rejected(const ProcessResult& r, const std::string& check) {
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(check), std::string::npos) << r.err;
}

struct EmptyKernel {
  TempDir dir;
  std::string kernel = dir.write("vmlinuz", "");
  std::string initrd = dir.write("initrd", "");
};

TEST(CliMeasureSnp, DefaultCaseWithKernelHashes) {
  EmptyKernel k;
  expect_output(
      ctl({"measure", "snp", "--ovmf", fixture_path("snp/ovmf_AmdSev_suffix.bin"), "--kernel",
           k.kernel, "--initrd", k.initrd, "--append", "console=ttyS0 loglevel=7", "--vcpus", "1",
           "--vcpu-type", "EPYC-v4", "--guest-features", "0x21"}),
      "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e1"
      "7895dfe778d0228977\n");
}

TEST(CliMeasureSnp, FourVcpusSnpOnlyWithoutAppend) {
  EmptyKernel k;
  expect_output(ctl({"measure", "snp", "--ovmf", fixture_path("snp/ovmf_AmdSev_suffix.bin"),
                     "--kernel", k.kernel, "--initrd", k.initrd, "--vcpus", "4", "--vcpu-type",
                     "EPYC-v4", "--guest-features", "0x1"}),
                "5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c493"
                "3de877c36e23046ad5\n");
}

// sev-snp-measure's own EC2 vectors (tests/test_guest.py, v0.0.13 and its current HEAD, where
// EC2's VMSA has RDX 0x600): the AmdSev suffix OVMF, one vCPU, empty kernel and initrd
// (kernel hashes of empty files). Without --kernel there are no kernel hashes, and the digest
// is another one, which upstream computes the same way (it publishes no vector for it).
TEST(CliMeasureSnp, Ec2MatchesSevSnpMeasuresPublishedVectors) {
  EmptyKernel k;
  auto ec2 = [&](const char* features) {
    return ctl({"measure", "snp", "--ovmf", fixture_path("snp/ovmf_AmdSev_suffix.bin"), "--kernel",
                k.kernel, "--initrd", k.initrd, "--vcpus", "1", "--vcpu-type", "EPYC-v4",
                "--guest-features", features, "--vmm-type", "ec2"});
  };
  expect_output(ec2("0x21"),
                "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033"
                "946ef93aa8278c0d67fb\n");
  expect_output(ec2("0x1"),
                "0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd88"
                "11050dec7e24964e5056\n");
  expect_output(
      ctl({"measure", "snp", "--ovmf", fixture_path("snp/ovmf_AmdSev_suffix.bin"), "--vcpus", "1",
           "--vcpu-type", "EPYC-v4", "--guest-features", "0x21", "--vmm-type", "ec2"}),
      "ae6c3c4211ec24871cca94c9c627721a1be7e7386bcadf8293609e200d61f12528a2e718b95b"
      "230ce063fb293d532dd0\n");
}

TEST(CliMeasureSnp, NoKernelDefaultFeatures) {
  // Default guest features are 0x1 (SNPActive only): the README's no_kernel_snp_only.
  expect_output(ctl({"measure", "snp", "--ovmf", fixture_path("snp/ovmf_AmdSev_suffix.bin"),
                     "--vcpus", "1", "--vcpu-type", "EPYC-v4"}),
                "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6"
                "db5d6d76e7c5df632d\n");
}

TEST(CliMeasureSnp, FirmwareWithoutHashesTableRefusesAKernel) {
  EmptyKernel k;
  expect_rejected(ctl({"measure", "snp", "--ovmf", fixture_path("snp/ovmf_OvmfX64_suffix.bin"),
                       "--kernel", k.kernel, "--initrd", k.initrd, "--vcpus", "1", "--vcpu-type",
                       "EPYC-v4", "--guest-features", "0x21"}),
                  "measure.ovmf");
}

TEST(CliMeasureSnp, TruncatedFirmwareAndBadArguments) {
  TempDir dir;
  std::string truncated = dir.write("short.fd", std::string(100, '\x00'));
  expect_rejected(
      ctl({"measure", "snp", "--ovmf", truncated, "--vcpus", "1", "--vcpu-type", "EPYC-v4"}),
      "measure.ovmf");
  for (auto args : std::vector<std::vector<std::string>>{
           {"measure", "snp", "--ovmf", dir.path() + "/missing.fd", "--vcpus", "1", "--vcpu-type",
            "EPYC-v4"},
           {"measure", "snp", "--ovmf", truncated, "--vcpu-type", "EPYC-v4"},
           {"measure", "tdx"},
       }) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_EQ(r.out, "");
  }
  auto unknown_cpu = ctl({"measure", "snp", "--ovmf", fixture_path("snp/ovmf_AmdSev_suffix.bin"),
                          "--vcpus", "1", "--vcpu-type", "Skylake"});
  EXPECT_NE(unknown_cpu.exit_code, 0);
  EXPECT_NE(unknown_cpu.err.find("Skylake"), std::string::npos) << unknown_cpu.err;
}

TEST(CliMeasureTdx, SyntheticTdvfMrtd) {
  expect_output(ctl({"measure", "tdx", "--firmware", fixture_path("tdx/synthetic_tdvf_64k.bin")}),
                "1918701c3755294a3e9d5492f555e94d273e3e752123c3d1c1f865c424781d9647c2bdbe3bf7fc"
                "84e0a1f6faca1434da\n");
}

TEST(CliMeasureTdx, FirmwareWithoutTdxMetadataIsRejected) {
  expect_rejected(ctl({"measure", "tdx", "--firmware", fixture_path("snp/ovmf_AmdSev_suffix.bin")}),
                  "measure.tdvf");
}

TEST(CliMeasureRtmr, GcpEventLogReplaysToTheQuote) {
  expect_output(
      ctl({"measure", "rtmr", "--ccel-table", fixture_path("tdx/gcp_cos113_ccel_table.dat"),
           "--ccel-data", fixture_path("tdx/gcp_cos113_ccel_data.dat")}),
      "rtmr0=3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1e"
      "dece752afd17f6\n"
      "rtmr1=f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86"
      "e8a878c2b122c1\n"
      "rtmr2=4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f"
      "11f381a6fbe7c1\n"
      "rtmr3=" +
          std::string(96, '0') + "\n");
}

TEST(CliMeasureRtmr, TableAndDataSwappedIsRejected) {
  expect_rejected(
      ctl({"measure", "rtmr", "--ccel-table", fixture_path("tdx/gcp_cos113_ccel_data.dat"),
           "--ccel-data", fixture_path("tdx/gcp_cos113_ccel_table.dat")}),
      "measure.ccel");
}

}  // namespace
}  // namespace confpod
