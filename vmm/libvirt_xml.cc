#include "vmm/libvirt_xml.h"

#include <cstdio>

#include "attest/base/bytes.h"
#include "vmm/qemu_argv.h"

namespace confpod::vmm {
namespace {

// A tiny indenting writer: every value goes through xml_escape, so no input can close an
// element or attribute early.
class XmlWriter {
 public:
  void open(std::string_view tag, std::string_view attrs = {}) {
    line("<" + std::string(tag) + std::string(attrs) + ">");
    ++depth_;
  }
  void close(std::string_view tag) {
    --depth_;
    line("</" + std::string(tag) + ">");
  }
  void empty(std::string_view tag, std::string_view attrs = {}) {
    line("<" + std::string(tag) + std::string(attrs) + "/>");
  }
  void text(std::string_view tag, std::string_view value, std::string_view attrs = {}) {
    line("<" + std::string(tag) + std::string(attrs) + ">" + xml_escape(value) + "</" +
         std::string(tag) + ">");
  }
  std::string take() { return std::move(out_); }

 private:
  void line(const std::string& s) {
    out_.append(static_cast<std::size_t>(depth_) * 2, ' ');
    out_ += s;
    out_ += '\n';
  }
  std::string out_;
  int depth_ = 0;
};

std::string attr(std::string_view name, std::string_view value) {
  return " " + std::string(name) + "='" + xml_escape(value) + "'";
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Result<std::string> libvirt_domain_xml(const VmConfig& c) {
  CONFPOD_TRY(validate_vm_config(c));
  const bool confidential = c.tee != Tee::kNone;
  XmlWriter w;
  w.open("domain", attr("type", c.accel == "kvm" ? "kvm" : "qemu"));
  w.text("name", c.name);
  w.text("memory", std::to_string(c.memory_mib), attr("unit", "MiB"));
  w.text("vcpu", std::to_string(c.vcpus), attr("placement", "static"));
  if (confidential) {
    // Same layout as the QEMU argv: shared pages in a memfd, private ones in guest_memfd.
    w.open("memoryBacking");
    w.empty("source", attr("type", "memfd"));
    w.empty("access", attr("mode", "shared"));
    w.close("memoryBacking");
  }
  w.open("os");
  w.text("type", "hvm", attr("arch", "x86_64") + attr("machine", "q35"));
  // A stateless ROM loader: measured as one blob, no NVRAM the host could alter.
  if (!c.firmware.empty())
    w.text("loader", c.firmware, attr("type", "rom") + attr("readonly", "yes"));
  if (!c.kernel.empty()) w.text("kernel", c.kernel);
  if (!c.initrd.empty()) w.text("initrd", c.initrd);
  if (!c.kernel_cmdline.empty()) w.text("cmdline", c.kernel_cmdline);
  w.close("os");
  w.open("features");
  w.empty("acpi");
  w.empty("apic");
  if (c.tee == Tee::kTdx) w.empty("ioapic", attr("driver", "qemu"));  // split irqchip
  w.close("features");
  if (!c.cpu_model.empty()) {
    w.open("cpu", attr("mode", "custom") + attr("match", "exact"));
    w.text("model", c.cpu_model);
    w.close("cpu");
  } else if (c.accel == "kvm") {
    w.empty("cpu", attr("mode", "host-passthrough"));
  }
  w.empty("clock", attr("offset", "utc"));
  // The daemon applies the pod's restart policy; libvirt must not restart behind its back
  // (and SNP/TDX guests cannot be reset in place anyway).
  w.text("on_poweroff", "destroy");
  w.text("on_reboot", "destroy");
  w.text("on_crash", "destroy");

  w.open("devices");
  w.text("emulator", c.qemu_binary);
  const std::string driver_extra = confidential ? attr("iommu", "on") : "";
  for (std::size_t i = 0; i < c.disks.size(); ++i) {
    const Disk& d = c.disks[i];
    w.open("disk", attr("type", "file") + attr("device", "disk"));
    w.empty("driver", attr("name", "qemu") + attr("type", d.format) + driver_extra);
    w.empty("source", attr("file", d.path));
    std::string dev = "vd";
    dev += static_cast<char>('a' + i % 26);
    if (i >= 26) dev = "vd" + std::string(1, static_cast<char>('a' + i / 26 - 1)) + dev.back();
    w.empty("target", attr("dev", dev) + attr("bus", "virtio"));
    if (!d.serial.empty()) w.text("serial", d.serial);
    if (d.read_only) w.empty("readonly");
    w.close("disk");
  }
  for (const Channel& ch : c.channels) {
    w.open("channel", attr("type", "unix"));
    w.empty("source", attr("mode", "bind") + attr("path", ch.socket_path));
    w.empty("target", attr("type", "virtio") + attr("name", ch.name));
    w.close("channel");
  }
  if (c.vsock_cid) {
    w.open("vsock", attr("model", "virtio"));
    w.empty("cid", attr("auto", "no") + attr("address", std::to_string(*c.vsock_cid)));
    if (confidential) w.empty("driver", attr("iommu", "on"));
    w.close("vsock");
  }
  for (const Nic& n : c.nics) {
    const bool user = n.kind == Nic::Kind::kUser;
    w.open("interface", attr("type", user ? "user" : "ethernet"));
    if (!n.mac.empty()) w.empty("mac", attr("address", n.mac));
    if (!user) w.empty("target", attr("dev", n.tap_name) + attr("managed", "no"));
    const bool forwards = !n.forwards.empty();
    // libvirt forwards ports of a user-mode interface only with the passt backend.
    if (user && forwards) w.empty("backend", attr("type", "passt"));
    w.empty("model", attr("type", "virtio"));
    // vhost-net where the host has it; qemu (userspace virtio) otherwise.
    std::string driver = user ? "" : attr("name", n.vhost ? "vhost" : "qemu");
    if (confidential) driver += attr("iommu", "on");
    if (!driver.empty()) w.empty("driver", driver);
    for (const HostForward& f : n.forwards) {
      std::string forward = attr("proto", f.protocol);
      if (!f.host_ip.empty() && f.host_ip != "0.0.0.0") forward += attr("address", f.host_ip);
      w.open("portForward", forward);
      w.empty("range", attr("start", std::to_string(f.host_port)) +
                           attr("to", std::to_string(f.guest_port)));
      w.close("portForward");
    }
    w.close("interface");
  }
  if (!c.serial_log.empty()) {
    w.open("serial", attr("type", "file"));
    w.empty("source", attr("path", c.serial_log));
    w.empty("target", attr("port", "0"));
    w.close("serial");
  }
  // No balloon: a confidential guest must not hand memory back to the host on request.
  w.empty("memballoon", attr("model", "none"));
  w.close("devices");

  if (c.tee == Tee::kSnp) {
    w.open("launchSecurity",
           attr("type", "sev-snp") + attr("kernelHashes", c.snp.kernel_hashes ? "yes" : "no"));
    w.text("cbitpos", std::to_string(c.snp.cbitpos));
    w.text("reducedPhysBits", std::to_string(c.snp.reduced_phys_bits));
    w.text("policy", hex_number(c.snp.policy));
    w.text("hostData", to_base64(c.snp.host_data));
    w.close("launchSecurity");
  } else if (c.tee == Tee::kTdx) {
    w.open("launchSecurity", attr("type", "tdx"));
    w.text("policy", hex_number(c.tdx.attributes));
    w.text("mrConfigId", to_base64(c.tdx.mrconfigid));
    if (!c.tdx.quote_generation_socket.empty())
      w.empty("quoteGenerationService", attr("path", c.tdx.quote_generation_socket));
    w.close("launchSecurity");
  }
  w.close("domain");
  return w.take();
}

}  // namespace confpod::vmm
