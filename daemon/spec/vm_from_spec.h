// The glue from a pod spec to the machine that runs it: PodSpec + this host's defaults
// (confpod.toml) -> vmm::VmConfig, ready for vmm::qemu_argv or vmm::libvirt_domain_xml.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attest/base/result.h"
#include "daemon/spec/spec.h"
#include "vmm/config.h"

namespace confpod::spec {

// A pod's network as its VM and init-data see it (daemon/net fills it in from the pod's
// network and address; the defaults are QEMU user networking's: the guest is 10.0.2.15, the
// host, and its loopback, 10.0.2.2, QEMU's resolver 10.0.2.3).
struct PodNetwork {
  enum class Kind { kUser, kTap, kNone } kind = Kind::kUser;
  std::string tap;  // kTap: the host tap device
  std::string mac;  // kTap: the fixed MAC (the agent picks the interface by it)
  std::string address = "10.0.2.15/24";
  std::string gateway = "10.0.2.2";
  std::string address6;  // "" without IPv6
  std::string gateway6;
  std::vector<std::string> dns = {"10.0.2.3"};
  bool vhost = false;  // kTap: vhost-net (the host has /dev/vhost-net)
  bool operator==(const PodNetwork&) const = default;
};

// What the host decides (never the tenant): binaries, guest image, paths, SNP/TDX platform
// parameters. Filled from confpod.toml by the daemon.
struct HostDefaults {
  std::string qemu_binary = "/usr/bin/qemu-system-x86_64";
  // "auto": SEV-SNP and TDX pods on kvm, tee-none pods on `tee_none_accel` (what the daemon's
  // boot check found, vmm/accel_check.h); "kvm" or "tcg" for every pod.
  std::string accel = "auto";
  std::string tee_none_accel = "tcg";
  std::string cpu_model;      // empty: "host" with kvm, "max" with tcg
  std::string firmware_snp;   // AmdSev OVMF build (-bios)
  std::string firmware_tdx;   // TDVF (-bios)
  std::string firmware_none;  // optional; empty: QEMU's default firmware
  std::string kernel;         // guest kernel (direct boot)
  std::string initrd;         // guest initrd with the agent
  std::string kernel_cmdline = "console=ttyS0";
  std::string runtime_dir = "/run/confpod";  // per-pod files under <runtime_dir>/pods/<name>/
  std::uint32_t cbitpos = 51;                // CPUID 0x8000001F[EBX] on this host
  std::uint32_t reduced_phys_bits = 1;
  std::uint64_t snp_policy = 0x30000;         // SMT allowed, no debug
  std::uint64_t tdx_attributes = 0x10000000;  // SEPT_VE_DISABLE, no debug
  std::string tdx_qgs_socket;                 // Intel QGS unix socket; empty: none
  bool allow_insecure_tee = false;            // confpod.toml allow_insecure_tee
  // What the guest is told in init-data (daemon/spec/init_data.h): the KBS URL it reaches
  // (empty: pods with secrets cannot get them) and its network. Both are per pod: the daemon
  // fills them in for each pod's network before building its VM and init-data.
  std::string kbs_guest_url;
  PodNetwork network;
  // The pod's guest CID when its agent channel is vsock (store::PodRecord::vsock_cid, per
  // pod like the network); 0: the virtio-serial port.
  std::uint32_t vsock_cid = 0;
};

// The per-pod paths, all under <runtime_dir>/pods/<name>/ (daemon creates the directory).
// What the VM process itself creates (the agent channel's socket, the console log) is in
// vm/: on the libvirt backend that directory alone may be handed to libvirt's QEMU user, and
// confpodd writes nothing there.
struct PodPaths {
  std::string dir;
  std::string qmp_socket;    // qmp.sock
  std::string pidfile;       // qemu.pid
  std::string vm_dir;        // vm/
  std::string agent_socket;  // vm/agent.sock  (virtio-serial port "org.confpod.agent.0";
                             // not used when the channel is vsock)
  std::string serial_log;    // vm/serial.log
};
PodPaths pod_paths(const std::string& runtime_dir, const std::string& pod_name);

inline constexpr std::string_view kAgentChannelName = "org.confpod.agent.0";

// Binds SHA-256(init_data) as SNP host_data and SHA-384(init_data) as TDX mrconfigid; for tee
// none, which has no hardware to bind anything, it puts confpod.init_data_digest=<SHA-256 hex>
// on the kernel command line so the agent runs the same check (proving nothing: the host
// writes both).
// Each container image archive becomes a read-only raw virtio disk with serial "image<i>";
// the network becomes a user-mode NIC with the ports as host forwards, a tap NIC (ports are
// the firewall's, daemon/net), or no NIC. Errors: "spec.tee" (tee none not allowed on this host or
// host not set up for the TEE), "spec.host" (bad host defaults).
Result<vmm::VmConfig> vm_config_from_spec(const PodSpec& spec, const HostDefaults& host,
                                          std::string_view init_data);

// Same, with the pod's init-data document (init_data_text) as the init-data.
Result<vmm::VmConfig> vm_config_from_spec(const PodSpec& spec, const HostDefaults& host);

}  // namespace confpod::spec
