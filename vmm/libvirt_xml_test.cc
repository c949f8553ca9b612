// libvirt domain XML: well-formed (parsed back with libxml2), escaped, and carrying the
// launchSecurity elements libvirt documents for SEV-SNP and TDX.
#include "vmm/libvirt_xml.h"

#include <gtest/gtest.h>

#include "attest/base/bytes.h"

#ifdef CONFPOD_HAVE_LIBXML2
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include <memory>
#endif

namespace confpod::vmm {
namespace {

VmConfig base(Tee tee) {
  VmConfig c;
  c.name = "payroll";
  c.vcpus = 2;
  c.memory_mib = 2048;
  c.tee = tee;
  c.kernel = "/g/vmlinuz";
  c.initrd = "/g/initrd";
  c.kernel_cmdline = "console=ttyS0 quiet";
  c.serial_log = "/run/p/serial.log";
  c.channels.push_back({"org.confpod.agent.0", "/run/p/agent.sock"});
  c.disks.push_back({"/srv/app.tar", true, "raw", "image0"});
  c.nics.push_back(Nic{});
  if (tee == Tee::kNone) {
    c.allow_insecure_tee = true;
    c.accel = "tcg";
  }
  if (tee == Tee::kSnp) {
    c.firmware = "/fw/AMDSEV.fd";
    c.snp.cbitpos = 47;
    for (std::size_t i = 0; i < 32; ++i) c.snp.host_data[i] = static_cast<std::uint8_t>(i);
  }
  if (tee == Tee::kTdx) {
    c.firmware = "/fw/TDVF.fd";
    for (std::size_t i = 0; i < 48; ++i) c.tdx.mrconfigid[i] = static_cast<std::uint8_t>(i + 1);
    c.tdx.quote_generation_socket = "/var/run/tdx-qgs/qgs.socket";
  }
  return c;
}

std::string xml_ok(const VmConfig& c) {
  auto r = libvirt_domain_xml(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

#ifdef CONFPOD_HAVE_LIBXML2
struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct XPathContextFree {
  void operator()(xmlXPathContext* c) const { xmlXPathFreeContext(c); }
};
struct XPathObjectFree {
  void operator()(xmlXPathObject* o) const { xmlXPathFreeObject(o); }
};

// The string value of an XPath expression over the parsed document ("" when absent).
class ParsedXml {
 public:
  explicit ParsedXml(const std::string& xml)
      : doc_(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)) {}
  bool ok() const { return doc_ != nullptr; }
  std::string eval(const std::string& xpath) const {
    std::unique_ptr<xmlXPathContext, XPathContextFree> ctx(xmlXPathNewContext(doc_.get()));
    std::unique_ptr<xmlXPathObject, XPathObjectFree> obj(xmlXPathEvalExpression(
        reinterpret_cast<const xmlChar*>(("string(" + xpath + ")").c_str()), ctx.get()));
    if (!obj || obj->type != XPATH_STRING || obj->stringval == nullptr) return "";
    return reinterpret_cast<const char*>(obj->stringval);
  }

 private:
  std::unique_ptr<xmlDoc, DocFree> doc_;
};
#endif

TEST(LibvirtXml, NoneIsAPlainQemuDomain) {
  std::string xml = xml_ok(base(Tee::kNone));
  EXPECT_EQ(xml.rfind("<domain type='qemu'>", 0), 0u) << xml;
  EXPECT_FALSE(contains(xml, "launchSecurity"));
  EXPECT_FALSE(contains(xml, "memoryBacking"));
  EXPECT_TRUE(contains(xml, "<memballoon model='none'/>"));
#ifdef CONFPOD_HAVE_LIBXML2
  ParsedXml doc(xml);
  ASSERT_TRUE(doc.ok()) << xml;
  EXPECT_EQ(doc.eval("/domain/name"), "payroll");
  EXPECT_EQ(doc.eval("/domain/memory"), "2048");
  EXPECT_EQ(doc.eval("/domain/memory/@unit"), "MiB");
  EXPECT_EQ(doc.eval("/domain/vcpu"), "2");
  EXPECT_EQ(doc.eval("/domain/os/type/@machine"), "q35");
  EXPECT_EQ(doc.eval("/domain/os/kernel"), "/g/vmlinuz");
  EXPECT_EQ(doc.eval("/domain/os/initrd"), "/g/initrd");
  EXPECT_EQ(doc.eval("/domain/os/cmdline"), "console=ttyS0 quiet");
  EXPECT_EQ(doc.eval("/domain/on_reboot"), "destroy");
  EXPECT_EQ(doc.eval("/domain/devices/disk/source/@file"), "/srv/app.tar");
  EXPECT_EQ(doc.eval("/domain/devices/disk/target/@bus"), "virtio");
  EXPECT_EQ(doc.eval("/domain/devices/disk/serial"), "image0");
  EXPECT_EQ(doc.eval("count(/domain/devices/disk/readonly)"), "1");
  EXPECT_EQ(doc.eval("/domain/devices/channel/@type"), "unix");
  EXPECT_EQ(doc.eval("/domain/devices/channel/source/@mode"), "bind");
  EXPECT_EQ(doc.eval("/domain/devices/channel/source/@path"), "/run/p/agent.sock");
  EXPECT_EQ(doc.eval("/domain/devices/channel/target/@type"), "virtio");
  EXPECT_EQ(doc.eval("/domain/devices/channel/target/@name"), "org.confpod.agent.0");
  EXPECT_EQ(doc.eval("/domain/devices/interface/@type"), "user");
  EXPECT_EQ(doc.eval("/domain/devices/interface/model/@type"), "virtio");
  EXPECT_EQ(doc.eval("/domain/devices/serial/source/@path"), "/run/p/serial.log");
#endif
}

TEST(LibvirtXml, SnpLaunchSecurity) {
  VmConfig c = base(Tee::kSnp);
  std::string xml = xml_ok(c);
  EXPECT_EQ(xml.rfind("<domain type='kvm'>", 0), 0u);
  EXPECT_TRUE(contains(xml, "<launchSecurity type='sev-snp' kernelHashes='yes'>")) << xml;
  EXPECT_TRUE(contains(xml, "<cbitpos>47</cbitpos>"));
  EXPECT_TRUE(contains(xml, "<reducedPhysBits>1</reducedPhysBits>"));
  EXPECT_TRUE(contains(xml, "<policy>0x30000</policy>"));
  EXPECT_TRUE(contains(xml, "<hostData>AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=</hostData>"));
  EXPECT_TRUE(contains(xml, "<loader type='rom' readonly='yes'>/fw/AMDSEV.fd</loader>"));
  EXPECT_TRUE(contains(xml, "<cpu mode='host-passthrough'/>"));
#ifdef CONFPOD_HAVE_LIBXML2
  ParsedXml doc(xml);
  ASSERT_TRUE(doc.ok()) << xml;
  EXPECT_EQ(doc.eval("/domain/memoryBacking/source/@type"), "memfd");
  EXPECT_EQ(doc.eval("/domain/memoryBacking/access/@mode"), "shared");
  EXPECT_EQ(doc.eval("/domain/devices/disk/driver/@iommu"), "on");
  EXPECT_EQ(doc.eval("/domain/devices/interface/driver/@iommu"), "on");
  auto host_data = from_base64(doc.eval("/domain/launchSecurity/hostData"));
  ASSERT_TRUE(host_data.ok());
  EXPECT_EQ(*host_data, Bytes(c.snp.host_data.begin(), c.snp.host_data.end()));
#endif
}

TEST(LibvirtXml, TdxLaunchSecurity) {
  VmConfig c = base(Tee::kTdx);
  std::string xml = xml_ok(c);
  EXPECT_TRUE(contains(xml, "<launchSecurity type='tdx'>")) << xml;
  EXPECT_TRUE(contains(xml, "<policy>0x10000000</policy>"));
  EXPECT_TRUE(contains(xml, "<quoteGenerationService path='/var/run/tdx-qgs/qgs.socket'/>"));
  EXPECT_TRUE(contains(xml, "<ioapic driver='qemu'/>"));
#ifdef CONFPOD_HAVE_LIBXML2
  ParsedXml doc(xml);
  ASSERT_TRUE(doc.ok()) << xml;
  auto id = from_base64(doc.eval("/domain/launchSecurity/mrConfigId"));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, Bytes(c.tdx.mrconfigid.begin(), c.tdx.mrconfigid.end()));
#endif
}

TEST(LibvirtXml, EscapesEverythingItEmbeds) {
  EXPECT_EQ(xml_escape("a<b>&'\"c"), "a&lt;b&gt;&amp;&apos;&quot;c");
  VmConfig c = base(Tee::kNone);
  c.kernel_cmdline = "x</cmdline><evil attr='1'/>&";
  c.disks[0].path = "/srv/it's <here>.tar";
  std::string xml = xml_ok(c);
  EXPECT_FALSE(contains(xml, "<evil"));
  EXPECT_TRUE(
      contains(xml, "<cmdline>x&lt;/cmdline&gt;&lt;evil attr=&apos;1&apos;/&gt;&amp;</cmdline>"));
#ifdef CONFPOD_HAVE_LIBXML2
  ParsedXml doc(xml);
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc.eval("/domain/os/cmdline"), c.kernel_cmdline);
  EXPECT_EQ(doc.eval("/domain/devices/disk/source/@file"), c.disks[0].path);
#endif
}

TEST(LibvirtXml, PortForwardsUsePasstAndTapIsEthernet) {
  VmConfig c = base(Tee::kNone);
  c.nics[0].forwards = {{"tcp", "", 8443, 443}, {"udp", "127.0.0.1", 5353, 53}};
  Nic tap;
  tap.kind = Nic::Kind::kTap;
  tap.tap_name = "cp0";
  tap.mac = "52:54:00:00:00:01";
  c.nics.push_back(tap);
  std::string xml = xml_ok(c);
  EXPECT_TRUE(contains(xml, "<backend type='passt'/>"));
  EXPECT_TRUE(contains(xml, "<portForward proto='tcp'>"));
  EXPECT_TRUE(contains(xml, "<range start='8443' to='443'/>"));
  EXPECT_TRUE(contains(xml, "<portForward proto='udp' address='127.0.0.1'>"));
  EXPECT_TRUE(contains(xml, "<interface type='ethernet'>"));
  EXPECT_TRUE(contains(xml, "<target dev='cp0' managed='no'/>"));
  EXPECT_TRUE(contains(xml, "<mac address='52:54:00:00:00:01'/>"));
}

TEST(LibvirtXml, VsockChannelIsAVsockDeviceWithTheCid) {
  VmConfig c = base(Tee::kSnp);
  c.channels.clear();
  c.vsock_cid = 4242;
  std::string xml = xml_ok(c);
  EXPECT_TRUE(contains(xml, "<vsock model='virtio'>")) << xml;
  EXPECT_TRUE(contains(xml, "<cid auto='no' address='4242'/>")) << xml;
  EXPECT_FALSE(contains(xml, "<channel")) << xml;
#ifdef CONFPOD_HAVE_LIBXML2
  ParsedXml doc(xml);
  ASSERT_TRUE(doc.ok()) << xml;
  EXPECT_EQ(doc.eval("/domain/devices/vsock/cid/@address"), "4242");
  EXPECT_EQ(doc.eval("/domain/devices/vsock/driver/@iommu"), "on");
#endif
  EXPECT_FALSE(contains(xml_ok(base(Tee::kNone)), "vsock"));
  c.vsock_cid = 2;
  auto refused = libvirt_domain_xml(c);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "vmm.config.device");
}

TEST(LibvirtXml, SharesValidationWithTheArgvBuilder) {
  VmConfig c = base(Tee::kSnp);
  c.accel = "tcg";
  auto r = libvirt_domain_xml(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "vmm.config.accel");
  c = base(Tee::kNone);
  c.allow_insecure_tee = false;
  r = libvirt_domain_xml(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "vmm.config.tee");
  // libvirt owns the monitor and pidfile: they are not required here.
  c = base(Tee::kNone);
  c.qmp_socket.clear();
  c.pidfile.clear();
  EXPECT_TRUE(libvirt_domain_xml(c).ok());
}

}  // namespace
}  // namespace confpod::vmm
