// The libvirt backend against libvirt's in-process test:///default driver: define, start,
// state, destroy, undefine, with the XML libvirt_domain_xml generates.
#include "vmm/libvirt_backend.h"

#include <gtest/gtest.h>

#include "vmm/libvirt_xml.h"

namespace confpod::vmm {
namespace {

VmConfig none_config() {
  VmConfig c;
  c.name = "libvirt-smoke";
  c.memory_mib = 256;
  c.accel = "tcg";
  c.tee = Tee::kNone;
  c.allow_insecure_tee = true;
  c.kernel = "/boot/vmlinuz";
  c.kernel_cmdline = "console=ttyS0";
  c.serial_log = "/tmp/confpod-libvirt-smoke.log";
  c.channels.push_back({"org.confpod.agent.0", "/tmp/confpod-libvirt-smoke.sock"});
  c.disks.push_back({"/srv/app.tar", true, "raw", "image0"});
  c.nics.push_back(Nic{});
  return c;
}

TEST(LibvirtBackend, DefineStartDestroyUndefine) {
  auto conn = LibvirtConnection::connect("test:///default");
  ASSERT_TRUE(conn.ok()) << conn.error().describe();
  auto xml = libvirt_domain_xml(none_config());
  ASSERT_TRUE(xml.ok()) << xml.error().describe();

  auto domain = conn->define(*xml);
  ASSERT_TRUE(domain.ok()) << domain.error().describe();
  EXPECT_EQ(domain->name(), "libvirt-smoke");
  auto state = domain->state();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, DomainState::kShutoff);

  ASSERT_TRUE(domain->start().ok());
  state = domain->state();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, DomainState::kRunning);
  EXPECT_EQ(to_string(*state), "running");

  // libvirt kept what we asked for.
  auto live = domain->xml();
  ASSERT_TRUE(live.ok());
  EXPECT_NE(live->find("<target type='virtio' name='org.confpod.agent.0'/>"), std::string::npos)
      << *live;
  EXPECT_NE(live->find("<serial>image0</serial>"), std::string::npos);

  ASSERT_TRUE(domain->destroy().ok());
  state = domain->state();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, DomainState::kShutoff);
  ASSERT_TRUE(domain->undefine().ok());

  auto gone = conn->lookup("libvirt-smoke");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "vmm.libvirt.no_domain");
}

TEST(LibvirtBackend, ErrorsCarryLibvirtsMessage) {
  auto bad = LibvirtConnection::connect("nosuchdriver:///nowhere");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "vmm.libvirt.connect");
  EXPECT_FALSE(bad.error().message.empty());

  auto conn = LibvirtConnection::connect("test:///default");
  ASSERT_TRUE(conn.ok());
  auto d = conn->define("<domain type='qemu'><name>broken");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, "vmm.libvirt.define");

  // Destroying a domain that is not running is an error, not a crash.
  auto xml = libvirt_domain_xml(none_config());
  ASSERT_TRUE(xml.ok());
  auto domain = conn->define(*xml);
  ASSERT_TRUE(domain.ok());
  auto not_running = domain->destroy();
  ASSERT_FALSE(not_running.ok());
  EXPECT_EQ(not_running.error().code, "vmm.libvirt.destroy");
  ASSERT_TRUE(domain->undefine().ok());
}

// What this libvirt does with confidential launchSecurity: libvirt < 10.5 does not know
// type='sev-snp' and must refuse the whole definition (never silently drop the element);
// a newer one must keep it.
TEST(LibvirtBackend, SnpLaunchSecurityIsKeptOrRefusedNeverDropped) {
  VmConfig c = none_config();
  c.name = "libvirt-snp";
  c.tee = Tee::kSnp;
  c.accel = "kvm";
  c.firmware = "/fw/AMDSEV.fd";
  c.snp.host_data[0] = 1;
  auto xml = libvirt_domain_xml(c);
  ASSERT_TRUE(xml.ok()) << xml.error().describe();
  auto conn = LibvirtConnection::connect("test:///default");
  ASSERT_TRUE(conn.ok());
  auto domain = conn->define(*xml);
  if (!domain.ok()) {
    EXPECT_EQ(domain.error().code, "vmm.libvirt.define");
    EXPECT_NE(domain.error().message.find("launchSecurity"), std::string::npos)
        << domain.error().message;
    EXPECT_NE(domain.error().message.find("sev-snp"), std::string::npos);
  } else {
    auto live = domain->xml();
    ASSERT_TRUE(live.ok());
    EXPECT_NE(live->find("<launchSecurity type='sev-snp'"), std::string::npos) << *live;
    ASSERT_TRUE(domain->undefine().ok());
  }
}

}  // namespace
}  // namespace confpod::vmm
