// VmConfig: the machine a pod runs in, independent of the backend (QEMU or libvirt).
// Built by the daemon from a pod spec + confpod.toml; turned into a QEMU argv
// (vmm/qemu_argv.h) or a libvirt domain XML (vmm/libvirt_xml.h).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace confpod::vmm {

enum class Tee { kNone, kSnp, kTdx };

std::string to_string(Tee tee);  // "none" | "snp" | "tdx"

struct Disk {
  std::string path;
  bool read_only = true;
  std::string format = "raw";  // raw | qcow2
  std::string serial;          // shows up as /dev/disk/by-id/virtio-<serial> in the guest
};

// A host<->guest byte channel: a virtio-serial port (or vsock) the daemon reaches as a unix
// socket on the host.
struct Channel {
  std::string name;         // virtio-serial port name seen by the guest, e.g. "org.confpod.agent.0"
  std::string socket_path;  // host-side unix socket QEMU listens on
};

// A user-mode host forward: host_ip:host_port on the host -> guest_port in the guest.
struct HostForward {
  std::string protocol = "tcp";  // tcp | udp
  std::string host_ip;           // IPv4; empty or 0.0.0.0: every address
  std::uint16_t host_port = 0;
  std::uint16_t guest_port = 0;
  bool operator==(const HostForward&) const = default;
};

struct Nic {
  enum class Kind { kUser, kTap } kind = Kind::kUser;
  std::string tap_name;               // kTap: an existing tap device
  std::string mac;                    // empty: QEMU chooses
  bool vhost = false;                 // kTap: vhost-net in the kernel (needs /dev/vhost-net)
  std::vector<HostForward> forwards;  // kUser only
};

struct SnpLaunch {
  std::uint64_t policy = 0x30000;  // SMT allowed, debug NOT allowed, ABI major 0
  std::uint32_t cbitpos = 51;      // from CPUID 0x8000001F[EBX] on the host
  std::uint32_t reduced_phys_bits = 1;
  std::array<std::uint8_t, 32> host_data{};  // SHA-256 of the pod's init-data
  bool kernel_hashes = true;                 // measure kernel/initrd/cmdline into the digest
};

struct TdxLaunch {
  std::array<std::uint8_t, 48> mrconfigid{};  // SHA-384 of the pod's init-data
  std::string quote_generation_socket;        // QGS unix socket path; empty: none
  std::uint64_t attributes = 0x10000000;      // SEPT_VE_DISABLE; bit 0 (DEBUG) never set
};

struct VmConfig {
  std::string name;  // the pod name; used for the QEMU -name and log lines
  unsigned vcpus = 1;
  unsigned memory_mib = 512;
  std::string qemu_binary = "/usr/bin/qemu-system-x86_64";
  std::string accel = "kvm";  // "kvm" on real hosts, "tcg" for tests without /dev/kvm
  std::string cpu_model;      // e.g. "EPYC-v4"; empty: "host" with kvm, "max" with tcg
  std::string firmware;       // OVMF (SNP: AmdSev build; TDX: TDVF, as -bios)
  std::string kernel;
  std::string initrd;
  std::string kernel_cmdline;
  Tee tee = Tee::kNone;
  // Tee::kNone gives the guest no protection at all; the launch builders refuse it unless this
  // is set (from confpod.toml allow_insecure_tee), so "none" is always a deliberate choice.
  bool allow_insecure_tee = false;
  // A guest whose SNP policy (bit 19) or TDX attributes (bit 0) allow debugging exposes its
  // memory to the host; the launch builders refuse it unless this is set (--allow-debug).
  bool allow_debug = false;
  SnpLaunch snp;
  TdxLaunch tdx;
  std::vector<Disk> disks;
  std::vector<Channel> channels;
  // A vhost-vsock device with this guest CID (3..0xFFFFFFFE, unique on the host; needs
  // /dev/vhost-vsock): the agent's channel over vsock instead of a virtio-serial port.
  std::optional<std::uint32_t> vsock_cid;
  std::vector<Nic> nics;
  // Control plane, owned by the supervisor.
  std::string qmp_socket;  // unix socket QEMU serves QMP on
  std::string pidfile;
  std::string serial_log;  // guest serial console goes here (file)
};

}  // namespace confpod::vmm
