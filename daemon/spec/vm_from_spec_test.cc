// PodSpec + HostDefaults -> VmConfig, and that the result is launchable by both builders.
#include "daemon/spec/vm_from_spec.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "daemon/spec/init_data.h"
#include "vmm/qemu_argv.h"

namespace confpod::spec {
namespace {

const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

PodSpec example(vmm::Tee tee) {
  PodSpec s;
  s.name = "payroll";
  s.tee = tee;
  s.vm = {2, 2048};
  Container c;
  c.name = "app";
  c.image = {"oci-archive", "/srv/images/app.tar", kDigest};
  s.containers.push_back(c);
  s.ports.push_back({8443, 443, "tcp"});
  s.ports.push_back({5353, 53, "udp"});
  return s;
}

HostDefaults host() {
  HostDefaults h;
  h.firmware_snp = "/usr/share/ovmf/AMDSEV.fd";
  h.firmware_tdx = "/usr/share/ovmf/OVMF.inteltdx.fd";
  h.kernel = "/var/lib/confpod/guest/vmlinuz";
  h.initrd = "/var/lib/confpod/guest/initrd.img";
  h.runtime_dir = "/run/confpod/";
  h.cbitpos = 47;
  h.tdx_qgs_socket = "/var/run/tdx-qgs/qgs.socket";
  return h;
}

TEST(VmFromSpec, SnpBindsSha256OfInitData) {
  auto c = vm_config_from_spec(example(vmm::Tee::kSnp), host(), "init-data");
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->name, "payroll");
  EXPECT_EQ(c->vcpus, 2u);
  EXPECT_EQ(c->memory_mib, 2048u);
  EXPECT_EQ(c->tee, vmm::Tee::kSnp);
  EXPECT_EQ(c->firmware, "/usr/share/ovmf/AMDSEV.fd");
  EXPECT_EQ(c->snp.cbitpos, 47u);
  EXPECT_TRUE(c->snp.kernel_hashes);
  Bytes want = crypto::sha256(as_bytes("init-data"));
  EXPECT_TRUE(std::equal(want.begin(), want.end(), c->snp.host_data.begin()));
  EXPECT_EQ(c->qmp_socket, "/run/confpod/pods/payroll/qmp.sock");
  EXPECT_EQ(c->pidfile, "/run/confpod/pods/payroll/qemu.pid");
  EXPECT_EQ(c->serial_log, "/run/confpod/pods/payroll/vm/serial.log");
  ASSERT_EQ(c->channels.size(), 1u);
  EXPECT_EQ(c->channels[0].name, "org.confpod.agent.0");
  EXPECT_EQ(c->channels[0].socket_path, "/run/confpod/pods/payroll/vm/agent.sock");
  ASSERT_EQ(c->disks.size(), 1u);
  EXPECT_EQ(c->disks[0].path, "/srv/images/app.tar");
  EXPECT_TRUE(c->disks[0].read_only);
  EXPECT_EQ(c->disks[0].serial, "image0");
  ASSERT_EQ(c->nics.size(), 1u);
  EXPECT_EQ(c->nics[0].forwards, (std::vector<vmm::HostForward>{{"tcp", "0.0.0.0", 8443, 443},
                                                                {"udp", "0.0.0.0", 5353, 53}}));
  EXPECT_TRUE(vmm::qemu_argv(*c).ok());
}

TEST(VmFromSpec, TdxBindsSha384OfTheInitDataDocumentByDefault) {
  PodSpec spec = example(vmm::Tee::kTdx);
  auto c = vm_config_from_spec(spec, host());
  ASSERT_TRUE(c.ok()) << c.error().describe();
  Bytes want = crypto::sha384(as_bytes(init_data_text(spec, host())));
  EXPECT_TRUE(std::equal(want.begin(), want.end(), c->tdx.mrconfigid.begin()));
  EXPECT_EQ(c->firmware, "/usr/share/ovmf/OVMF.inteltdx.fd");
  EXPECT_EQ(c->tdx.attributes, 0x10000000u);
  EXPECT_EQ(c->tdx.quote_generation_socket, "/var/run/tdx-qgs/qgs.socket");
  EXPECT_TRUE(vmm::qemu_argv(*c).ok());
}

TEST(VmFromSpec, TeeNoneNeedsTheHostToAllowIt) {
  auto refused = vm_config_from_spec(example(vmm::Tee::kNone), host());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "spec.tee");
  HostDefaults h = host();
  h.allow_insecure_tee = true;
  h.accel = "tcg";
  auto c = vm_config_from_spec(example(vmm::Tee::kNone), h);
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_TRUE(c->allow_insecure_tee);
  EXPECT_TRUE(c->firmware.empty());
  EXPECT_TRUE(vmm::qemu_argv(*c).ok());
}

TEST(VmFromSpec, AutoAccelIsKvmForTeesAndTheCheckedOneForTeeNone) {
  HostDefaults h = host();
  h.allow_insecure_tee = true;
  h.accel = "auto";
  h.tee_none_accel = "tcg";
  EXPECT_EQ(vm_config_from_spec(example(vmm::Tee::kSnp), h)->accel, "kvm");
  EXPECT_EQ(vm_config_from_spec(example(vmm::Tee::kTdx), h)->accel, "kvm");
  EXPECT_EQ(vm_config_from_spec(example(vmm::Tee::kNone), h)->accel, "tcg");
  h.tee_none_accel = "kvm";
  EXPECT_EQ(vm_config_from_spec(example(vmm::Tee::kNone), h)->accel, "kvm");
  h.accel = "tcg";  // an explicit accel is every pod's
  EXPECT_EQ(vm_config_from_spec(example(vmm::Tee::kNone), h)->accel, "tcg");
}

// A pod given a CID reaches its agent over vsock only: no virtio-serial port beside it (the
// agent takes vsock when the VM has it), and the CID goes on the QEMU command line.
TEST(VmFromSpec, AVsockCidReplacesTheVirtioSerialChannel) {
  HostDefaults h = host();
  h.vsock_cid = 10007;
  auto c = vm_config_from_spec(example(vmm::Tee::kSnp), h);
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->vsock_cid, 10007u);
  EXPECT_TRUE(c->channels.empty());
  auto argv = vmm::qemu_argv(*c);
  ASSERT_TRUE(argv.ok()) << argv.error().describe();
  const std::string line = [&] {
    std::string all;
    for (const auto& a : *argv) all += a + " ";
    return all;
  }();
  EXPECT_NE(line.find("vhost-vsock-pci,id=vsock0,guest-cid=10007"), std::string::npos) << line;
  EXPECT_EQ(line.find("virtserialport"), std::string::npos) << line;
  // Without one, the virtio-serial port as before and no vsock device.
  auto serial = vm_config_from_spec(example(vmm::Tee::kSnp), host());
  ASSERT_TRUE(serial.ok());
  EXPECT_FALSE(serial->vsock_cid.has_value());
  EXPECT_EQ(serial->channels.size(), 1u);
}

TEST(VmFromSpec, MissingFirmwareIsAHostError) {
  HostDefaults h = host();
  h.firmware_snp.clear();
  auto c = vm_config_from_spec(example(vmm::Tee::kSnp), h);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "spec.tee");
  h = host();
  h.runtime_dir = "run";
  c = vm_config_from_spec(example(vmm::Tee::kSnp), h);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "spec.host");
}

}  // namespace
}  // namespace confpod::spec
