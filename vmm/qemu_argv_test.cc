// Golden QEMU command lines per TEE, the encodings of the launch digests, and every rejected
// combination.
#include "vmm/qemu_argv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "attest/base/bytes.h"

namespace confpod::vmm {
namespace {

using Argv = std::vector<std::string>;

VmConfig base(Tee tee) {
  VmConfig c;
  c.name = "payroll";
  c.vcpus = 2;
  c.memory_mib = 2048;
  c.tee = tee;
  c.accel = "kvm";
  c.kernel = "/g/vmlinuz";
  c.initrd = "/g/initrd";
  c.kernel_cmdline = "console=ttyS0";
  c.qmp_socket = "/run/p/qmp.sock";
  c.pidfile = "/run/p/qemu.pid";
  c.serial_log = "/run/p/serial.log";
  c.channels.push_back({"org.confpod.agent.0", "/run/p/agent.sock"});
  c.disks.push_back({"/srv/app.tar", true, "raw", "image0"});
  Nic nic;
  nic.forwards = {{"tcp", "", 8443, 443}};
  c.nics.push_back(nic);
  if (tee == Tee::kNone) c.allow_insecure_tee = true;
  if (tee == Tee::kSnp) {
    c.firmware = "/fw/AMDSEV.fd";
    for (std::size_t i = 0; i < 32; ++i) c.snp.host_data[i] = static_cast<std::uint8_t>(i);
  }
  if (tee == Tee::kTdx) {
    c.firmware = "/fw/TDVF.fd";
    for (std::size_t i = 0; i < 48; ++i) c.tdx.mrconfigid[i] = static_cast<std::uint8_t>(0xA0 + i);
    c.tdx.quote_generation_socket = "/var/run/tdx-qgs/qgs.socket";
  }
  return c;
}

Argv argv_ok(const VmConfig& c) {
  auto r = qemu_argv(c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : Argv{};
}

std::string code_of(const VmConfig& c) {
  auto r = qemu_argv(c);
  return r.ok() ? "ok" : r.error().code;
}

// Everything from the devices on is the same for every TEE but the virtio options.
Argv tail(const std::string& vopts) {
  return {
      "-chardev", "socket,id=qmp,path=/run/p/qmp.sock,server=on,wait=on",
      "-mon",     "chardev=qmp,mode=control",
      "-pidfile", "/run/p/qemu.pid",
      "-chardev", "file,id=serial0,path=/run/p/serial.log",
      "-serial",  "chardev:serial0",
      "-device",  "pvpanic-pci",
      "-action",  "panic=shutdown",
      "-device",  "virtio-serial-pci,id=virtio-serial0" + vopts,
      "-chardev", "socket,id=channel0,path=/run/p/agent.sock,server=on,wait=off",
      "-device",  "virtserialport,bus=virtio-serial0.0,chardev=channel0,name=org.confpod.agent.0",
      "-drive",   "file=/srv/app.tar,if=none,id=disk0,format=raw,readonly=on",
      "-device",  "virtio-blk-pci,drive=disk0,serial=image0" + vopts,
      "-netdev",  "user,id=net0,hostfwd=tcp::8443-:443",
      "-device",  "virtio-net-pci,netdev=net0,romfile=" + vopts};
}

Argv concat(Argv a, const Argv& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(QemuArgv, GoldenNone) {
  VmConfig c = base(Tee::kNone);
  c.accel = "tcg";
  Argv want = concat({"/usr/bin/qemu-system-x86_64",
                      "-name",
                      "guest=payroll,debug-threads=on",
                      "-no-user-config",
                      "-nodefaults",
                      "-display",
                      "none",
                      "-accel",
                      "tcg",
                      "-machine",
                      "q35",
                      "-cpu",
                      "max",
                      "-smp",
                      "2",
                      "-m",
                      "2048M",
                      "-kernel",
                      "/g/vmlinuz",
                      "-initrd",
                      "/g/initrd",
                      "-append",
                      "console=ttyS0"},
                     tail(""));
  EXPECT_EQ(argv_ok(c), want);
}

TEST(QemuArgv, GoldenSnp) {
  VmConfig c = base(Tee::kSnp);
  const std::string host_data = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  Argv want = concat({"/usr/bin/qemu-system-x86_64",
                      "-name",
                      "guest=payroll,debug-threads=on",
                      "-no-user-config",
                      "-nodefaults",
                      "-display",
                      "none",
                      "-accel",
                      "kvm",
                      "-machine",
                      "q35,confidential-guest-support=sev0,memory-backend=ram1",
                      "-cpu",
                      "host",
                      "-smp",
                      "2",
                      "-m",
                      "2048M",
                      "-object",
                      "memory-backend-memfd,id=ram1,size=2048M,share=true,prealloc=false",
                      "-object",
                      "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x30000,"
                      "kernel-hashes=on,host-data=" +
                          host_data,
                      "-bios",
                      "/fw/AMDSEV.fd",
                      "-kernel",
                      "/g/vmlinuz",
                      "-initrd",
                      "/g/initrd",
                      "-append",
                      "console=ttyS0"},
                     tail(",disable-legacy=on,iommu_platform=on"));
  EXPECT_EQ(argv_ok(c), want);
  // The base64 decodes back to the 32 bytes we bound.
  auto decoded = from_base64(host_data);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, Bytes(c.snp.host_data.begin(), c.snp.host_data.end()));
}

TEST(QemuArgv, GoldenTdx) {
  VmConfig c = base(Tee::kTdx);
  Argv got = argv_ok(c);
  ASSERT_GT(got.size(), 20u);
  Argv head(got.begin(), got.begin() + 20);
  Argv want_head = {"/usr/bin/qemu-system-x86_64",
                    "-name",
                    "guest=payroll,debug-threads=on",
                    "-no-user-config",
                    "-nodefaults",
                    "-display",
                    "none",
                    "-accel",
                    "kvm",
                    "-machine",
                    "q35,kernel-irqchip=split,confidential-guest-support=tdx0,memory-backend=ram1",
                    "-cpu",
                    "host",
                    "-smp",
                    "2",
                    "-m",
                    "2048M",
                    "-object",
                    "memory-backend-memfd,id=ram1,size=2048M,share=true,prealloc=false",
                    "-object"};
  EXPECT_EQ(head, want_head);
  const std::string& object = got[20];
  // Exact JSON (property order is fixed so the argv is reproducible).
  const std::string mrconfigid = to_base64(c.tdx.mrconfigid);
  EXPECT_EQ(object,
            "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx0\",\"attributes\":268435456,"
            "\"mrconfigid\":\"" +
                mrconfigid +
                "\",\"quote-generation-socket\":"
                "{\"type\":\"unix\",\"path\":\"/var/run/tdx-qgs/qgs.socket\"}}");
  auto json = nlohmann::json::parse(object);
  auto decoded = from_base64(json["mrconfigid"].get<std::string>());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->size(), 48u);
  EXPECT_EQ(*decoded, Bytes(c.tdx.mrconfigid.begin(), c.tdx.mrconfigid.end()));
  Argv rest(got.begin() + 21, got.end());
  EXPECT_EQ(rest, concat({"-bios", "/fw/TDVF.fd", "-kernel", "/g/vmlinuz", "-initrd", "/g/initrd",
                          "-append", "console=ttyS0"},
                         tail(",disable-legacy=on,iommu_platform=on")));
}

TEST(QemuArgv, NeverDaemonizesNorUsesAShell) {
  for (Tee tee : {Tee::kNone, Tee::kSnp, Tee::kTdx}) {
    Argv a = argv_ok(base(tee));
    EXPECT_EQ(std::count(a.begin(), a.end(), "-daemonize"), 0);
    EXPECT_EQ(a[0], "/usr/bin/qemu-system-x86_64");
  }
}

TEST(QemuArgv, TapAndMacAndUdp) {
  VmConfig c = base(Tee::kNone);
  c.nics.clear();
  Nic tap;
  tap.kind = Nic::Kind::kTap;
  tap.tap_name = "cp-payroll0";
  tap.mac = "52:54:00:12:34:56";
  c.nics.push_back(tap);
  Nic user;
  user.forwards = {{"udp", "127.0.0.1", 5353, 53}};
  c.nics.push_back(user);
  Argv a = argv_ok(c);
  auto has = [&a](const std::string& s) { return std::find(a.begin(), a.end(), s) != a.end(); };
  EXPECT_TRUE(has("tap,id=net0,ifname=cp-payroll0,script=no,downscript=no"));
  // vhost-net where the host has /dev/vhost-net.
  c.nics[0].vhost = true;
  a = argv_ok(c);
  EXPECT_TRUE(has("tap,id=net0,ifname=cp-payroll0,script=no,downscript=no,vhost=on"));
  EXPECT_TRUE(has("virtio-net-pci,netdev=net0,romfile=,mac=52:54:00:12:34:56"));
  EXPECT_TRUE(has("user,id=net1,hostfwd=udp:127.0.0.1:5353-:53"));
}

// The agent's channel over vsock: a vhost-vsock device with the pod's CID instead of the
// virtio-serial port, with the confidential guests' virtio options.
TEST(QemuArgv, VsockChannelInsteadOfTheVirtioSerialPort) {
  VmConfig c = base(Tee::kSnp);
  c.channels.clear();
  c.vsock_cid = 1000;
  Argv a = argv_ok(c);
  auto at = std::find(a.begin(), a.end(),
                      "vhost-vsock-pci,id=vsock0,guest-cid=1000,"
                      "disable-legacy=on,iommu_platform=on");
  ASSERT_NE(at, a.end());
  EXPECT_EQ(*(at - 1), "-device");
  for (const auto& arg : a) EXPECT_EQ(arg.find("virtserialport"), std::string::npos) << arg;
  c = base(Tee::kNone);
  c.vsock_cid = 3;
  a = argv_ok(c);
  EXPECT_NE(std::find(a.begin(), a.end(), "vhost-vsock-pci,id=vsock0,guest-cid=3"), a.end());
  // No CID: no vsock device.
  a = argv_ok(base(Tee::kNone));
  for (const auto& arg : a) EXPECT_EQ(arg.find("vsock"), std::string::npos) << arg;
}

TEST(QemuArgv, VsockCidsOfTheHypervisorHostOrAnyAreRefused) {
  for (std::uint32_t cid : {0u, 1u, 2u, 0xFFFFFFFFu}) {
    VmConfig c = base(Tee::kNone);
    c.vsock_cid = cid;
    auto r = qemu_argv(c);
    ASSERT_FALSE(r.ok()) << cid;
    EXPECT_EQ(r.error().code, "vmm.config.device");
    EXPECT_NE(r.error().message.find("vsock_cid must be 3..4294967294, got " + std::to_string(cid)),
              std::string::npos)
        << r.error().message;
  }
}

TEST(QemuArgv, CommasInPathsAreEscaped) {
  VmConfig c = base(Tee::kNone);
  c.disks[0].path = "/srv/a,b.tar";
  c.disks[0].read_only = false;
  c.disks[0].format = "qcow2";
  Argv a = argv_ok(c);
  EXPECT_NE(std::find(a.begin(), a.end(), "file=/srv/a,,b.tar,if=none,id=disk0,format=qcow2"),
            a.end());
  EXPECT_EQ(qemu_escape_option_value("a,b,,c"), "a,,b,,,,c");
}

TEST(QemuArgv, RejectsInvalidCombinations) {
  VmConfig c = base(Tee::kNone);
  c.allow_insecure_tee = false;
  EXPECT_EQ(code_of(c), "vmm.config.tee");

  c = base(Tee::kSnp);
  c.accel = "tcg";
  EXPECT_EQ(code_of(c), "vmm.config.accel");
  c = base(Tee::kTdx);
  c.accel = "tcg";
  EXPECT_EQ(code_of(c), "vmm.config.accel");
  c = base(Tee::kNone);
  c.accel = "hvf";
  EXPECT_EQ(code_of(c), "vmm.config.accel");

  c = base(Tee::kSnp);
  c.firmware.clear();
  EXPECT_EQ(code_of(c), "vmm.config.firmware");
  c = base(Tee::kTdx);
  c.firmware.clear();
  EXPECT_EQ(code_of(c), "vmm.config.firmware");

  c = base(Tee::kSnp);
  c.kernel.clear();
  c.initrd.clear();
  c.kernel_cmdline.clear();
  EXPECT_EQ(code_of(c), "vmm.config.kernel");  // kernel-hashes without a kernel
  c = base(Tee::kNone);
  c.kernel.clear();
  EXPECT_EQ(code_of(c), "vmm.config.kernel");  // initrd without a kernel

  c = base(Tee::kSnp);
  c.snp.policy |= 1u << 19;
  EXPECT_EQ(code_of(c), "vmm.config.debug");
  c.allow_debug = true;
  EXPECT_EQ(code_of(c), "ok");
  c = base(Tee::kTdx);
  c.tdx.attributes |= 1;
  EXPECT_EQ(code_of(c), "vmm.config.debug");

  c = base(Tee::kSnp);
  c.snp.host_data = {};
  EXPECT_EQ(code_of(c), "vmm.config.init_data");
  c = base(Tee::kTdx);
  c.tdx.mrconfigid = {};
  EXPECT_EQ(code_of(c), "vmm.config.init_data");

  c = base(Tee::kNone);
  c.vcpus = 0;
  EXPECT_EQ(code_of(c), "vmm.config.resources");
  c = base(Tee::kNone);
  c.memory_mib = 0;
  EXPECT_EQ(code_of(c), "vmm.config.resources");
  c = base(Tee::kNone);
  c.name = "a,b";
  EXPECT_EQ(code_of(c), "vmm.config.name");
  c = base(Tee::kNone);
  c.name.clear();
  EXPECT_EQ(code_of(c), "vmm.config.name");

  c = base(Tee::kNone);
  c.kernel = "vmlinuz";
  EXPECT_EQ(code_of(c), "vmm.config.path");
  c = base(Tee::kNone);
  c.serial_log = "/run/p/serial\n.log";
  EXPECT_EQ(code_of(c), "vmm.config.path");
  c = base(Tee::kNone);
  c.qmp_socket.clear();
  EXPECT_EQ(code_of(c), "vmm.config.control");

  c = base(Tee::kNone);
  c.channels[0].name = "bad,name";
  EXPECT_EQ(code_of(c), "vmm.config.device");
  c = base(Tee::kNone);
  c.disks[0].serial = "a-serial-longer-than-20";
  EXPECT_EQ(code_of(c), "vmm.config.device");
  c = base(Tee::kNone);
  c.disks[0].format = "vmdk";
  EXPECT_EQ(code_of(c), "vmm.config.device");
  c = base(Tee::kNone);
  c.nics[0].mac = "52:54:00:12:34";
  EXPECT_EQ(code_of(c), "vmm.config.device");
  c = base(Tee::kNone);
  c.nics[0].forwards = {{"tcp", "", 0, 80}};
  EXPECT_EQ(code_of(c), "vmm.config.device");
  c = base(Tee::kNone);
  c.nics[0].kind = Nic::Kind::kTap;
  c.nics[0].tap_name = "tap0";
  EXPECT_EQ(code_of(c), "vmm.config.device");  // forwards on a tap
}

TEST(QemuArgv, TeeNames) {
  EXPECT_EQ(to_string(Tee::kNone), "none");
  EXPECT_EQ(to_string(Tee::kSnp), "snp");
  EXPECT_EQ(to_string(Tee::kTdx), "tdx");
}

}  // namespace
}  // namespace confpod::vmm
