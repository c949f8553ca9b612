// Host probe: which confidential-VM technologies this host can run, and why not.
//
// Reads device nodes and module parameters under a configurable root (tests point it at a
// fake sysfs tree), CPUID leaf 0x8000001F for AMD SEV features, and asks the QEMU binary
// itself (QMP query-version + qom-list-types on a "-machine none" instance) which guest
// object types it has. Nothing here decides policy; check_tee_available() explains what is
// missing for one TEE in an error with code "vmm.tee_unavailable".
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "vmm/config.h"
#include "vmm/qmp.h"

namespace confpod::vmm {

// CPUID 0x8000001F (AMD memory encryption): EAX feature bits, EBX geometry.
struct AmdSevCpuid {
  bool leaf_present = false;            // max extended leaf >= 0x8000001F
  bool sme = false;                     // EAX bit 0
  bool sev = false;                     // EAX bit 1
  bool sev_es = false;                  // EAX bit 3
  bool sev_snp = false;                 // EAX bit 4
  std::uint32_t cbitpos = 0;            // EBX[5:0]
  std::uint32_t reduced_phys_bits = 0;  // EBX[11:6]
};

// Reads the real CPU's leaf (via <cpuid.h>).
AmdSevCpuid read_amd_sev_cpuid();
// Decodes raw register values (exposed for tests).
AmdSevCpuid decode_amd_sev_cpuid(std::uint32_t max_extended_leaf, std::uint32_t eax,
                                 std::uint32_t ebx);

struct QemuProbe {
  std::string binary;
  bool runs = false;  // started and answered QMP
  std::string error;  // why not, when !runs
  QemuVersion version;
  std::vector<std::string> object_types;  // qom-list-types, sorted
  bool has_sev_snp_guest = false;
  bool has_sev_guest = false;
  bool has_tdx_guest = false;
  bool has_memory_backend_memfd = false;
};

struct HostProbe {
  std::string root = "/";
  bool dev_kvm = false;                 // <root>/dev/kvm
  bool dev_sev = false;                 // <root>/dev/sev (AMD PSP driver, SNP firmware interface)
  bool dev_vhost_vsock = false;         // <root>/dev/vhost-vsock
  bool dev_vhost_net = false;           // <root>/dev/vhost-net (tap NICs use vhost=on)
  bool dev_net_tun = false;             // <root>/dev/net/tun (bridge networking needs taps)
  bool kvm_amd_loaded = false;          // <root>/sys/module/kvm_amd exists
  std::optional<bool> kvm_amd_sev_snp;  // parameters/sev_snp: Y/1 true, N/0 false; absent: nullopt
  bool kvm_intel_loaded = false;
  std::optional<bool> kvm_intel_tdx;  // parameters/tdx
  AmdSevCpuid cpuid;
  QemuProbe qemu;
};

struct ProbeOptions {
  std::string root = "/";  // prefix for /dev and /sys reads
  std::string qemu_binary = "/usr/bin/qemu-system-x86_64";
  bool run_qemu = true;              // false: skip starting QEMU (qemu.runs stays false)
  std::optional<AmdSevCpuid> cpuid;  // override the real CPUID (tests)
  std::string scratch_dir;           // where the probe QEMU's socket/log go; empty: $TMPDIR
};

HostProbe probe_host(const std::string& qemu_binary);
HostProbe probe_host(const ProbeOptions& options);

nlohmann::json to_json(const HostProbe& probe);

// Minimum QEMU versions for the guest object types.
inline constexpr int kQemuSnpMajor = 9, kQemuSnpMinor = 1;
inline constexpr int kQemuTdxMajor = 10, kQemuTdxMinor = 1;

// ok when `tee` can run here. kNone needs allow_insecure_none and a working QEMU. The error
// (vmm.tee_unavailable) lists every missing piece, e.g.
//   "SEV-SNP unavailable: /dev/kvm missing; /dev/sev missing; kvm_amd not loaded; ..."
Status check_tee_available(const HostProbe& probe, Tee tee, bool allow_insecure_none);

}  // namespace confpod::vmm
