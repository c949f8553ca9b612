#include "daemon/pods/measurement.h"

#include <cpuid.h>
#include <strings.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "attest/base/bytes.h"

namespace confpod::pods {

namespace {

// Firmware images are a few MiB; refuse to load anything absurd into memory.
constexpr std::size_t kMaxFirmwareBytes = 256u << 20;

// A file whose last change is this close to the moment it was hashed may have changed again
// within the same timestamp tick: its digest is not trusted on the next use.
constexpr std::int64_t kQuietNs = 1'000'000'000;

std::int64_t ns_of(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

bool same_time(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// QEMU takes the family/model/stepping of this CPU for "-cpu host", and for "-cpu max" when
// KVM runs the guest (host_cpu_max_instance_init).
bool uses_host_cpu(const vmm::VmConfig& vm) {
  const std::string model = effective_cpu_model(vm);
  return equals_ignoring_case(model, "host") ||
         (vm.accel == "kvm" && equals_ignoring_case(model, "max"));
}

// Errors from reading an input file become measure.input, naming which input it was.
Error input_error(std::string_view what, const Error& error) {
  return make_error("measure.input", std::string(what) + ": " + error.message);
}

}  // namespace

std::string effective_cpu_model(const vmm::VmConfig& vm) {
  if (!vm.cpu_model.empty()) return vm.cpu_model;
  return vm.accel == "kvm" ? "host" : "max";
}

std::uint32_t qemu_host_vcpu_signature(std::uint32_t eax) {
  const std::uint32_t family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
  const std::uint32_t model = ((eax >> 4) & 0xf) | ((eax & 0xf0000) >> 12);
  const std::uint32_t stepping = eax & 0xf;
  return measure::cpu_signature(family, model, stepping);
}

std::optional<std::uint32_t> read_cpuid_leaf1_eax() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return std::nullopt;
  return static_cast<std::uint32_t>(eax);
}

Result<measure::SnpParams> snp_params(const vmm::VmConfig& vm,
                                      std::optional<std::uint32_t> host_signature) {
  measure::SnpParams params;
  if (vm.vcpus < 1 || vm.vcpus > measure::kMaxVcpus) {
    return make_error("measure.params", "vcpus must be 1.." + std::to_string(measure::kMaxVcpus) +
                                            ", got " + std::to_string(vm.vcpus));
  }
  params.vcpus = vm.vcpus;
  if (uses_host_cpu(vm)) {
    if (!host_signature) {
      return make_error("measure.params", "-cpu " + effective_cpu_model(vm) +
                                              " gives the guest this CPU's signature, and CPUID "
                                              "leaf 1 cannot be read here");
    }
    params.vcpu_signature = *host_signature;
  } else {
    auto signature = measure::vcpu_signature(effective_cpu_model(vm));
    if (!signature.ok()) {
      return make_error("measure.params",
                        "cpu_model " + effective_cpu_model(vm) +
                            " has no known SEV-SNP vCPU signature (set cpu_model in confpod.toml "
                            "to host or a named EPYC model): " +
                            signature.error().message);
    }
    params.vcpu_signature = *signature;
  }
  // QEMU asks KVM for VMSA features only through sev-snp-guest options confpod never sets
  // (debug-swap, secure-tsc, ...); KVM adds SNPActive itself. The policy does not change them.
  params.guest_features = 0x1;
  params.vmm = measure::VmmType::kQemu;
  return params;
}

// ---------------------------------------------------------------------------------------------

Measurer::Measurer(std::optional<std::uint32_t> host_cpu_signature)
    : host_cpu_signature_(host_cpu_signature) {}

Result<std::uint32_t> Measurer::host_signature() {
  if (!host_cpu_signature_) {
    std::optional<std::uint32_t> eax = read_cpuid_leaf1_eax();
    if (!eax) return make_error("measure.params", "CPUID leaf 1 cannot be read on this CPU");
    host_cpu_signature_ = qemu_host_vcpu_signature(*eax);
  }
  return *host_cpu_signature_;
}

Result<measure::Sha256Digest> Measurer::file_digest(const std::string& path,
                                                    std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error("measure.input",
                      std::string(what) + ": cannot stat " + path + ": " + std::strerror(errno));
  }
  if (auto it = files_.find(path); it != files_.end()) {
    const FileDigest& known = it->second;
    const bool unchanged = known.dev == st.st_dev && known.ino == st.st_ino &&
                           known.size == st.st_size && same_time(known.mtime, st.st_mtim) &&
                           same_time(known.ctime, st.st_ctim);
    const bool quiet = ns_of(known.ctime) + kQuietNs <= ns_of(known.hashed_at) &&
                       ns_of(known.mtime) + kQuietNs <= ns_of(known.hashed_at);
    if (unchanged && quiet) {
      ++files_unchanged_;
      return known.digest;
    }
  }
  FileDigest entry;
  entry.dev = st.st_dev;
  entry.ino = st.st_ino;
  entry.size = st.st_size;
  entry.mtime = st.st_mtim;
  entry.ctime = st.st_ctim;
  ::clock_gettime(CLOCK_REALTIME, &entry.hashed_at);
  auto digest = measure::file_sha256(path);
  ++files_hashed_;
  if (!digest.ok()) return input_error(what, digest.error());
  entry.digest = *digest;
  files_.insert_or_assign(path, entry);
  return entry.digest;
}

Result<measure::Sha384Digest> Measurer::snp_digest(const vmm::VmConfig& vm) {
  if (vm.firmware.empty())
    return make_error("measure.input", "firmware: SEV-SNP needs an AmdSev OVMF build");
  std::optional<std::uint32_t> host;
  if (uses_host_cpu(vm)) {
    CONFPOD_ASSIGN_OR_RETURN(std::uint32_t signature, host_signature());
    host = signature;
  }
  measure::SnpMeasureKey key;
  CONFPOD_ASSIGN_OR_RETURN(key.params, snp_params(vm, host));
  CONFPOD_ASSIGN_OR_RETURN(key.ovmf, file_digest(vm.firmware, "firmware"));
  // QEMU with kernel-hashes=on fills the SEV hashes table from -kernel, -initrd and -append
  // (an absent initrd hashes as empty input, an absent -append as a lone NUL).
  if (vm.snp.kernel_hashes) {
    if (vm.kernel.empty()) {
      return make_error("measure.params",
                        "SEV-SNP kernel hashes need a guest kernel (guest_kernel in confpod.toml)");
    }
    measure::KernelHashes hashes;
    CONFPOD_ASSIGN_OR_RETURN(hashes.kernel, file_digest(vm.kernel, "kernel"));
    if (vm.initrd.empty()) {
      hashes.initrd = measure::sha256_of({});
    } else {
      CONFPOD_ASSIGN_OR_RETURN(hashes.initrd, file_digest(vm.initrd, "initrd"));
    }
    hashes.cmdline = measure::cmdline_sha256(vm.kernel_cmdline);
    key.kernel = hashes;
  }
  const std::string firmware = vm.firmware;
  return cache_.snp_launch_digest(key, [&firmware]() -> Result<Bytes> {
    auto bytes = read_file(firmware, kMaxFirmwareBytes);
    if (!bytes.ok()) return input_error("firmware", bytes.error());
    return bytes;
  });
}

Result<measure::Sha384Digest> Measurer::tdx_digest(const vmm::VmConfig& vm) {
  if (vm.firmware.empty()) return make_error("measure.input", "firmware: TDX needs a TDVF image");
  CONFPOD_ASSIGN_OR_RETURN(measure::Sha256Digest digest, file_digest(vm.firmware, "firmware"));
  const std::string firmware = vm.firmware;
  return cache_.tdx_mrtd(digest, [&firmware]() -> Result<Bytes> {
    auto bytes = read_file(firmware, kMaxFirmwareBytes);
    if (!bytes.ok()) return input_error("firmware", bytes.error());
    return bytes;
  });
}

Result<std::string> Measurer::measure(const vmm::VmConfig& vm) {
  switch (vm.tee) {
    case vmm::Tee::kNone:
      return std::string();
    case vmm::Tee::kSnp: {
      CONFPOD_ASSIGN_OR_RETURN(measure::Sha384Digest digest, snp_digest(vm));
      return to_hex(digest);
    }
    case vmm::Tee::kTdx: {
      CONFPOD_ASSIGN_OR_RETURN(measure::Sha384Digest digest, tdx_digest(vm));
      return to_hex(digest);
    }
  }
  return make_error("measure.params", "unknown TEE");
}

Measurer::Stats Measurer::stats() const {
  Stats s;
  s.cache = cache_.stats();
  s.files_hashed = files_hashed_;
  s.files_unchanged = files_unchanged_;
  return s;
}

}  // namespace confpod::pods
