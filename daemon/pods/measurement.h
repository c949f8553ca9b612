// Expected launch measurements of the pods confpodd launches (docs/measure.md, "Use in the
// product"): the SEV-SNP launch digest or the TDX MRTD of exactly the vmm::VmConfig a pod is
// started with, computed from the files that config hands QEMU.
//
// One Measurer per Manager (no globals). It owns the measure::MeasurementCache, keyed by the
// SHA-256 of every input file plus the launch parameters, and remembers each input file's
// SHA-256 beside its identity (device, inode, size, mtime, ctime): a relaunch with unchanged
// files costs one stat per file and a map lookup, and reads no file. A file whose last change
// is less than a second older than the moment it was hashed is hashed again on its next use
// (file timestamps are coarse: a same-size rewrite within one tick would otherwise go unseen).
//
// Error codes, every one "measure.*" (daemon/bus/errors.cc maps them to TeeUnavailable):
//   measure.input                 a firmware, kernel or initrd file cannot be read
//   measure.params                the -cpu model has no known SEV-SNP vCPU signature, kernel
//                                 hashes without a kernel, vCPU count out of range
//   measure.ovmf, measure.ovmf.kernel_hashes, measure.tdvf, measure.cache
//                                 from attest/measure: the firmware cannot be measured
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "attest/base/result.h"
#include "attest/measure/cache.h"
#include "attest/measure/snp_measure.h"
#include "vmm/config.h"

namespace confpod::pods {

// The -cpu model QEMU runs `vm` with, as vmm::qemu_argv spells it: cpu_model, else "host"
// with kvm and "max" otherwise.
std::string effective_cpu_model(const vmm::VmConfig& vm);

// The CPUID family/model/stepping signature QEMU gives a "-cpu host" guest (and a "-cpu max"
// guest under KVM): this CPU's leaf 1 decoded as QEMU's host_cpu_vendor_fms() does (family =
// base + extended family, model = base | extended model << 4, stepping), then encoded as for
// a named model (measure::cpu_signature).
std::uint32_t qemu_host_vcpu_signature(std::uint32_t cpuid_leaf1_eax);
// CPUID leaf 1 EAX of the CPU this runs on; nullopt when CPUID has no leaf 1.
std::optional<std::uint32_t> read_cpuid_leaf1_eax();

// The SNP launch parameters of `vm`: its vCPU count, the signature of its -cpu model (named
// models per measure::vcpu_signature; "host", and "max" under kvm, from `host_signature`),
// guest features 0x1 (SNPActive: confpod's QEMU command line requests no other VMSA feature)
// and QEMU as the VMM. Error measure.params for a model without a known signature.
Result<measure::SnpParams> snp_params(const vmm::VmConfig& vm,
                                      std::optional<std::uint32_t> host_signature);

class Measurer {
 public:
  // `host_cpu_signature`: what "-cpu host" gives a guest; nullopt reads this CPU (CPUID leaf 1)
  // the first time a pod needs it.
  explicit Measurer(std::optional<std::uint32_t> host_cpu_signature = std::nullopt);

  // The expected measurement of `vm`, lower-case hex: the SNP launch digest (tee snp), the
  // MRTD (tee tdx), "" for tee none.
  Result<std::string> measure(const vmm::VmConfig& vm);

  struct Stats {
    measure::MeasurementCache::Stats cache;  // hits: answered without computing
    std::size_t files_hashed = 0;            // input files read and hashed (file_sha256)
    std::size_t files_unchanged = 0;         // digests reused after a stat showed no change
  };
  Stats stats() const;

 private:
  struct FileDigest {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    timespec ctime{};
    timespec hashed_at{};  // CLOCK_REALTIME when hashing began
    measure::Sha256Digest digest{};
  };

  // The SHA-256 of the file at `path` (`what` names it in errors: "firmware", "kernel", ...).
  Result<measure::Sha256Digest> file_digest(const std::string& path, std::string_view what);
  Result<measure::Sha384Digest> snp_digest(const vmm::VmConfig& vm);
  Result<measure::Sha384Digest> tdx_digest(const vmm::VmConfig& vm);
  Result<std::uint32_t> host_signature();

  std::optional<std::uint32_t> host_cpu_signature_;
  measure::MeasurementCache cache_;
  std::map<std::string, FileDigest, std::less<>> files_;
  std::size_t files_hashed_ = 0;
  std::size_t files_unchanged_ = 0;
};

}  // namespace confpod::pods
