#include "vmm/qemu_argv.h"

#include <nlohmann/json.hpp>

#include "attest/base/bytes.h"

namespace confpod::vmm {
namespace {

// A dotted-quad IPv4 address (each part 0..255, no leading zeros).
bool is_ipv4_address(const std::string& s) {
  int parts = 0;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t end = s.find('.', i);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(i, end - i);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    for (char c : part)
      if (c < '0' || c > '9') return false;
    if (std::stoi(part) > 255) return false;
    ++parts;
    i = end + 1;
  }
  return parts == 4;
}

// Bounds shared with the pod spec (docs/pod-spec.md): beyond these QEMU either refuses or the
// host cannot honour them, so we fail early with a named error instead.
constexpr unsigned kMaxVcpus = 256;
constexpr unsigned kMinMemoryMib = 128;
constexpr unsigned kMaxMemoryMib = 1048576;
constexpr std::uint64_t kSnpPolicyDebug = 1ull << 19;
constexpr std::uint64_t kTdxAttributeDebug = 1ull << 0;

Error config_error(const std::string& what, const std::string& message) {
  return make_error("vmm.config." + what, message);
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool all_name_chars(std::string_view s) {
  for (char c : s)
    if (!is_name_char(c)) return false;
  return true;
}

// Paths end up inside QEMU option strings and libvirt XML: they must be absolute and free of
// control characters (a newline in a path is never legitimate and confuses logs and parsers).
Status check_path(std::string_view field, const std::string& path, bool required) {
  if (path.empty()) {
    if (required) return config_error("path", std::string(field) + " is required");
    return ok_status();
  }
  if (path.front() != '/')
    return config_error("path",
                        std::string(field) + " must be an absolute path, got \"" + path + "\"");
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f)
      return config_error("path", std::string(field) + " contains a control character");
  return ok_status();
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_mac(std::string_view mac) {
  if (mac.size() != 17) return false;
  for (std::size_t i = 0; i < mac.size(); ++i) {
    if (i % 3 == 2) {
      if (mac[i] != ':') return false;
    } else if (!is_hex(mac[i])) {
      return false;
    }
  }
  return true;
}

Status check_devices(const VmConfig& c) {
  for (std::size_t i = 0; i < c.disks.size(); ++i) {
    const Disk& d = c.disks[i];
    std::string where = "disks[" + std::to_string(i) + "]";
    CONFPOD_TRY(check_path(where + ".path", d.path, true));
    if (d.format != "raw" && d.format != "qcow2")
      return config_error("device",
                          where + ".format must be raw or qcow2, got \"" + d.format + "\"");
    // virtio-blk carries at most 20 bytes of serial (VIRTIO_BLK_ID_BYTES).
    if (d.serial.size() > 20 || !all_name_chars(d.serial))
      return config_error("device", where + ".serial must be at most 20 of [A-Za-z0-9._-]");
  }
  for (std::size_t i = 0; i < c.channels.size(); ++i) {
    const Channel& ch = c.channels[i];
    std::string where = "channels[" + std::to_string(i) + "]";
    if (ch.name.empty() || ch.name.size() > 127 || !all_name_chars(ch.name))
      return config_error("device", where + ".name must be 1..127 of [A-Za-z0-9._-]");
    CONFPOD_TRY(check_path(where + ".socket_path", ch.socket_path, true));
  }
  // 0-2 are the hypervisor, the local loopback and the host; -1 is VMADDR_CID_ANY.
  if (c.vsock_cid && (*c.vsock_cid < 3 || *c.vsock_cid == 0xFFFFFFFFu))
    return config_error("device",
                        "vsock_cid must be 3..4294967294, got " + std::to_string(*c.vsock_cid));
  for (std::size_t i = 0; i < c.nics.size(); ++i) {
    const Nic& n = c.nics[i];
    std::string where = "nics[" + std::to_string(i) + "]";
    if (!n.mac.empty() && !is_mac(n.mac))
      return config_error("device", where + ".mac must look like 52:54:00:12:34:56");
    if (n.kind == Nic::Kind::kTap) {
      // IFNAMSIZ is 16 including the terminator.
      if (n.tap_name.empty() || n.tap_name.size() > 15 || !all_name_chars(n.tap_name))
        return config_error("device", where + ".tap_name must be 1..15 of [A-Za-z0-9._-]");
      if (!n.forwards.empty())
        return config_error("device", where + ": host forwards only apply to user networking");
    } else if (n.vhost) {
      return config_error("device", where + ": vhost only applies to a tap");
    }
    for (const HostForward& f : n.forwards) {
      if (f.host_port == 0 || f.guest_port == 0)
        return config_error("device", where + ": forwarded ports must be 1..65535");
      if (f.protocol != "tcp" && f.protocol != "udp")
        return config_error("device", where + ": forward protocol must be tcp or udp");
      if (!f.host_ip.empty() && !is_ipv4_address(f.host_ip))
        return config_error("device", where + ": forward host_ip must be an IPv4 address");
    }
  }
  return ok_status();
}

std::string memory_size(unsigned mib) { return std::to_string(mib) + "M"; }

// The SEV-SNP launch object (QEMU qapi/qom.json SevSnpGuestProperties + SevCommonProperties).
std::string snp_object(const VmConfig& c) {
  std::string o = "sev-snp-guest,id=sev0";
  o += ",cbitpos=" + std::to_string(c.snp.cbitpos);
  o += ",reduced-phys-bits=" + std::to_string(c.snp.reduced_phys_bits);
  o += ",policy=" + hex_number(c.snp.policy);
  if (c.snp.kernel_hashes) o += ",kernel-hashes=on";
  o += ",host-data=" + to_base64(c.snp.host_data);
  return o;
}

// The TDX launch object in JSON form, because quote-generation-socket is a QAPI SocketAddress
// (a nested struct the key=value syntax cannot express). "attributes" is the raw 64-bit TD
// attributes (QEMU >= 10.1); we pass it whole rather than the sept-ve-disable shorthand so the
// value in the quote is exactly what the config says.
std::string tdx_object(const VmConfig& c) {
  nlohmann::ordered_json o;
  o["qom-type"] = "tdx-guest";
  o["id"] = "tdx0";
  o["attributes"] = c.tdx.attributes;
  o["mrconfigid"] = to_base64(c.tdx.mrconfigid);
  if (!c.tdx.quote_generation_socket.empty())
    o["quote-generation-socket"] = {{"type", "unix"}, {"path", c.tdx.quote_generation_socket}};
  return o.dump();
}

// Confidential guests can only DMA through shared (bounce) buffers: virtio devices must
// negotiate VIRTIO_F_ACCESS_PLATFORM, and legacy virtio (which cannot) is disabled.
std::string virtio_options(const VmConfig& c) {
  return c.tee == Tee::kNone ? "" : ",disable-legacy=on,iommu_platform=on";
}

}  // namespace

std::string qemu_escape_option_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    out += ch;
    if (ch == ',') out += ',';
  }
  return out;
}

Status validate_vm_config(const VmConfig& c) {
  if (c.name.empty() || c.name.size() > 63 || !all_name_chars(c.name))
    return config_error("name", "name must be 1..63 of [A-Za-z0-9._-], got \"" + c.name + "\"");
  if (c.vcpus < 1 || c.vcpus > kMaxVcpus)
    return config_error("resources", "vcpus must be 1.." + std::to_string(kMaxVcpus) + ", got " +
                                         std::to_string(c.vcpus));
  if (c.memory_mib < kMinMemoryMib || c.memory_mib > kMaxMemoryMib)
    return config_error("resources", "memory_mib must be " + std::to_string(kMinMemoryMib) + ".." +
                                         std::to_string(kMaxMemoryMib) + ", got " +
                                         std::to_string(c.memory_mib));
  if (c.accel != "kvm" && c.accel != "tcg")
    return config_error("accel", "accel must be kvm or tcg, got \"" + c.accel + "\"");
  if (!c.cpu_model.empty() && !all_name_chars(c.cpu_model))
    return config_error("name", "cpu_model must be of [A-Za-z0-9._-]");
  CONFPOD_TRY(check_path("qemu_binary", c.qemu_binary, true));
  CONFPOD_TRY(check_path("firmware", c.firmware, false));
  CONFPOD_TRY(check_path("kernel", c.kernel, false));
  CONFPOD_TRY(check_path("initrd", c.initrd, false));
  for (unsigned char ch : c.kernel_cmdline)
    if (ch < 0x20 || ch == 0x7f)
      return config_error("kernel", "kernel_cmdline contains a control character");
  if (c.kernel.empty() && (!c.initrd.empty() || !c.kernel_cmdline.empty()))
    return config_error("kernel", "initrd and kernel_cmdline need a kernel");

  switch (c.tee) {
    case Tee::kNone:
      if (!c.allow_insecure_tee)
        return config_error("tee",
                            "tee none runs the guest without memory encryption or attestation; "
                            "it needs allow_insecure_tee");
      break;
    case Tee::kSnp:
      if (c.accel != "kvm") return config_error("accel", "tee snp needs accel kvm");
      if (c.firmware.empty())
        return config_error("firmware", "tee snp needs firmware (an AmdSev OVMF build)");
      if (c.snp.kernel_hashes && c.kernel.empty())
        return config_error("kernel", "snp.kernel_hashes needs direct kernel boot (kernel)");
      if ((c.snp.policy & kSnpPolicyDebug) && !c.allow_debug)
        return config_error("debug", "snp.policy " + hex_number(c.snp.policy) +
                                         " allows debugging (bit 19); needs allow_debug");
      if (is_all_zero(c.snp.host_data))
        return config_error("init_data", "snp.host_data is all zero: no init-data is bound");
      break;
    case Tee::kTdx:
      if (c.accel != "kvm") return config_error("accel", "tee tdx needs accel kvm");
      if (c.firmware.empty()) return config_error("firmware", "tee tdx needs firmware (TDVF)");
      if ((c.tdx.attributes & kTdxAttributeDebug) && !c.allow_debug)
        return config_error("debug", "tdx.attributes " + hex_number(c.tdx.attributes) +
                                         " allow debugging (bit 0); needs allow_debug");
      if (is_all_zero(c.tdx.mrconfigid))
        return config_error("init_data", "tdx.mrconfigid is all zero: no init-data is bound");
      CONFPOD_TRY(check_path("tdx.quote_generation_socket", c.tdx.quote_generation_socket, false));
      break;
  }
  return check_devices(c);
}

Result<std::vector<std::string>> qemu_argv(const VmConfig& c) {
  CONFPOD_TRY(validate_vm_config(c));
  if (c.qmp_socket.empty() || c.pidfile.empty() || c.serial_log.empty())
    return config_error("control", "qmp_socket, pidfile and serial_log are required");
  CONFPOD_TRY(check_path("qmp_socket", c.qmp_socket, true));
  CONFPOD_TRY(check_path("pidfile", c.pidfile, true));
  CONFPOD_TRY(check_path("serial_log", c.serial_log, true));

  const auto esc = qemu_escape_option_value;
  std::vector<std::string> a;
  auto add = [&a](std::initializer_list<std::string> args) {
    a.insert(a.end(), args.begin(), args.end());
  };

  a.push_back(c.qemu_binary);
  // No user config files, no default devices, no display: the argv alone defines the machine.
  add({"-name", "guest=" + c.name + ",debug-threads=on"});
  add({"-no-user-config", "-nodefaults", "-display", "none"});
  add({"-accel", c.accel});

  std::string machine = "q35";
  if (c.tee == Tee::kSnp) machine += ",confidential-guest-support=sev0,memory-backend=ram1";
  // TDX needs the split irqchip (the TDX module virtualises the local APIC).
  if (c.tee == Tee::kTdx)
    machine += ",kernel-irqchip=split,confidential-guest-support=tdx0,memory-backend=ram1";
  add({"-machine", machine});

  std::string cpu = c.cpu_model.empty() ? (c.accel == "kvm" ? "host" : "max") : c.cpu_model;
  add({"-cpu", cpu});
  add({"-smp", std::to_string(c.vcpus)});
  add({"-m", memory_size(c.memory_mib)});

  if (c.tee != Tee::kNone) {
    // Shared (unencrypted) guest pages live in this memfd; private pages come from KVM's
    // guest_memfd. prealloc=false: the guest accepts memory lazily.
    add({"-object", "memory-backend-memfd,id=ram1,size=" + memory_size(c.memory_mib) +
                        ",share=true,prealloc=false"});
  }
  if (c.tee == Tee::kSnp) add({"-object", snp_object(c)});
  if (c.tee == Tee::kTdx) add({"-object", tdx_object(c)});

  // Firmware as -bios: it is measured as one blob and never writable (no pflash, no NVRAM).
  if (!c.firmware.empty()) add({"-bios", c.firmware});
  if (!c.kernel.empty()) add({"-kernel", c.kernel});
  if (!c.initrd.empty()) add({"-initrd", c.initrd});
  if (!c.kernel_cmdline.empty()) add({"-append", c.kernel_cmdline});

  // Control plane: QMP on a unix socket; QEMU waits for the supervisor to connect before it
  // sets up its monitor (see kQmpServerOptions for the race this avoids).
  add({"-chardev", "socket,id=qmp,path=" + esc(c.qmp_socket) + "," + kQmpServerOptions});
  add({"-mon", "chardev=qmp,mode=control"});
  add({"-pidfile", c.pidfile});
  add({"-chardev", "file,id=serial0,path=" + esc(c.serial_log)});
  add({"-serial", "chardev:serial0"});
  // A guest kernel panic reaches QEMU through the pvpanic device and ends it at once (SHUTDOWN
  // reason guest-panic), instead of leaving a dead guest running: the pod fails with the
  // reason, and its restart policy applies. The device is not part of any launch measurement.
  add({"-device", "pvpanic-pci"});
  add({"-action", "panic=shutdown"});

  const std::string vopts = virtio_options(c);
  if (!c.channels.empty()) {
    add({"-device", "virtio-serial-pci,id=virtio-serial0" + vopts});
    for (std::size_t i = 0; i < c.channels.size(); ++i) {
      const std::string id = "channel" + std::to_string(i);
      add({"-chardev",
           "socket,id=" + id + ",path=" + esc(c.channels[i].socket_path) + ",server=on,wait=off"});
      add({"-device",
           "virtserialport,bus=virtio-serial0.0,chardev=" + id + ",name=" + c.channels[i].name});
    }
  }

  if (c.vsock_cid)
    add({"-device", "vhost-vsock-pci,id=vsock0,guest-cid=" + std::to_string(*c.vsock_cid) + vopts});

  for (std::size_t i = 0; i < c.disks.size(); ++i) {
    const Disk& d = c.disks[i];
    const std::string id = "disk" + std::to_string(i);
    std::string drive = "file=" + esc(d.path) + ",if=none,id=" + id + ",format=" + d.format;
    if (d.read_only) drive += ",readonly=on";
    add({"-drive", drive});
    std::string dev = "virtio-blk-pci,drive=" + id;
    if (!d.serial.empty()) dev += ",serial=" + d.serial;
    add({"-device", dev + vopts});
  }

  for (std::size_t i = 0; i < c.nics.size(); ++i) {
    const Nic& n = c.nics[i];
    const std::string id = "net" + std::to_string(i);
    std::string netdev;
    if (n.kind == Nic::Kind::kUser) {
      netdev = "user,id=" + id;
      for (const HostForward& f : n.forwards) {
        const std::string host_ip = f.host_ip == "0.0.0.0" ? "" : f.host_ip;
        netdev += ",hostfwd=" + f.protocol + ":" + host_ip + ":" + std::to_string(f.host_port) +
                  "-:" + std::to_string(f.guest_port);
      }
    } else {
      // The daemon creates and wires the tap; QEMU must not run helper scripts as root.
      netdev = "tap,id=" + id + ",ifname=" + n.tap_name + ",script=no,downscript=no";
      if (n.vhost) netdev += ",vhost=on";
    }
    add({"-netdev", netdev});
    // romfile= : no iPXE option ROM, nothing unmeasured for the firmware to load.
    std::string dev = "virtio-net-pci,netdev=" + id + ",romfile=";
    if (!n.mac.empty()) dev += ",mac=" + n.mac;
    add({"-device", dev + vopts});
  }
  return a;
}

}  // namespace confpod::vmm
