#include "attest/measure/snp_measure.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace confpod::measure {

namespace {

constexpr const char* kOvmf = "measure.ovmf";
constexpr const char* kParams = "measure.params";
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kFourGiB = 0x100000000ull;
// Guest-physical address the PSP records for VMSA pages: (u64)-1, page aligned, bits above
// 51 cleared.
constexpr std::uint64_t kVmsaGpa = 0xFFFFFFFFF000ull;
// The SEV metadata of real firmware covers well under 1 MiB; this bound keeps a hostile
// image from asking for billions of page updates.
constexpr std::uint64_t kMaxMetadataBytes = 256ull << 20;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct CpuModel {
  std::string_view name;
  std::uint32_t signature;
};

// QEMU's builtin x86 model names for AMD EPYC, as sev-snp-measure lists them. Versions of a
// model keep its family/model/stepping.
constexpr CpuModel kCpuModels[] = {
    {"EPYC", cpu_signature(23, 1, 2)},           {"EPYC-v1", cpu_signature(23, 1, 2)},
    {"EPYC-v2", cpu_signature(23, 1, 2)},        {"EPYC-IBPB", cpu_signature(23, 1, 2)},
    {"EPYC-v3", cpu_signature(23, 1, 2)},        {"EPYC-v4", cpu_signature(23, 1, 2)},
    {"EPYC-Rome", cpu_signature(23, 49, 0)},     {"EPYC-Rome-v1", cpu_signature(23, 49, 0)},
    {"EPYC-Rome-v2", cpu_signature(23, 49, 0)},  {"EPYC-Rome-v3", cpu_signature(23, 49, 0)},
    {"EPYC-Milan", cpu_signature(25, 1, 1)},     {"EPYC-Milan-v1", cpu_signature(25, 1, 1)},
    {"EPYC-Milan-v2", cpu_signature(25, 1, 1)},  {"EPYC-Genoa", cpu_signature(25, 17, 0)},
    {"EPYC-Genoa-v1", cpu_signature(25, 17, 0)}, {"EPYC-Turin", cpu_signature(26, 0, 0)},
};

std::string_view section_name(SevSectionType type) {
  switch (type) {
    case SevSectionType::kSnpSecMemory:
      return "SNP_SEC_MEMORY";
    case SevSectionType::kSnpSecrets:
      return "SNP_SECRETS";
    case SevSectionType::kCpuid:
      return "CPUID";
    case SevSectionType::kSvsmCaa:
      return "SVSM_CAA";
    case SevSectionType::kSnpKernelHashes:
      return "SNP_KERNEL_HASHES";
  }
  return "?";
}

void store_le16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
void store_le32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void store_le64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

Status check_params(const SnpParams& params) {
  if (params.vcpus == 0 || params.vcpus > kMaxVcpus)
    return make_error(kParams, "vCPU count " + std::to_string(params.vcpus) + " is outside 1.." +
                                   std::to_string(kMaxVcpus));
  if ((params.guest_features & 1) == 0)
    return make_error(kParams, "guest features " + hex_number(params.guest_features) +
                                   " lack bit 0 (SNPActive), which every SNP VMSA has");
  return ok_status();
}

Result<SevMetadataSection> parse_section(ByteView item, std::size_t index) {
  SevMetadataSection s;
  s.gpa = load_le32(item.data());
  s.size = load_le32(item.data() + 4);
  const std::uint32_t type = load_le32(item.data() + 8);
  const std::string where = "SEV metadata section " + std::to_string(index);
  switch (type) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 0x10:
      s.type = static_cast<SevSectionType>(type);
      break;
    default:
      return make_error(kOvmf, where + " has unknown type " + hex_number(type));
  }
  if (s.gpa % kPage != 0 || s.size % kPage != 0 || s.size == 0)
    return make_error(kOvmf, where + " (" + std::string(section_name(s.type)) + ") at " +
                                 hex_number(s.gpa) + " size " + hex_number(s.size) +
                                 " is not a non-empty run of whole 4 KiB pages");
  if ((s.type == SevSectionType::kSnpSecrets || s.type == SevSectionType::kCpuid) &&
      s.size != kPage)
    return make_error(kOvmf, where + " (" + std::string(section_name(s.type)) + ") has size " +
                                 hex_number(s.size) + ", expected one page (0x1000)");
  return s;
}

}  // namespace

// --- Parameters ---------------------------------------------------------------------------

Result<VmmType> parse_vmm_type(std::string_view name) {
  const std::string n = lower(name);
  if (n == "qemu") return VmmType::kQemu;
  if (n == "ec2") return VmmType::kEc2;
  return make_error(kParams, "unknown VMM type '" + std::string(name) + "' (expected qemu or ec2)");
}

std::string_view to_string(VmmType vmm) { return vmm == VmmType::kEc2 ? "ec2" : "qemu"; }

Result<std::uint32_t> vcpu_signature(std::string_view qemu_cpu_model) {
  const std::string wanted = lower(qemu_cpu_model);
  for (const CpuModel& m : kCpuModels)
    if (lower(m.name) == wanted) return m.signature;
  std::string known;
  for (const CpuModel& m : kCpuModels) known += (known.empty() ? "" : ", ") + std::string(m.name);
  return make_error(
      kParams, "unknown vCPU type '" + std::string(qemu_cpu_model) + "' (known: " + known + ")");
}

std::vector<std::string_view> known_vcpu_types() {
  std::vector<std::string_view> out;
  for (const CpuModel& m : kCpuModels) out.push_back(m.name);
  return out;
}

// --- OVMF --------------------------------------------------------------------------------

bool OvmfSevInfo::has_section(SevSectionType type) const {
  return std::any_of(sections.begin(), sections.end(),
                     [type](const SevMetadataSection& s) { return s.type == type; });
}

Result<OvmfSevInfo> parse_ovmf_sev(ByteView ovmf) {
  CONFPOD_ASSIGN_OR_RETURN(OvmfTable table, parse_ovmf_table(ovmf, kOvmf));
  OvmfSevInfo info;
  info.image_size = ovmf.size();
  info.gpa = ovmf.size() <= kFourGiB ? kFourGiB - ovmf.size() : 0;
  CONFPOD_ASSIGN_OR_RETURN(info.ap_reset_eip,
                           table.u32(kSevEsResetBlockGuid, "SEV-ES reset block", kOvmf));

  if (const OvmfTableEntry* rv = table.find(kSevHashTableRvGuid)) {
    if (rv->data.size() < 4)
      return make_error(kOvmf, "SEV hashes table entry has " + std::to_string(rv->data.size()) +
                                   " data bytes, expected at least 4");
    info.hashes_table_gpa = load_le32(rv->data.data());
    if (rv->data.size() >= 8) info.hashes_table_size = load_le32(rv->data.data() + 4);
  }

  const OvmfTableEntry* meta = table.find(kSevMetadataGuid);
  if (meta == nullptr) return info;  // a firmware without SEV metadata measures only itself
  if (meta->data.size() < 4)
    return make_error(kOvmf, "SEV metadata entry has " + std::to_string(meta->data.size()) +
                                 " data bytes, expected 4");
  const std::uint32_t from_end = load_le32(meta->data.data());
  if (from_end > ovmf.size() || from_end < 16)
    return make_error(kOvmf, "SEV metadata offset " + hex_number(from_end) +
                                 " from the end does not fit the " + std::to_string(ovmf.size()) +
                                 "-byte image");
  const std::size_t start = ovmf.size() - from_end;
  ByteView header = ovmf.subspan(start, 16);
  if (std::memcmp(header.data(), "ASEV", 4) != 0)
    return make_error(
        kOvmf, "SEV metadata at offset " + std::to_string(start) + " lacks the 'ASEV' signature");
  const std::uint32_t length = load_le32(header.data() + 4);
  const std::uint32_t version = load_le32(header.data() + 8);
  const std::uint32_t count = load_le32(header.data() + 12);
  if (version != 1)
    return make_error(kOvmf, "SEV metadata version " + std::to_string(version) + " (expected 1)");
  if (length > from_end)
    return make_error(
        kOvmf, "SEV metadata length " + std::to_string(length) + " runs past the end of the image");
  if (length < 16 || (length - 16) / 12 < count)
    return make_error(kOvmf, "SEV metadata length " + std::to_string(length) + " cannot hold " +
                                 std::to_string(count) + " 12-byte section descriptors");
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    CONFPOD_ASSIGN_OR_RETURN(SevMetadataSection s,
                             parse_section(ovmf.subspan(start + 16 + 12 * i, 12), i));
    total += s.size;
    if (total > kMaxMetadataBytes)
      return make_error(kOvmf, "SEV metadata sections cover more than " +
                                   std::to_string(kMaxMetadataBytes >> 20) +
                                   " MiB; refusing an implausible firmware");
    info.sections.push_back(s);
  }
  return info;
}

// --- Kernel hashes ---------------------------------------------------------------------------

Sha256Digest cmdline_sha256(std::string_view append) {
  std::string with_nul(append);
  with_nul.push_back('\0');
  return sha256_of(as_bytes(with_nul));
}

KernelHashes kernel_hashes(ByteView kernel, ByteView initrd, std::string_view append) {
  return KernelHashes{sha256_of(kernel), sha256_of(initrd), cmdline_sha256(append)};
}

std::array<std::uint8_t, kSevHashesTableSize> sev_hashes_table(const KernelHashes& hashes) {
  static constexpr Guid kHeader = guid("9438d606-4f22-4cc9-b479-a793d411fd21");
  static constexpr Guid kCmdline = guid("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");
  static constexpr Guid kInitrd = guid("44baf731-3a2f-4bd7-9af1-41e29169781d");
  static constexpr Guid kKernel = guid("4de79437-abd2-427f-b835-d5b172d2045b");
  constexpr std::uint16_t kEntrySize = 16 + 2 + 32;
  constexpr std::uint16_t kTableSize = 16 + 2 + 3 * kEntrySize;  // 168, before padding

  std::array<std::uint8_t, kSevHashesTableSize> t{};
  std::copy(kHeader.begin(), kHeader.end(), t.begin());
  store_le16(t.data() + 16, kTableSize);
  std::size_t at = 18;
  for (const auto& [g, digest] :
       {std::pair{kCmdline, hashes.cmdline}, std::pair{kInitrd, hashes.initrd},
        std::pair{kKernel, hashes.kernel}}) {
    std::copy(g.begin(), g.end(), t.begin() + static_cast<std::ptrdiff_t>(at));
    store_le16(t.data() + at + 16, kEntrySize);
    std::copy(digest.begin(), digest.end(), t.begin() + static_cast<std::ptrdiff_t>(at + 18));
    at += kEntrySize;
  }
  return t;
}

// --- VMSA ----------------------------------------------------------------------------------

VmsaRegisters initial_vmsa_registers(std::uint64_t eip, const SnpParams& params) {
  // Real-mode reset state (AMD APM vol. 2, 14.1.3) with the tweaks KVM applies; the VMMs
  // differ in a few descriptor type bits, RDX and the x87/SSE control words.
  const bool ec2 = params.vmm == VmmType::kEc2;
  VmsaRegisters r;
  r.es = {0, 0x93, 0xffff, 0};
  r.cs = {0xf000, static_cast<std::uint16_t>(ec2 && eip == kBspResetEip ? 0x9a : 0x9b), 0xffff,
          eip & 0xffff0000};
  r.ss = {0, static_cast<std::uint16_t>(ec2 ? 0x92 : 0x93), 0xffff, 0};
  r.ds = {0, 0x93, 0xffff, 0};
  r.fs = {0, 0x93, 0xffff, 0};
  r.gs = {0, 0x93, 0xffff, 0};
  r.gdtr = {0, 0, 0xffff, 0};
  r.idtr = {0, 0, 0xffff, 0};
  r.ldtr = {0, 0x82, 0xffff, 0};
  r.tr = {0, static_cast<std::uint16_t>(ec2 ? 0x83 : 0x8b), 0xffff, 0};
  r.efer = 0x1000;  // SVME, set by KVM
  r.cr4 = 0x40;     // MCE, set by KVM
  r.cr0 = 0x10;     // ET
  r.dr7 = 0x400;
  r.dr6 = 0xffff0ff0;
  r.rflags = 0x2;
  r.rip = eip & 0xffff;
  r.g_pat = 0x0007040600070406ull;  // PAT power-on value (APM vol. 2, A.3)
  // QEMU passes the CPUID signature in RDX; the EC2 hypervisor a fixed 0x600 (sev-snp-measure
  // since 2026-04; earlier tools used 0).
  r.rdx = ec2 ? 0x600 : params.vcpu_signature;
  r.sev_features = params.guest_features;
  r.xcr0 = 0x1;
  r.mxcsr = ec2 ? 0 : 0x1f80;
  r.x87_fcw = ec2 ? 0 : 0x37f;
  return r;
}

VmsaPage encode_vmsa(const VmsaRegisters& r) {
  VmsaPage page{};
  std::uint8_t* p = page.data();
  const VmsaSegment* segments[] = {&r.es, &r.cs,   &r.ss,   &r.ds,   &r.fs,
                                   &r.gs, &r.gdtr, &r.ldtr, &r.idtr, &r.tr};
  for (std::size_t i = 0; i < 10; ++i) {
    std::uint8_t* s = p + 16 * i;
    store_le16(s, segments[i]->selector);
    store_le16(s + 2, segments[i]->attrib);
    store_le32(s + 4, segments[i]->limit);
    store_le64(s + 8, segments[i]->base);
  }
  store_le64(p + 0x0d0, r.efer);
  store_le64(p + 0x148, r.cr4);
  store_le64(p + 0x158, r.cr0);
  store_le64(p + 0x160, r.dr7);
  store_le64(p + 0x168, r.dr6);
  store_le64(p + 0x170, r.rflags);
  store_le64(p + 0x178, r.rip);
  store_le64(p + 0x268, r.g_pat);
  store_le64(p + 0x310, r.rdx);
  store_le64(p + 0x3b0, r.sev_features);
  store_le64(p + 0x3e8, r.xcr0);
  store_le32(p + 0x408, r.mxcsr);
  store_le16(p + 0x410, r.x87_fcw);
  return page;
}

// --- The digest ----------------------------------------------------------------------------

void SnpLaunchDigest::update(SnpPageType type, std::uint64_t gpa, const Sha384Digest& contents) {
  // PAGE_INFO (SNP ABI, SNP_LAUNCH_UPDATE): digest so far, page contents digest, length 0x70,
  // page type, IMI page 0, VMPL3/2/1 permissions 0, reserved 0, GPA.
  std::array<std::uint8_t, 0x70> info{};
  std::copy(ld_.begin(), ld_.end(), info.begin());
  std::copy(contents.begin(), contents.end(), info.begin() + 48);
  store_le16(info.data() + 96, 0x70);
  info[98] = static_cast<std::uint8_t>(type);
  store_le64(info.data() + 104, gpa);
  ld_ = sha384_of(info);
}

void SnpLaunchDigest::add_normal_pages(std::uint64_t gpa, ByteView data) {
  for (std::size_t off = 0; off + kPage <= data.size(); off += kPage)
    update(SnpPageType::kNormal, gpa + off, sha384_of(data.subspan(off, kPage)));
}

void SnpLaunchDigest::add_zero_pages(std::uint64_t gpa, std::uint64_t size) {
  for (std::uint64_t off = 0; off < size; off += kPage) update(SnpPageType::kZero, gpa + off, {});
}

void SnpLaunchDigest::add_unmeasured_pages(std::uint64_t gpa, std::uint64_t size) {
  for (std::uint64_t off = 0; off < size; off += kPage)
    update(SnpPageType::kUnmeasured, gpa + off, {});
}

void SnpLaunchDigest::add_secrets_page(std::uint64_t gpa) {
  update(SnpPageType::kSecrets, gpa, {});
}

void SnpLaunchDigest::add_cpuid_page(std::uint64_t gpa) { update(SnpPageType::kCpuid, gpa, {}); }

void SnpLaunchDigest::add_vmsa_page(const VmsaPage& page) {
  update(SnpPageType::kVmsa, kVmsaGpa, sha384_of(page));
}

Result<Sha384Digest> snp_ovmf_digest(ByteView ovmf) {
  if (ovmf.empty() || ovmf.size() % kPage != 0 || ovmf.size() > kFourGiB)
    return make_error(kOvmf, "OVMF image is " + std::to_string(ovmf.size()) +
                                 " bytes; expected a non-zero multiple of 4096 up to 4 GiB");
  SnpLaunchDigest ld;
  ld.add_normal_pages(kFourGiB - ovmf.size(), ovmf);
  return ld.value();
}

Result<Sha384Digest> snp_launch_digest_from(const Sha384Digest& ovmf_digest,
                                            const OvmfSevInfo& ovmf,
                                            const std::optional<KernelHashes>& kernel,
                                            const SnpParams& params) {
  CONFPOD_TRY(check_params(params));
  if (kernel) {
    if (!ovmf.has_section(SevSectionType::kSnpKernelHashes))
      return make_error("measure.ovmf.kernel_hashes",
                        "a kernel was given but the OVMF SEV metadata has no SNP_KERNEL_HASHES "
                        "section (build OVMF from OvmfPkg/AmdSev to measure -kernel)");
    if (ovmf.hashes_table_gpa == 0)
      return make_error("measure.ovmf.kernel_hashes",
                        "a kernel was given but the OVMF has no SEV hashes table area (GUID " +
                            guid_to_string(kSevHashTableRvGuid) + " missing or zero)");
    if (ovmf.hashes_table_size != 0 && ovmf.hashes_table_size < kSevHashesTableSize)
      return make_error("measure.ovmf.kernel_hashes", "the OVMF's SEV hashes table area is " +
                                                          std::to_string(ovmf.hashes_table_size) +
                                                          " bytes, less than " +
                                                          std::to_string(kSevHashesTableSize));
    if ((ovmf.hashes_table_gpa & (kPage - 1)) + kSevHashesTableSize > kPage)
      return make_error("measure.ovmf.kernel_hashes", "SEV hashes table at " +
                                                          hex_number(ovmf.hashes_table_gpa) +
                                                          " would cross a page boundary");
  }
  if (ovmf.ap_reset_eip == 0 && params.vcpus > 1)
    return make_error(kOvmf,
                      "the OVMF SEV-ES reset block gives AP start address 0; APs cannot "
                      "start with " +
                          std::to_string(params.vcpus) + " vCPUs");

  SnpLaunchDigest ld(ovmf_digest);
  const bool ec2 = params.vmm == VmmType::kEc2;
  for (const SevMetadataSection& s : ovmf.sections) {
    switch (s.type) {
      case SevSectionType::kSnpSecMemory:
      case SevSectionType::kSvsmCaa:
        ld.add_zero_pages(s.gpa, s.size);
        break;
      case SevSectionType::kSnpSecrets:
        ld.add_secrets_page(s.gpa);
        break;
      case SevSectionType::kCpuid:
        if (!ec2) ld.add_cpuid_page(s.gpa);  // EC2 adds the CPUID page last
        break;
      case SevSectionType::kSnpKernelHashes:
        if (!kernel) {
          ld.add_zero_pages(s.gpa, s.size);
          break;
        }
        if (s.size != kPage || (ovmf.hashes_table_gpa & ~std::uint32_t(kPage - 1)) != s.gpa)
          return make_error("measure.ovmf.kernel_hashes",
                            "SNP_KERNEL_HASHES section at " + hex_number(s.gpa) + " size " +
                                hex_number(s.size) +
                                " is not the one page holding the SEV hashes " + "table at " +
                                hex_number(ovmf.hashes_table_gpa));
        {
          std::array<std::uint8_t, kPage> page{};
          const auto table = sev_hashes_table(*kernel);
          std::copy(
              table.begin(), table.end(),
              page.begin() + static_cast<std::ptrdiff_t>(ovmf.hashes_table_gpa & (kPage - 1)));
          ld.add_normal_pages(s.gpa, page);
        }
        break;
    }
  }
  if (ec2)
    for (const SevMetadataSection& s : ovmf.sections)
      if (s.type == SevSectionType::kCpuid) ld.add_cpuid_page(s.gpa);

  const VmsaPage bsp = encode_vmsa(initial_vmsa_registers(kBspResetEip, params));
  ld.add_vmsa_page(bsp);
  if (params.vcpus > 1) {
    // Every AP has the same save area: hash it once.
    const Sha384Digest ap =
        sha384_of(encode_vmsa(initial_vmsa_registers(ovmf.ap_reset_eip, params)));
    for (std::uint32_t i = 1; i < params.vcpus; ++i) ld.update(SnpPageType::kVmsa, kVmsaGpa, ap);
  }
  return ld.value();
}

Result<Sha384Digest> snp_launch_digest(ByteView ovmf, const std::optional<KernelHashes>& kernel,
                                       const SnpParams& params) {
  CONFPOD_TRY(check_params(params));
  CONFPOD_ASSIGN_OR_RETURN(OvmfSevInfo info, parse_ovmf_sev(ovmf));
  CONFPOD_ASSIGN_OR_RETURN(Sha384Digest firmware, snp_ovmf_digest(ovmf));
  return snp_launch_digest_from(firmware, info, kernel, params);
}

}  // namespace confpod::measure
