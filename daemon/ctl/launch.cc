#include "daemon/ctl/launch.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "attest/base/bytes.h"
#include "daemon/ctl/verify.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "vmm/accel_check.h"
#include "vmm/probe.h"
#include "vmm/qemu_argv.h"

namespace confpod::ctl {
namespace {

// The host defaults a packaged confpodd starts from (the paths packaging/ installs). The
// daemon reads the real values from /etc/confpod/confpod.toml; this preview does not need
// the files to exist, since it launches nothing.
spec::HostDefaults preview_host_defaults(vmm::Tee tee) {
  spec::HostDefaults host;
  host.firmware_snp = "/usr/share/confpod/firmware/OVMF.amdsev.fd";
  host.firmware_tdx = "/usr/share/confpod/firmware/OVMF.tdx.fd";
  host.kernel = "/usr/share/confpod/guest/vmlinuz";
  host.initrd = "/usr/share/confpod/guest/initrd.img";
  // What confpodd derives from the default [kbs] listen (127.0.0.1:8080) for guests on QEMU
  // user networking: part of the init-data, so of the bound digest.
  host.kbs_guest_url = "http://10.0.2.2:8080";
  if (tee == vmm::Tee::kNone) {
    // Only a development host runs tee "none", and then under TCG; the argv says so.
    host.accel = "tcg";
    host.allow_insecure_tee = true;
  }
  return host;
}

std::optional<vmm::Tee> tee_from_name(const std::string& name) {
  if (name == "none") return vmm::Tee::kNone;
  if (name == "snp") return vmm::Tee::kSnp;
  if (name == "tdx") return vmm::Tee::kTdx;
  return std::nullopt;
}

}  // namespace

int qemu_argv(const QemuArgvArgs& args, std::ostream& out, std::ostream& err) {
  auto text = read_text_file(args.spec);
  if (!text.ok()) {
    err << "error: " << text.error().describe() << "\n";
    return kExitUsage;
  }
  auto pod = spec::parse_pod_spec(*text);
  if (!pod.ok()) {
    err << "rejected: " << pod.error().describe() << "\n";
    return kExitRejected;
  }
  if (!args.tee_override.empty()) {
    auto tee = tee_from_name(args.tee_override);
    if (!tee) {
      err << "error: --tee must be none, snp or tdx, not '" << args.tee_override << "'\n";
      return kExitUsage;
    }
    pod->tee = *tee;
  }
  auto config = spec::vm_config_from_spec(*pod, preview_host_defaults(pod->tee));
  if (!config.ok()) {
    err << "rejected: " << config.error().describe() << "\n";
    return kExitRejected;
  }
  auto argv = vmm::qemu_argv(*config);
  if (!argv.ok()) {
    err << "rejected: " << argv.error().describe() << "\n";
    return kExitRejected;
  }
  for (const auto& arg : *argv) out << arg << "\n";
  if (pod->tee == vmm::Tee::kNone)
    err << "warning: tee \"none\" is INSECURE: the host can read this guest's memory\n";
  return kExitOk;
}

namespace {

// Which accelerator tee-none pods get, and why (vmm/accel_check.h).
nlohmann::json tee_none_accel(const HostProbeArgs& args, const vmm::HostProbe& probe) {
  if (!args.guest_kernel.empty() && !args.guest_initrd.empty()) {
    vmm::BootCheckOptions check;
    check.qemu_binary = args.qemu_binary;
    check.kernel = args.guest_kernel;
    check.initrd = args.guest_initrd;
    auto choice = vmm::choose_tee_none_accel(probe, check);
    return {{"accel", choice.accel}, {"reason", choice.reason}, {"source", "checked now"}};
  }
  const std::string cache = args.runtime_dir + "/tee-none-accel.json";
  std::ifstream in(cache);
  auto cached = nlohmann::json::parse(in, nullptr, false);
  if (cached.is_object() && cached.contains("accel"))
    return {{"accel", cached.value("accel", "")},
            {"reason", cached.value("reason", "")},
            {"source", "confpodd's check at start-up (" + cache + ")"}};
  if (!probe.dev_kvm) return {{"accel", "tcg"}, {"reason", "no /dev/kvm on this host"}};
  return {{"accel", "unknown"},
          {"reason",
           "/dev/kvm exists; confpodd boots a test guest at start-up to decide "
           "(or give --guest-kernel and --guest-initrd to check now)"}};
}

}  // namespace

int host_probe(const HostProbeArgs& args, std::ostream& out, std::ostream& /*err*/) {
  vmm::HostProbe probe = vmm::probe_host(args.qemu_binary);
  nlohmann::json j = vmm::to_json(probe);
  // to_json reports snp and tdx; "none" runs wherever QEMU does, and is always insecure.
  Status none = vmm::check_tee_available(probe, vmm::Tee::kNone, /*allow_insecure_none=*/true);
  j["tee"]["none"] = {{"available", none.ok()}, {"insecure", true}};
  if (!none.ok()) j["tee"]["none"]["missing"] = none.error().message;
  j["tee"]["none"]["accel"] = tee_none_accel(args, probe);
  out << j.dump(2) << "\n";
  return kExitOk;
}

}  // namespace confpod::ctl
