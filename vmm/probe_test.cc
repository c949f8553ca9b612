#include "vmm/probe.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/process.h"

namespace confpod::vmm {
namespace {

using json = nlohmann::json;

// A fake host root: device nodes as plain files, module parameters as sysfs would show them.
void make_file(const std::string& path, const std::string& content = "") {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << content;
}

AmdSevCpuid snp_cpu() { return decode_amd_sev_cpuid(0x80000028u, 0x1b, (1u << 6) | 51u); }

TEST(Cpuid, DecodesLeaf8000001F) {
  auto c = decode_amd_sev_cpuid(0x80000028u, 0x0001b, (1u << 6) | 51u);
  EXPECT_TRUE(c.leaf_present);
  EXPECT_TRUE(c.sme);
  EXPECT_TRUE(c.sev);
  EXPECT_TRUE(c.sev_es);
  EXPECT_TRUE(c.sev_snp);
  EXPECT_EQ(c.cbitpos, 51u);
  EXPECT_EQ(c.reduced_phys_bits, 1u);
  auto old = decode_amd_sev_cpuid(0x80000008u, 0xffffffff, 0xffffffff);
  EXPECT_FALSE(old.leaf_present);
  EXPECT_FALSE(old.sev_snp);
}

TEST(Probe, FakeSnpHostIsAvailable) {
  testing::TempDir root;
  make_file(root.path() + "/dev/kvm");
  make_file(root.path() + "/dev/sev");
  make_file(root.path() + "/sys/module/kvm_amd/parameters/sev_snp", "Y\n");
  ProbeOptions options;
  options.root = root.path();
  options.run_qemu = false;
  options.cpuid = snp_cpu();
  HostProbe probe = probe_host(options);
  EXPECT_TRUE(probe.dev_kvm);
  EXPECT_TRUE(probe.dev_sev);
  EXPECT_EQ(probe.kvm_amd_sev_snp, true);
  EXPECT_EQ(probe.kvm_intel_tdx, std::nullopt);
  // Pretend QEMU 9.2 answered.
  probe.qemu.runs = true;
  probe.qemu.version = QemuVersion{9, 2, 0, ""};
  probe.qemu.has_sev_snp_guest = true;
  probe.qemu.has_memory_backend_memfd = true;
  EXPECT_TRUE(check_tee_available(probe, Tee::kSnp, false).ok());
  auto tdx = check_tee_available(probe, Tee::kTdx, false);
  ASSERT_FALSE(tdx.ok());
  EXPECT_EQ(tdx.error().code, "vmm.tee_unavailable");
  EXPECT_NE(tdx.error().message.find("kvm_intel not loaded"), std::string::npos);
  EXPECT_NE(tdx.error().message.find("QEMU 9.2.0 has no tdx-guest object (needs >= 10.1)"),
            std::string::npos);
}

TEST(Probe, FakeHostSaysExactlyWhatIsMissingForSnp) {
  testing::TempDir root;
  make_file(root.path() + "/sys/module/kvm_amd/parameters/sev_snp", "N\n");
  make_file(root.path() + "/sys/module/kvm_intel/parameters/tdx", "1\n");
  make_file(root.path() + "/dev/kvm");
  ProbeOptions options;
  options.root = root.path();
  options.run_qemu = false;
  options.cpuid = decode_amd_sev_cpuid(0x80000008u, 0, 0);
  HostProbe probe = probe_host(options);
  probe.qemu.runs = true;
  probe.qemu.version = QemuVersion{7, 2, 0, ""};
  probe.qemu.has_memory_backend_memfd = true;
  auto snp = check_tee_available(probe, Tee::kSnp, false);
  ASSERT_FALSE(snp.ok());
  EXPECT_EQ(snp.error().code, "vmm.tee_unavailable");
  EXPECT_EQ(snp.error().message,
            "SEV-SNP unavailable: /dev/sev missing; kvm_amd sev_snp=N; CPU has no CPUID leaf "
            "0x8000001F; QEMU 7.2.0 has no sev-snp-guest object (needs >= 9.1)");
  EXPECT_EQ(probe.kvm_intel_tdx, true);
}

TEST(Probe, TeeNoneNeedsTheInsecureOptIn) {
  HostProbe probe;
  probe.qemu.runs = true;
  auto refused = check_tee_available(probe, Tee::kNone, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "vmm.tee_unavailable");
  EXPECT_NE(refused.error().message.find("allow_insecure_tee"), std::string::npos);
  EXPECT_TRUE(check_tee_available(probe, Tee::kNone, true).ok());
}

TEST(Probe, MissingQemuBinaryIsReported) {
  testing::TempDir root;
  ProbeOptions options;
  options.root = root.path();
  options.qemu_binary = root.path() + "/no-such-qemu";
  options.cpuid = snp_cpu();
  HostProbe probe = probe_host(options);
  EXPECT_FALSE(probe.qemu.runs);
  EXPECT_NE(probe.qemu.error.find("vmm.supervisor.argv"), std::string::npos);
  auto none = check_tee_available(probe, Tee::kNone, true);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("does not run"), std::string::npos);
}

// This machine, for real: Debian 12, QEMU 7.2 under TCG, no /dev/kvm.
// What the probe concludes must follow from what this host has, whichever host runs the test
// (with or without /dev/kvm): Debian 12's QEMU 7.2 has no sev-snp-guest or tdx-guest object,
// so neither TEE is available here, and /dev/kvm is reported exactly when it exists.
TEST(ProbeThisHost, ConclusionsFollowWhatTheHostHas) {
  HostProbe probe = probe_host("/usr/bin/qemu-system-x86_64");
  ASSERT_TRUE(probe.qemu.runs) << probe.qemu.error;
  EXPECT_EQ(probe.qemu.version.major, 7);
  EXPECT_EQ(probe.qemu.version.minor, 2);
  EXPECT_TRUE(probe.qemu.has_memory_backend_memfd);
  EXPECT_FALSE(probe.qemu.has_sev_snp_guest);
  EXPECT_FALSE(probe.qemu.has_tdx_guest);
  const bool kvm_here = std::filesystem::exists("/dev/kvm");
  EXPECT_EQ(probe.dev_kvm, kvm_here);
  EXPECT_EQ(probe.dev_vhost_net, std::filesystem::exists("/dev/vhost-net"));
  EXPECT_EQ(probe.dev_net_tun, std::filesystem::exists("/dev/net/tun"));
  auto snp = check_tee_available(probe, Tee::kSnp, false);
  ASSERT_FALSE(snp.ok());
  EXPECT_EQ(snp.error().message.find("/dev/kvm missing") != std::string::npos, !kvm_here)
      << snp.error().message;
  EXPECT_NE(snp.error().message.find("has no sev-snp-guest object (needs >= 9.1)"),
            std::string::npos);
  auto tdx = check_tee_available(probe, Tee::kTdx, false);
  ASSERT_FALSE(tdx.ok());
  EXPECT_EQ(tdx.error().message.find("/dev/kvm missing") != std::string::npos, !kvm_here)
      << tdx.error().message;
  EXPECT_TRUE(check_tee_available(probe, Tee::kNone, true).ok());

  json j = to_json(probe);
  EXPECT_EQ(j["kvm"], kvm_here);
  EXPECT_EQ(j["qemu"]["version"], probe.qemu.version.to_string());
  EXPECT_EQ(j["qemu"]["memory_backend_memfd"], true);
  EXPECT_EQ(j["tee"]["snp"]["available"], false);
  EXPECT_EQ(j["tee"]["snp"]["missing"], snp.error().message);
  EXPECT_EQ(j["tee"]["tdx"]["available"], false);
}

}  // namespace
}  // namespace confpod::vmm
