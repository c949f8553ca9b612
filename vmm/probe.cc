#include "vmm/probe.h"

#include <cpuid.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "vmm/supervisor.h"

namespace confpod::vmm {

namespace {

using json = nlohmann::json;

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// A kernel module boolean parameter: "Y"/"1" true, "N"/"0" false, absent nullopt.
std::optional<bool> read_bool_param(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string value;
  in >> value;
  if (value == "Y" || value == "y" || value == "1") return true;
  if (value == "N" || value == "n" || value == "0") return false;
  return std::nullopt;
}

std::string join_path(const std::string& root, const std::string& absolute) {
  if (root.empty() || root == "/") return absolute;
  return (root.back() == '/' ? root.substr(0, root.size() - 1) : root) + absolute;
}

bool has_type(const std::vector<std::string>& types, const std::string& name) {
  return std::binary_search(types.begin(), types.end(), name);
}

QemuProbe probe_qemu_once(const std::string& binary, const std::string& scratch_dir) {
  QemuProbe q;
  q.binary = binary;
  std::string base = scratch_dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp && *tmp ? tmp : "/tmp";
  }
  std::string dir_template = base + "/confpod-probe-XXXXXX";
  if (::mkdtemp(dir_template.data()) == nullptr) {
    q.error = "cannot create a scratch directory under " + base;
    return q;
  }
  std::string dir = dir_template;
  SupervisorOptions options;
  options.qmp_socket = dir + "/qmp.sock";
  options.pidfile = dir + "/qemu.pid";
  options.log_file = dir + "/qemu.log";
  options.qmp_timeout = std::chrono::seconds(20);
  // No machine, no devices, no display: just enough QEMU to answer QMP.
  options.argv = {binary,
                  "-machine",
                  "none",
                  "-nodefaults",
                  "-no-user-config",
                  "-display",
                  "none",
                  "-qmp",
                  "unix:" + options.qmp_socket + "," + kQmpServerOptions};
  auto sup = Supervisor::start(options);
  if (!sup.ok()) {
    q.error = sup.error().describe();
  } else {
    auto version = sup->qmp().query_version();
    auto types = sup->qmp().qom_list_types();
    if (!version.ok()) {
      q.error = version.error().describe();
    } else if (!types.ok()) {
      q.error = types.error().describe();
    } else {
      q.runs = true;
      q.version = *version;
      q.object_types = std::move(*types);
      q.has_sev_snp_guest = has_type(q.object_types, "sev-snp-guest");
      q.has_sev_guest = has_type(q.object_types, "sev-guest");
      q.has_tdx_guest = has_type(q.object_types, "tdx-guest");
      q.has_memory_backend_memfd = has_type(q.object_types, "memory-backend-memfd");
    }
    (void)sup->qmp().quit();
    if (!sup->wait_exit(std::chrono::seconds(5)).ok()) (void)sup->kill();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return q;
}

// The daemon probes once at start-up and refuses every pod of a TEE the probe found missing,
// so one transient failure (a QMP greeting late on a loaded host) must not decide for the
// daemon's whole life: try up to three times and keep every attempt's error.
QemuProbe probe_qemu(const std::string& binary, const std::string& scratch_dir) {
  constexpr int kAttempts = 3;
  std::string errors;
  for (int attempt = 1;; ++attempt) {
    QemuProbe q = probe_qemu_once(binary, scratch_dir);
    if (q.runs) return q;
    if (!errors.empty()) errors += "; ";
    errors += "attempt " + std::to_string(attempt) + ": " + q.error;
    if (attempt == kAttempts) {
      q.error = errors;
      return q;
    }
  }
}

}  // namespace

AmdSevCpuid decode_amd_sev_cpuid(std::uint32_t max_extended_leaf, std::uint32_t eax,
                                 std::uint32_t ebx) {
  AmdSevCpuid c;
  c.leaf_present = max_extended_leaf >= 0x8000001Fu;
  if (!c.leaf_present) return c;
  c.sme = eax & (1u << 0);
  c.sev = eax & (1u << 1);
  c.sev_es = eax & (1u << 3);
  c.sev_snp = eax & (1u << 4);
  c.cbitpos = ebx & 0x3f;
  c.reduced_phys_bits = (ebx >> 6) & 0x3f;
  return c;
}

AmdSevCpuid read_amd_sev_cpuid() {
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (max_ext >= 0x8000001Fu) __cpuid(0x8000001Fu, eax, ebx, ecx, edx);
  return decode_amd_sev_cpuid(max_ext, eax, ebx);
}

HostProbe probe_host(const std::string& qemu_binary) {
  ProbeOptions options;
  options.qemu_binary = qemu_binary;
  return probe_host(options);
}

HostProbe probe_host(const ProbeOptions& options) {
  HostProbe p;
  p.root = options.root;
  auto at = [&](const std::string& path) { return join_path(options.root, path); };
  p.dev_kvm = exists(at("/dev/kvm"));
  p.dev_sev = exists(at("/dev/sev"));
  p.dev_vhost_vsock = exists(at("/dev/vhost-vsock"));
  p.dev_vhost_net = exists(at("/dev/vhost-net"));
  p.dev_net_tun = exists(at("/dev/net/tun"));
  p.kvm_amd_loaded = exists(at("/sys/module/kvm_amd"));
  p.kvm_amd_sev_snp = read_bool_param(at("/sys/module/kvm_amd/parameters/sev_snp"));
  p.kvm_intel_loaded = exists(at("/sys/module/kvm_intel"));
  p.kvm_intel_tdx = read_bool_param(at("/sys/module/kvm_intel/parameters/tdx"));
  p.cpuid = options.cpuid ? *options.cpuid : read_amd_sev_cpuid();
  if (options.run_qemu) {
    p.qemu = probe_qemu(options.qemu_binary, options.scratch_dir);
  } else {
    p.qemu.binary = options.qemu_binary;
    p.qemu.error = "not probed";
  }
  return p;
}

json to_json(const HostProbe& p) {
  auto opt = [](const std::optional<bool>& b) -> json { return b ? json(*b) : json(nullptr); };
  json qemu = {
      {"binary", p.qemu.binary},
      {"runs", p.qemu.runs},
      {"version", p.qemu.runs ? json(p.qemu.version.to_string()) : json(nullptr)},
      {"package", p.qemu.version.package},
      {"sev_snp_guest", p.qemu.has_sev_snp_guest},
      {"sev_guest", p.qemu.has_sev_guest},
      {"tdx_guest", p.qemu.has_tdx_guest},
      {"memory_backend_memfd", p.qemu.has_memory_backend_memfd},
  };
  if (!p.qemu.error.empty()) qemu["error"] = p.qemu.error;
  json tees = json::object();
  for (Tee tee : {Tee::kSnp, Tee::kTdx}) {
    auto status = check_tee_available(p, tee, false);
    tees[to_string(tee)] = {{"available", status.ok()}};
    if (!status.ok()) tees[to_string(tee)]["missing"] = status.error().message;
  }
  return {
      {"root", p.root},
      {"kvm", p.dev_kvm},
      {"dev_sev", p.dev_sev},
      {"vhost_vsock", p.dev_vhost_vsock},
      {"vhost_net", p.dev_vhost_net},
      {"net_tun", p.dev_net_tun},
      {"kvm_amd", {{"loaded", p.kvm_amd_loaded}, {"sev_snp", opt(p.kvm_amd_sev_snp)}}},
      {"kvm_intel", {{"loaded", p.kvm_intel_loaded}, {"tdx", opt(p.kvm_intel_tdx)}}},
      {"cpuid_8000001f",
       {{"present", p.cpuid.leaf_present},
        {"sev", p.cpuid.sev},
        {"sev_es", p.cpuid.sev_es},
        {"sev_snp", p.cpuid.sev_snp},
        {"cbitpos", p.cpuid.cbitpos},
        {"reduced_phys_bits", p.cpuid.reduced_phys_bits}}},
      {"qemu", qemu},
      {"tee", tees},
  };
}

Status check_tee_available(const HostProbe& p, Tee tee, bool allow_insecure_none) {
  std::vector<std::string> missing;
  auto qemu_named = [&]() {
    return "QEMU " + (p.qemu.runs ? p.qemu.version.to_string() : p.qemu.binary);
  };
  if (!p.qemu.runs)
    missing.push_back("QEMU " + p.qemu.binary + " does not run (" + p.qemu.error + ")");
  std::string label;
  switch (tee) {
    case Tee::kNone:
      label = "TEE none";
      if (!allow_insecure_none) missing.push_back("it is insecure and allow_insecure_tee is off");
      break;
    case Tee::kSnp:
      label = "SEV-SNP";
      if (!p.dev_kvm) missing.push_back("/dev/kvm missing");
      if (!p.dev_sev) missing.push_back("/dev/sev missing");
      if (!p.kvm_amd_loaded)
        missing.push_back("kvm_amd not loaded");
      else if (!p.kvm_amd_sev_snp)
        missing.push_back("kvm_amd has no sev_snp parameter");
      else if (!*p.kvm_amd_sev_snp)
        missing.push_back("kvm_amd sev_snp=N");
      if (!p.cpuid.leaf_present)
        missing.push_back("CPU has no CPUID leaf 0x8000001F");
      else if (!p.cpuid.sev_snp)
        missing.push_back("CPU does not report SEV-SNP (CPUID 0x8000001F EAX bit 4)");
      if (p.qemu.runs && !p.qemu.has_sev_snp_guest)
        missing.push_back(qemu_named() + " has no sev-snp-guest object (needs >= " +
                          std::to_string(kQemuSnpMajor) + "." + std::to_string(kQemuSnpMinor) +
                          ")");
      if (p.qemu.runs && !p.qemu.has_memory_backend_memfd)
        missing.push_back(qemu_named() + " has no memory-backend-memfd object");
      break;
    case Tee::kTdx:
      label = "TDX";
      if (!p.dev_kvm) missing.push_back("/dev/kvm missing");
      if (!p.kvm_intel_loaded)
        missing.push_back("kvm_intel not loaded");
      else if (!p.kvm_intel_tdx)
        missing.push_back("kvm_intel has no tdx parameter");
      else if (!*p.kvm_intel_tdx)
        missing.push_back("kvm_intel tdx=N");
      if (p.qemu.runs && !p.qemu.has_tdx_guest)
        missing.push_back(qemu_named() +
                          " has no tdx-guest object (needs >= " + std::to_string(kQemuTdxMajor) +
                          "." + std::to_string(kQemuTdxMinor) + ")");
      if (p.qemu.runs && !p.qemu.has_memory_backend_memfd)
        missing.push_back(qemu_named() + " has no memory-backend-memfd object");
      break;
  }
  if (missing.empty()) return ok_status();
  std::string message = label + " unavailable: ";
  for (std::size_t i = 0; i < missing.size(); ++i) message += (i ? "; " : "") + missing[i];
  return make_error("vmm.tee_unavailable", message);
}

}  // namespace confpod::vmm
