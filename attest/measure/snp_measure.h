// Expected AMD SEV-SNP launch digest (the report's MEASUREMENT) of a guest launched by QEMU or
// EC2 from an OVMF image, optionally with -kernel/-initrd/-append measured through the SEV
// hashes table (QEMU kernel-hashes=on).
//
// The digest follows AMD's SEV-SNP firmware ABI (SNP_LAUNCH_UPDATE, PAGE_INFO) and is
// bit-exact with the public sev-snp-measure tool (virtee): every page the VMM adds before
// SNP_LAUNCH_FINISH chains
//     LD' = SHA-384(PAGE_INFO{ LD, contents digest, 0x70, page type, imi 0, vmpl perms 0, GPA })
// in this order: the OVMF image (normal pages ending at 4 GiB); the OVMF SEV metadata
// sections (zero, secrets, CPUID, kernel-hashes pages); one VMSA page per vCPU.
// See docs/measure.md for the details and the sources.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/measure/ovmf.h"

namespace confpod::measure {

// Error codes:
//   "measure.ovmf"                bad/truncated OVMF image, table, SEV metadata or reset block
//   "measure.ovmf.kernel_hashes"  a kernel was given but the OVMF cannot measure one
//   "measure.params"              vCPU count/type, VMM type or guest features unusable

// --- Parameters ---------------------------------------------------------------------------

enum class VmmType { kQemu, kEc2 };

// "qemu" or "ec2" (any case).
Result<VmmType> parse_vmm_type(std::string_view name);
std::string_view to_string(VmmType vmm);

// The CPUID Fn0000_0001_EAX family/model/stepping signature (AMD pub. 25481), which the
// VMM puts in RDX of the initial VMSA.
constexpr std::uint32_t cpu_signature(std::uint32_t family, std::uint32_t model,
                                      std::uint32_t stepping) {
  const std::uint32_t family_low = family > 0xf ? 0xf : family;
  const std::uint32_t family_ext = family > 0xf ? (family - 0xf) & 0xff : 0;
  return (family_ext << 20) | (((model >> 4) & 0xf) << 16) | (family_low << 8) |
         ((model & 0xf) << 4) | (stepping & 0xf);
}

// The signature of a QEMU -cpu model name (EPYC, EPYC-v4, EPYC-Rome, EPYC-Milan-v2,
// EPYC-Genoa, EPYC-Turin, ...; case-insensitive). Error "measure.params" for other names.
Result<std::uint32_t> vcpu_signature(std::string_view qemu_cpu_model);
// Every model name vcpu_signature() accepts, in canonical spelling.
std::vector<std::string_view> known_vcpu_types();

inline constexpr std::uint32_t kMaxVcpus = 4096;

struct SnpParams {
  std::uint32_t vcpus = 1;
  std::uint32_t vcpu_signature = 0;    // from vcpu_signature()
  std::uint64_t guest_features = 0x1;  // VMSA SEV_FEATURES; bit 0 SNPActive must be set
  VmmType vmm = VmmType::kQemu;
};

// --- OVMF --------------------------------------------------------------------------------

enum class SevSectionType : std::uint32_t {
  kSnpSecMemory = 1,        // pre-validated memory: measured as zero pages
  kSnpSecrets = 2,          // the secrets page
  kCpuid = 3,               // the CPUID page
  kSvsmCaa = 4,             // SVSM calling area: zero pages
  kSnpKernelHashes = 0x10,  // the page holding the SEV hashes table
};

struct SevMetadataSection {
  std::uint32_t gpa = 0;
  std::uint32_t size = 0;
  SevSectionType type = SevSectionType::kSnpSecMemory;
};

// What a launch digest needs from an OVMF image besides its bytes.
struct OvmfSevInfo {
  std::uint64_t image_size = 0;
  std::uint64_t gpa = 0;                     // the image is mapped to end at 4 GiB
  std::uint32_t ap_reset_eip = 0;            // SEV-ES reset block: where APs start
  std::uint32_t hashes_table_gpa = 0;        // SEV hashes table area; 0 when the image has none
  std::uint32_t hashes_table_size = 0;       // its size, when the entry gives one
  std::vector<SevMetadataSection> sections;  // in metadata order

  bool has_section(SevSectionType type) const;
};

// Parses the OVMF table, the SEV metadata ("ASEV", version 1) and the SEV-ES reset block.
// Does not require the image to be page-sized (so it can be fuzzed on any input).
Result<OvmfSevInfo> parse_ovmf_sev(ByteView ovmf);

// --- Kernel hashes (QEMU -kernel with kernel-hashes=on) -----------------------------------

// SHA-256 of the kernel, the initrd (empty when none is given) and the command line
// including its terminating NUL (just the NUL when none is given).
struct KernelHashes {
  Sha256Digest kernel{};
  Sha256Digest initrd{};
  Sha256Digest cmdline{};
};

Sha256Digest cmdline_sha256(std::string_view append);
KernelHashes kernel_hashes(ByteView kernel, ByteView initrd, std::string_view append);

// The SEV hashes table as QEMU writes it: header GUID 9438d606-4f22-4cc9-b479-a793d411fd21,
// u16 length 168, then {GUID, u16 50, SHA-256} for cmdline, initrd and kernel, zero-padded
// to a multiple of 16 (176 bytes).
inline constexpr std::size_t kSevHashesTableSize = 176;
std::array<std::uint8_t, kSevHashesTableSize> sev_hashes_table(const KernelHashes& hashes);

// --- VMSA ----------------------------------------------------------------------------------

struct VmsaSegment {
  std::uint16_t selector = 0;
  std::uint16_t attrib = 0;
  std::uint32_t limit = 0;
  std::uint64_t base = 0;
};

// The registers a VMM sets in an initial SEV-ES save area; every other byte of the page is 0.
struct VmsaRegisters {
  VmsaSegment es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;
  std::uint64_t efer = 0, cr4 = 0, cr0 = 0, dr7 = 0, dr6 = 0, rflags = 0, rip = 0;
  std::uint64_t g_pat = 0, rdx = 0, sev_features = 0, xcr0 = 0;
  std::uint32_t mxcsr = 0;
  std::uint16_t x87_fcw = 0;
};

inline constexpr std::uint64_t kBspResetEip = 0xfffffff0;
using VmsaPage = std::array<std::uint8_t, 4096>;

// Reset state of a vCPU starting at `eip` as the VMM of `params.vmm` builds it.
VmsaRegisters initial_vmsa_registers(std::uint64_t eip, const SnpParams& params);
// The 4 KiB save area (AMD APM vol. 2, table B-4 layout).
VmsaPage encode_vmsa(const VmsaRegisters& regs);

// --- The digest ----------------------------------------------------------------------------

enum class SnpPageType : std::uint8_t {
  kNormal = 1,
  kVmsa = 2,
  kZero = 3,
  kUnmeasured = 4,
  kSecrets = 5,
  kCpuid = 6,
};

// The running launch digest (the PSP's guest context LD), one PAGE_INFO per 4 KiB page.
class SnpLaunchDigest {
 public:
  SnpLaunchDigest() = default;  // 48 zero bytes, as at SNP_LAUNCH_START
  explicit SnpLaunchDigest(const Sha384Digest& resume) : ld_(resume) {}

  void update(SnpPageType type, std::uint64_t gpa, const Sha384Digest& contents);
  // `data.size()` must be a multiple of 4096 (callers check); each page is hashed.
  void add_normal_pages(std::uint64_t gpa, ByteView data);
  void add_zero_pages(std::uint64_t gpa, std::uint64_t size);
  void add_unmeasured_pages(std::uint64_t gpa, std::uint64_t size);
  void add_secrets_page(std::uint64_t gpa);
  void add_cpuid_page(std::uint64_t gpa);
  void add_vmsa_page(const VmsaPage& page);

  const Sha384Digest& value() const { return ld_; }

 private:
  Sha384Digest ld_{};
};

// The digest of the OVMF image pages alone (sev-snp-measure "snp:ovmf-hash"): the costly,
// per-firmware part, from which snp_launch_digest_from() resumes. Error "measure.ovmf" when
// the image is empty, not a multiple of 4 KiB or larger than 4 GiB.
Result<Sha384Digest> snp_ovmf_digest(ByteView ovmf);

// Continues from snp_ovmf_digest(): metadata pages, then the VMSAs. `kernel` absent means no
// -kernel (the hashes page, if the firmware has one, is measured as a zero page).
Result<Sha384Digest> snp_launch_digest_from(const Sha384Digest& ovmf_digest,
                                            const OvmfSevInfo& ovmf,
                                            const std::optional<KernelHashes>& kernel,
                                            const SnpParams& params);

// The whole launch digest.
Result<Sha384Digest> snp_launch_digest(ByteView ovmf, const std::optional<KernelHashes>& kernel,
                                       const SnpParams& params);

}  // namespace confpod::measure
