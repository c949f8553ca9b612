#include "attest/measure/snp_measure.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/fixtures.h"

namespace confpod::measure {
namespace {

Bytes amd_sev() { return confpod::testing::read_fixture("snp/ovmf_AmdSev_suffix.bin"); }
Bytes ovmf_x64() { return confpod::testing::read_fixture("snp/ovmf_OvmfX64_suffix.bin"); }

constexpr std::uint32_t kEpycV4 = cpu_signature(23, 1, 2);

// "kernel /dev/null" in the README: kernel and initrd are empty files.
KernelHashes empty_kernel(std::string_view append = "") { return kernel_hashes({}, {}, append); }

SnpParams params(std::uint32_t vcpus, std::uint64_t features, VmmType vmm = VmmType::kQemu) {
  SnpParams p;
  p.vcpus = vcpus;
  p.vcpu_signature = kEpycV4;
  p.guest_features = features;
  p.vmm = vmm;
  return p;
}

std::string digest_hex(ByteView ovmf, const std::optional<KernelHashes>& kernel,
                       const SnpParams& p) {
  auto d = snp_launch_digest(ovmf, kernel, p);
  if (!d.ok()) return "error " + d.error().describe();
  return to_hex(*d);
}

// --- The virtee/sev test vectors of ../shared/fixtures/snp/README.md ------------------------

TEST(SnpMeasure, OvmfPagesDigestMatchesReadme) {
  auto d = snp_ovmf_digest(amd_sev());
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(to_hex(*d),
            "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a"
            "50da6d466b74");
}

TEST(SnpMeasure, SnpOnlyWithAppend) {
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel("console=ttyS0 loglevel=7"), params(1, 0x1)),
            "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e7"
            "06363b4b08fa");
}

TEST(SnpMeasure, DefaultWithAppend) {
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel("console=ttyS0 loglevel=7"), params(1, 0x21)),
            "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895df"
            "e778d0228977");
}

TEST(SnpMeasure, SnpOnlyNoAppend) {
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel(), params(1, 0x1)),
            "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a907939"
            "7fa3852819b5");
}

TEST(SnpMeasure, DefaultNoAppend) {
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel(), params(1, 0x21)),
            "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa4117"
            "9ef98a7ef198");
}

TEST(SnpMeasure, NoKernel) {
  EXPECT_EQ(digest_hex(amd_sev(), std::nullopt, params(1, 0x1)),
            "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d"
            "76e7c5df632d");
  EXPECT_EQ(digest_hex(amd_sev(), std::nullopt, params(1, 0x21)),
            "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9"
            "f22adbcd0e2b");
}

TEST(SnpMeasure, FourVcpus) {
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel(), params(4, 0x1)),
            "5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877"
            "c36e23046ad5");
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel(), params(4, 0x21)),
            "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698"
            "e2414a631942");
}

TEST(SnpMeasure, OvmfX64WithoutKernel) {
  EXPECT_EQ(digest_hex(ovmf_x64(), std::nullopt, params(1, 0x1)),
            "da0296de8193586a5512078dcd719eccecbd87e2b825ad4148c44f665dc87df21e5b49e21523a9ad993a"
            "fdb6a30b4005");
  EXPECT_EQ(digest_hex(ovmf_x64(), std::nullopt, params(1, 0x21)),
            "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b"
            "493d8a64c385");
}

TEST(SnpMeasure, OvmfX64RefusesKernel) {
  auto d = snp_launch_digest(ovmf_x64(), empty_kernel(), params(1, 0x21));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, "measure.ovmf.kernel_hashes");
  EXPECT_NE(d.error().message.find("SNP_KERNEL_HASHES"), std::string::npos);
}

// EC2. The README's vectors come from virtee/sev, whose EC2 VMSA has RDX = 0. sev-snp-measure
// changed EC2's RDX to 0x600 (commit 4a02bf0, "the rdx field in the VMSA used to be 0x0, but is
// now 0x600"), which is what the EC2 hypervisor does today and what we compute. Both are
// checked: the current values from sev-snp-measure's tests, and the README values by
// rebuilding the same chain with the old RDX through the public building blocks.
TEST(SnpMeasure, Ec2CurrentHypervisor) {
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel(), params(1, 0x21, VmmType::kEc2)),
            "0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1aa415db338033946ef93a"
            "a8278c0d67fb");
  EXPECT_EQ(digest_hex(amd_sev(), empty_kernel(), params(1, 0x1, VmmType::kEc2)),
            "0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd8811050dec"
            "7e24964e5056");
}

std::string ec2_with_rdx_zero(std::uint64_t features) {
  const Bytes ovmf = amd_sev();
  auto info = parse_ovmf_sev(ovmf);
  EXPECT_TRUE(info.ok());
  const SnpParams p = params(1, features, VmmType::kEc2);
  // Metadata pages as snp_launch_digest_from does them for EC2 (CPUID page last), then the
  // BSP VMSA with RDX 0.
  SnpLaunchDigest ld(*snp_ovmf_digest(ovmf));
  const auto table = sev_hashes_table(empty_kernel());
  for (const auto& s : info->sections) {
    switch (s.type) {
      case SevSectionType::kSnpSecMemory:
      case SevSectionType::kSvsmCaa:
        ld.add_zero_pages(s.gpa, s.size);
        break;
      case SevSectionType::kSnpSecrets:
        ld.add_secrets_page(s.gpa);
        break;
      case SevSectionType::kCpuid:
        break;
      case SevSectionType::kSnpKernelHashes: {
        Bytes page(4096, 0);
        std::copy(table.begin(), table.end(), page.begin() + (info->hashes_table_gpa & 0xfff));
        ld.add_normal_pages(s.gpa, page);
        break;
      }
    }
  }
  for (const auto& s : info->sections)
    if (s.type == SevSectionType::kCpuid) ld.add_cpuid_page(s.gpa);
  VmsaRegisters regs = initial_vmsa_registers(kBspResetEip, p);
  EXPECT_EQ(regs.rdx, 0x600u);
  regs.rdx = 0;
  ld.add_vmsa_page(encode_vmsa(regs));
  return to_hex(ld.value());
}

TEST(SnpMeasure, Ec2ReadmeVectorsWithOldRdx) {
  EXPECT_EQ(ec2_with_rdx_zero(0x1),
            "7d3756157c805bf6adf617064c8552e8c1688fa1c8756f11cbf56ba5d25c9270fb69c0505c1cbe1c5c66"
            "c0e34c6ed3be");
  EXPECT_EQ(ec2_with_rdx_zero(0x21),
            "6ae80856486b1396af8c82a40351d6ed76a20c785e9c7fa4ffa27c22d5d6313b4b3b458cd3c9968e6f89"
            "fb5d8450d7a6");
}

TEST(SnpMeasure, ResumingFromTheOvmfDigestGivesTheSameResult) {
  const Bytes ovmf = amd_sev();
  auto info = parse_ovmf_sev(ovmf);
  ASSERT_TRUE(info.ok());
  Sha384Digest seed{};
  auto seed_bytes = from_hex(
      "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d"
      "466b74");
  ASSERT_TRUE(seed_bytes.ok());
  std::copy(seed_bytes->begin(), seed_bytes->end(), seed.begin());
  auto d = snp_launch_digest_from(seed, *info, empty_kernel(), params(1, 0x21));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(to_hex(*d),
            "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa4117"
            "9ef98a7ef198");
}

// Cross-checks against sev-snp-measure itself (virtee/sev-snp-measure 8f2b337, run on the same
// inputs when this test was written): a real 2 MiB firmware with APs, and a non-empty kernel,
// initrd and command line.
TEST(SnpMeasure, DebianOvmfTwoMilanVcpus) {
  constexpr const char* kPath = "/usr/share/ovmf/OVMF.fd";
  if (!std::filesystem::exists(kPath)) GTEST_SKIP() << kPath << " not installed";
  auto image = read_file(kPath);
  ASSERT_TRUE(image.ok());
  ASSERT_EQ(to_hex(sha256_of(*image)),
            "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773")
      << "different OVMF.fd build";
  SnpParams p = params(2, 0x1);
  p.vcpu_signature = *vcpu_signature("EPYC-Milan");
  EXPECT_EQ(digest_hex(*image, std::nullopt, p),
            "a175292a4a09fcfb760c5bd80c93ed667dbaafce6247d0f21fc06638658b3ebf2804d3019e2abed05cb6"
            "a9efe0a7464e");
}

TEST(SnpMeasure, GeneratedKernelInitrdAndCmdline) {
  Bytes kernel(300000), initrd(500000);
  for (std::size_t i = 0; i < kernel.size(); ++i) kernel[i] = static_cast<std::uint8_t>(i * 31 + 7);
  for (std::size_t i = 0; i < initrd.size(); ++i) initrd[i] = static_cast<std::uint8_t>(i * 13 + 1);
  SnpParams p = params(3, 0x21);
  p.vcpu_signature = *vcpu_signature("EPYC-Genoa");
  EXPECT_EQ(digest_hex(amd_sev(), kernel_hashes(kernel, initrd, "root=/dev/vda console=ttyS0"), p),
            "4acff02dcd9edfd9f0e51f6bad034d738a444ade95332b8e66ee2c13b4d626558365ae275b28fdf20c85"
            "2658ec2fa093");
}

// --- Inputs that must change the digest -----------------------------------------------------

TEST(SnpMeasure, EveryInputChangesTheDigest) {
  const Bytes ovmf = amd_sev();
  const std::string base = digest_hex(ovmf, empty_kernel(), params(2, 0x1));
  ASSERT_EQ(base.size(), 96u);
  const Bytes one{0x01};
  EXPECT_NE(digest_hex(ovmf, kernel_hashes(one, {}, ""), params(2, 0x1)), base);
  EXPECT_NE(digest_hex(ovmf, kernel_hashes({}, one, ""), params(2, 0x1)), base);
  EXPECT_NE(digest_hex(ovmf, empty_kernel("quiet"), params(2, 0x1)), base);
  EXPECT_NE(digest_hex(ovmf, empty_kernel(), params(3, 0x1)), base);
  EXPECT_NE(digest_hex(ovmf, empty_kernel(), params(2, 0x3)), base);
  SnpParams milan = params(2, 0x1);
  milan.vcpu_signature = *vcpu_signature("EPYC-Milan");
  EXPECT_NE(digest_hex(ovmf, empty_kernel(), milan), base);
  Bytes flipped = ovmf;
  flipped[100] ^= 1;  // a byte outside the table: only the page hash changes
  EXPECT_NE(digest_hex(flipped, empty_kernel(), params(2, 0x1)), base);
}

TEST(SnpMeasure, VcpuSignatures) {
  EXPECT_EQ(*vcpu_signature("EPYC"), 0x00800f12u);
  EXPECT_EQ(*vcpu_signature("EPYC-v4"), 0x00800f12u);
  EXPECT_EQ(*vcpu_signature("epyc-v2"), 0x00800f12u);
  EXPECT_EQ(*vcpu_signature("EPYC-Rome"), 0x00830f10u);
  EXPECT_EQ(*vcpu_signature("EPYC-Milan"), 0x00a00f11u);
  EXPECT_EQ(*vcpu_signature("EPYC-Milan-v2"), 0x00a00f11u);
  EXPECT_EQ(*vcpu_signature("EPYC-Genoa"), 0x00a10f10u);
  EXPECT_EQ(*vcpu_signature("EPYC-Turin"), 0x00b00f00u);
  auto bad = vcpu_signature("Skylake-Server");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "measure.params");
  EXPECT_NE(bad.error().message.find("EPYC-Genoa"), std::string::npos);
  EXPECT_EQ(known_vcpu_types().size(), 16u);
}

TEST(SnpMeasure, VmmTypes) {
  EXPECT_EQ(*parse_vmm_type("qemu"), VmmType::kQemu);
  EXPECT_EQ(*parse_vmm_type("EC2"), VmmType::kEc2);
  auto bad = parse_vmm_type("gce");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "measure.params");
}

TEST(SnpMeasure, SevHashesTableLayout) {
  KernelHashes h;
  h.kernel.fill(0xAA);
  h.initrd.fill(0xBB);
  h.cmdline.fill(0xCC);
  const auto t = sev_hashes_table(h);
  EXPECT_EQ(to_hex(ByteView(t).first(18)), "06d63894224fc94cb479a793d411fd21a800");
  // cmdline entry first: GUID 97d02dd8-..., length 50, digest.
  EXPECT_EQ(to_hex(ByteView(t).subspan(18, 18)), "d82dd09720bd944caa78e7714d36ab2a3200");
  EXPECT_EQ(t[36], 0xCC);
  EXPECT_EQ(t[68 + 18], 0xBB);
  EXPECT_EQ(t[118 + 18], 0xAA);
  EXPECT_EQ(t[167], 0xAA);
  for (std::size_t i = 168; i < t.size(); ++i) EXPECT_EQ(t[i], 0) << i;
  // Command line digest includes the NUL terminator.
  EXPECT_EQ(to_hex(cmdline_sha256("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
}

TEST(SnpMeasure, VmsaLayout) {
  SnpParams p = params(1, 0x21);
  const VmsaPage bsp = encode_vmsa(initial_vmsa_registers(kBspResetEip, p));
  EXPECT_EQ(to_hex(ByteView(bsp).subspan(0x10, 16)), "00f09b00ffff00000000ffff00000000");
  EXPECT_EQ(load_le64(bsp.data() + 0x178), 0xfff0u);
  EXPECT_EQ(load_le64(bsp.data() + 0x310), 0x800f12u);
  EXPECT_EQ(load_le64(bsp.data() + 0x3b0), 0x21u);
  EXPECT_EQ(load_le32(bsp.data() + 0x408), 0x1f80u);
  EXPECT_EQ(load_le16(bsp.data() + 0x410), 0x37fu);
  // The AP starts at the reset block's EIP: CS base from the high half, RIP the low half.
  const VmsaPage ap = encode_vmsa(initial_vmsa_registers(0x80b004, p));
  EXPECT_EQ(load_le64(ap.data() + 0x18), 0x800000u);
  EXPECT_EQ(load_le64(ap.data() + 0x178), 0xb004u);
}

// --- Bad firmware and parameters --------------------------------------------------------------

TEST(SnpMeasure, ParsesAmdSevMetadata) {
  auto info = parse_ovmf_sev(amd_sev());
  ASSERT_TRUE(info.ok()) << info.error().describe();
  EXPECT_EQ(info->ap_reset_eip, 0x80b004u);
  EXPECT_EQ(info->hashes_table_gpa, 0x810c00u);
  EXPECT_EQ(info->hashes_table_size, 0x400u);
  ASSERT_EQ(info->sections.size(), 7u);
  EXPECT_EQ(info->sections[5].type, SevSectionType::kSnpKernelHashes);
  EXPECT_EQ(info->sections[5].gpa, 0x810000u);
  EXPECT_EQ(info->sections[2].type, SevSectionType::kSnpSecrets);
  EXPECT_EQ(info->gpa, 0xfffff000u);
}

TEST(SnpMeasure, RejectsBadParameters) {
  auto zero = snp_launch_digest(amd_sev(), std::nullopt, params(0, 0x1));
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().code, "measure.params");
  auto many = snp_launch_digest(amd_sev(), std::nullopt, params(kMaxVcpus + 1, 0x1));
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code, "measure.params");
  auto not_snp = snp_launch_digest(amd_sev(), std::nullopt, params(1, 0x20));
  ASSERT_FALSE(not_snp.ok());
  EXPECT_NE(not_snp.error().message.find("SNPActive"), std::string::npos);
}

Status error_of(const Bytes& image) {
  auto d = snp_launch_digest(image, std::nullopt, params(1, 0x1));
  if (d.ok()) return ok_status();
  return d.error();
}

TEST(SnpMeasure, RejectsBrokenFirmwareByName) {
  const Bytes good = amd_sev();
  // Truncations of every length: never a crash, always measure.ovmf.
  for (std::size_t n = 0; n < good.size(); n += 97) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    Status s = error_of(cut);
    ASSERT_FALSE(s.ok()) << n;
    EXPECT_EQ(s.error().code, "measure.ovmf") << n;
  }
  Bytes footer = good;
  footer[good.size() - 32 - 1] ^= 0xff;  // last byte of the footer GUID
  EXPECT_NE(error_of(footer).error().message.find("footer GUID"), std::string::npos);

  Bytes table_len = good;
  table_len[good.size() - 50] = 0xff;  // table length 0x88 -> 0xff: entries no longer line up
  table_len[good.size() - 49] = 0xff;
  EXPECT_EQ(error_of(table_len).error().code, "measure.ovmf");

  // The ASEV header sits 0x554 bytes from the end.
  const std::size_t asev = good.size() - 0x554;
  Bytes signature = good;
  signature[asev] = 'X';
  EXPECT_NE(error_of(signature).error().message.find("'ASEV'"), std::string::npos);
  Bytes version = good;
  version[asev + 8] = 2;
  EXPECT_NE(error_of(version).error().message.find("version 2"), std::string::npos);
  Bytes count = good;
  count[asev + 12] = 200;
  EXPECT_NE(error_of(count).error().message.find("cannot hold 200"), std::string::npos);
  Bytes type = good;
  type[asev + 16 + 8] = 9;  // first section's type
  EXPECT_NE(error_of(type).error().message.find("unknown type 0x9"), std::string::npos);
  Bytes unaligned = good;
  unaligned[asev + 16 + 4] = 0x10;  // first section's size 0x9010
  EXPECT_NE(error_of(unaligned).error().message.find("whole 4 KiB pages"), std::string::npos);
  Bytes huge = good;
  huge[asev + 16 + 7] = 0x7f;  // first section's size 0x7f009000
  EXPECT_NE(error_of(huge).error().message.find("implausible"), std::string::npos);
}

}  // namespace
}  // namespace confpod::measure
