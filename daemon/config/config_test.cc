// confpod.toml: the documented defaults, every key read into the right field, the shipped
// example, file loading, and a corpus of bad configs each naming the offending key and line.
#include "daemon/config/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/process.h"

namespace confpod::config {
namespace {

using confpod::testing::TempDir;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every field, one per line: comparing dumps compares everything and shows a readable diff.
std::string dump(const DaemonConfig& c) {
  const spec::HostDefaults& h = c.host;
  std::ostringstream o;
  o << "state_dir=" << c.state_dir << "\nbackend=" << c.backend << "\nlibvirt_uri=" << c.libvirt_uri
    << "\nlibvirt_qemu_user=" << c.libvirt_qemu_user << "\nchannel=" << c.channel
    << "\nvsock_cid_first=" << c.vsock_cid_first
    << "\nstop_timeout_seconds=" << c.stop_timeout_seconds
    << "\nagent_hello_timeout_seconds=" << c.agent_hello_timeout_seconds
    << "\nqemu_binary=" << h.qemu_binary << "\naccel=" << h.accel << "\ncpu_model=" << h.cpu_model
    << "\nfirmware_snp=" << h.firmware_snp << "\nfirmware_tdx=" << h.firmware_tdx
    << "\nfirmware_none=" << h.firmware_none << "\nkernel=" << h.kernel << "\ninitrd=" << h.initrd
    << "\nkernel_cmdline=" << h.kernel_cmdline << "\nruntime_dir=" << h.runtime_dir
    << "\ncbitpos=" << h.cbitpos << "\nreduced_phys_bits=" << h.reduced_phys_bits
    << "\nsnp_policy=" << h.snp_policy << "\ntdx_attributes=" << h.tdx_attributes
    << "\ntdx_qgs_socket=" << h.tdx_qgs_socket << "\nallow_insecure_tee=" << h.allow_insecure_tee
    << "\nkbs.enabled=" << c.kbs.enabled << "\nkbs.listen=" << c.kbs.listen
    << "\nkbs.tls_cert=" << c.kbs.tls_cert << "\nkbs.tls_key=" << c.kbs.tls_key
    << "\nkbs.allow_plain_http=" << c.kbs.allow_plain_http
    << "\nkbs.require_crl=" << c.kbs.require_crl << "\nmetrics.listen=" << c.metrics.listen
    << "\nnetwork.bridge=" << c.network.default_network.bridge
    << "\nnetwork.subnet=" << c.network.default_network.subnet
    << "\nnetwork.subnet6=" << c.network.default_network.subnet6
    << "\nnetwork.masquerade=" << c.network.default_network.masquerade
    << "\nnetwork.dns=" << net::dns_to_text(c.network.default_network.dns)
    << "\nnetwork.pod_network=" << c.network.pod_network
    << "\nnetworks=" << c.network.networks.size() << "\n";
  return o.str();
}

DaemonConfig parse_ok(std::string_view text) {
  auto r = parse_config(text, "test.toml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : DaemonConfig{};
}

// Every key of the layout, dotted; the example and the docs must each name all of them.
const std::vector<std::string> kAllKeys = {"state_dir",
                                           "runtime_dir",
                                           "vmm.backend",
                                           "vmm.libvirt_uri",
                                           "vmm.libvirt_qemu_user",
                                           "vmm.channel",
                                           "vmm.vsock_cid_first",
                                           "qemu",
                                           "accel",
                                           "cpu_model",
                                           "guest_kernel",
                                           "guest_initrd",
                                           "guest_builder",
                                           "guest_agent",
                                           "kernel_cmdline",
                                           "allow_insecure_tee",
                                           "stop_timeout_seconds",
                                           "agent_hello_timeout_seconds",
                                           "firmware.snp",
                                           "firmware.tdx",
                                           "firmware.none",
                                           "snp.cbitpos",
                                           "snp.reduced_phys_bits",
                                           "snp.policy",
                                           "tdx.attributes",
                                           "tdx.qgs_socket",
                                           "kbs.enabled",
                                           "kbs.listen",
                                           "kbs.tls_cert",
                                           "kbs.tls_key",
                                           "kbs.allow_plain_http",
                                           "kbs.guest_url",
                                           "kbs.require_crl",
                                           "metrics.listen",
                                           "network.bridge",
                                           "network.subnet",
                                           "network.subnet6",
                                           "network.masquerade",
                                           "network.dns",
                                           "network.pod_network"};

TEST(Config, EmptyFileIsTheDocumentedDefaults) {
  DaemonConfig c = parse_ok("");
  EXPECT_EQ(dump(c), dump(DaemonConfig{}));
  // Pinned here because docs/config.md promises them.
  EXPECT_EQ(c.state_dir, "/var/lib/confpod");
  EXPECT_EQ(c.host.runtime_dir, "/run/confpod");
  EXPECT_EQ(c.backend, "qemu");
  EXPECT_EQ(c.libvirt_uri, "qemu:///system");
  EXPECT_EQ(c.host.qemu_binary, "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(c.host.accel, "auto");
  EXPECT_EQ(c.host.cpu_model, "");
  EXPECT_EQ(c.host.kernel, "");
  EXPECT_EQ(c.host.initrd, "");
  EXPECT_EQ(c.host.kernel_cmdline, "console=ttyS0");
  EXPECT_FALSE(c.host.allow_insecure_tee);
  EXPECT_EQ(c.stop_timeout_seconds, 30u);
  EXPECT_EQ(c.agent_hello_timeout_seconds, 120u);
  EXPECT_EQ(c.host.firmware_snp, "");
  EXPECT_EQ(c.host.firmware_tdx, "");
  EXPECT_EQ(c.host.firmware_none, "");
  EXPECT_EQ(c.host.cbitpos, 51u);
  EXPECT_EQ(c.host.reduced_phys_bits, 1u);
  EXPECT_EQ(c.host.snp_policy, 0x30000u);
  EXPECT_EQ(c.host.tdx_attributes, 0x10000000u);
  EXPECT_EQ(c.host.tdx_qgs_socket, "");
  EXPECT_TRUE(c.kbs.enabled);
  EXPECT_EQ(c.kbs.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.network.default_network.name, "default");
  EXPECT_EQ(c.network.default_network.bridge, "confpod0");
  EXPECT_EQ(c.network.default_network.subnet, "10.89.0.0/24");
  EXPECT_EQ(c.network.default_network.subnet6, "");
  EXPECT_TRUE(c.network.default_network.masquerade);
  EXPECT_TRUE(c.network.default_network.dns.empty());
  EXPECT_EQ(c.network.pod_network, "default");
  EXPECT_TRUE(c.network.networks.empty());
}

TEST(Config, EmptyTablesKeepDefaults) {
  DaemonConfig c = parse_ok("[firmware]\n[snp]\n[tdx]\n[kbs]\n[network]\n");
  EXPECT_EQ(dump(c), dump(DaemonConfig{}));
}

// Earlier versions read backend and libvirt_uri at the top level: still read there, and the
// same value in both places is no conflict.
TEST(Config, TopLevelBackendKeysOfEarlierVersionsStillWork) {
  DaemonConfig old = parse_ok("backend = \"libvirt\"\nlibvirt_uri = \"test:///default\"\n");
  EXPECT_EQ(old.backend, "libvirt");
  EXPECT_EQ(old.libvirt_uri, "test:///default");
  DaemonConfig both = parse_ok("backend = \"libvirt\"\n[vmm]\nbackend = \"libvirt\"\n");
  EXPECT_EQ(both.backend, "libvirt");
}

TEST(Config, EveryKeyLandsInItsField) {
  const std::string text = R"(# every key, none at its default
state_dir = "/srv/confpod/state"
runtime_dir = "/run/confpod-test"
qemu = "/opt/qemu/bin/qemu-system-x86_64"
accel = "tcg"
cpu_model = "EPYC-v4"
guest_kernel = "/usr/lib/confpod/guest/vmlinuz"
guest_initrd = "/usr/lib/confpod/guest/initrd.img"
kernel_cmdline = "console=ttyS0 quiet panic=-1"
allow_insecure_tee = true
stop_timeout_seconds = 120
agent_hello_timeout_seconds = 300

[firmware]
snp = "/usr/share/ovmf/AMDSEV.fd"
tdx = "/usr/share/ovmf/TDVF.fd"
none = "/usr/share/ovmf/OVMF.fd"

[snp]
cbitpos = 47
reduced_phys_bits = 5
policy = 0x20000

[tdx]
attributes = 0x0
qgs_socket = "/var/run/tdx-qgs/qgs.socket"

[kbs]
enabled = false
listen = "[::1]:9443"
tls_cert = "/etc/confpod/kbs.crt"
tls_key = "/etc/confpod/kbs.key"
allow_plain_http = true
require_crl = true

[metrics]
listen = "[::1]:9464"

[vmm]
backend = "libvirt"
libvirt_uri = "qemu+ssh://root@host/system"
libvirt_qemu_user = "libvirt-qemu"
channel = "vsock"
vsock_cid_first = 70000

[network]
bridge = "br-pods"
subnet = "172.20.0.0/16"
subnet6 = "fd00:20::/64"
masquerade = false
dns = ["172.20.0.1"]
pod_network = "lab"

[[networks]]
name = "lab"
bridge = "br-lab"
subnet = "172.21.0.0/24"
)";
  DaemonConfig c = parse_ok(text);
  DaemonConfig e;
  e.state_dir = "/srv/confpod/state";
  e.host.runtime_dir = "/run/confpod-test";
  e.backend = "libvirt";
  e.libvirt_uri = "qemu+ssh://root@host/system";
  e.libvirt_qemu_user = "libvirt-qemu";
  e.channel = "vsock";
  e.vsock_cid_first = 70000;
  e.host.qemu_binary = "/opt/qemu/bin/qemu-system-x86_64";
  e.host.accel = "tcg";
  e.host.cpu_model = "EPYC-v4";
  e.host.kernel = "/usr/lib/confpod/guest/vmlinuz";
  e.host.initrd = "/usr/lib/confpod/guest/initrd.img";
  e.host.kernel_cmdline = "console=ttyS0 quiet panic=-1";
  e.host.allow_insecure_tee = true;
  e.stop_timeout_seconds = 120;
  e.agent_hello_timeout_seconds = 300;
  e.host.firmware_snp = "/usr/share/ovmf/AMDSEV.fd";
  e.host.firmware_tdx = "/usr/share/ovmf/TDVF.fd";
  e.host.firmware_none = "/usr/share/ovmf/OVMF.fd";
  e.host.cbitpos = 47;
  e.host.reduced_phys_bits = 5;
  e.host.snp_policy = 0x20000;
  e.host.tdx_attributes = 0;
  e.host.tdx_qgs_socket = "/var/run/tdx-qgs/qgs.socket";
  e.kbs.enabled = false;
  e.kbs.listen = "[::1]:9443";
  e.kbs.tls_cert = "/etc/confpod/kbs.crt";
  e.kbs.tls_key = "/etc/confpod/kbs.key";
  e.kbs.allow_plain_http = true;
  e.metrics.listen = "[::1]:9464";
  e.kbs.require_crl = true;
  e.network.default_network.bridge = "br-pods";
  e.network.default_network.subnet = "172.20.0.0/16";
  e.network.default_network.subnet6 = "fd00:20::/64";
  e.network.default_network.masquerade = false;
  e.network.default_network.dns = {"172.20.0.1"};
  e.network.pod_network = "lab";
  net::NetworkDef lab;
  lab.name = "lab";
  lab.bridge = "br-lab";
  lab.subnet = "172.21.0.0/24";
  e.network.networks.push_back(lab);
  EXPECT_EQ(dump(c), dump(e));
  // Guard the test itself: each expected value differs from its default, so a key that was
  // silently ignored cannot pass.
  std::istringstream got(dump(e)), def(dump(DaemonConfig{}));
  std::string got_line, def_line;
  while (std::getline(got, got_line) && std::getline(def, def_line))
    EXPECT_NE(got_line, def_line) << "the full file leaves this field at its default";
}

TEST(Config, InlineTablesAndEmptyOptionalPathsAreAccepted) {
  DaemonConfig c = parse_ok(
      "kbs = { enabled = false }\n"
      "[firmware]\nsnp = \"\"\n"
      "[tdx]\nqgs_socket = \"\"\n");
  EXPECT_FALSE(c.kbs.enabled);
  EXPECT_EQ(c.kbs.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.host.firmware_snp, "");
  EXPECT_EQ(c.host.tdx_qgs_socket, "");
}

TEST(Config, ListenAcceptsNamesAndAddresses) {
  for (const char* listen :
       {"0.0.0.0:443", "kbs.example.org:8080", "[fd00::1]:1", "localhost:65535"}) {
    DaemonConfig c =
        parse_ok(std::string("[kbs]\nallow_plain_http = true\nlisten = \"") + listen + "\"\n");
    EXPECT_EQ(c.kbs.listen, listen);
  }
}

TEST(Config, PlainHttpOnlyOnLoopbackUnlessAllowed) {
  // Loopback may serve plain HTTP.
  for (const char* listen : {"127.0.0.1:8080", "127.1.2.3:1", "[::1]:80", "localhost:9"})
    EXPECT_EQ(parse_ok(std::string("[kbs]\nlisten = \"") + listen + "\"\n").kbs.listen, listen);
  // Off loopback: TLS, or the explicit opt-in, or the KBS disabled.
  DaemonConfig tls = parse_ok(
      "[kbs]\nlisten = \"0.0.0.0:443\"\ntls_cert = \"/etc/k.crt\"\ntls_key = \"/etc/k.key\"\n");
  EXPECT_EQ(tls.kbs.tls_cert, "/etc/k.crt");
  EXPECT_EQ(tls.kbs.tls_key, "/etc/k.key");
  EXPECT_FALSE(tls.kbs.allow_plain_http);
  EXPECT_TRUE(
      parse_ok("[kbs]\nlisten = \"10.0.0.1:80\"\nallow_plain_http = true\n").kbs.allow_plain_http);
  EXPECT_FALSE(parse_ok("[kbs]\nenabled = false\nlisten = \"10.0.0.1:80\"\n").kbs.enabled);
  // Empty paths mean "not set".
  EXPECT_EQ(parse_ok("[kbs]\ntls_cert = \"\"\ntls_key = \"\"\n").kbs.tls_cert, "");
}

struct BadCase {
  const char* what;
  const char* toml;
  int line;
  const char* key;
  const char* message;  // a part of what is wrong
};

const BadCase kBadCases[] = {
    {"unknown top-level key", "state_dir = \"/a\"\nstat_dir = \"/b\"\n", 2, "stat_dir",
     "unknown key"},
    {"unknown key in a table", "[snp]\ncbitpos = 51\npolcy = 0x30000\n", 3, "snp.polcy",
     "unknown key"},
    {"unknown table", "[kbs]\nenabled = true\n[kbss]\nlisten = \"a:1\"\n", 3, "kbss",
     "unknown key"},
    {"bool as string", "allow_insecure_tee = \"true\"\n", 1, "allow_insecure_tee",
     "must be a boolean (true or false), got a string"},
    {"bool as int", "[kbs]\nenabled = 1\n", 2, "kbs.enabled", "must be a boolean"},
    {"int as string", "stop_timeout_seconds = \"30\"\n", 1, "stop_timeout_seconds",
     "must be an integer, got a string"},
    {"int as float", "stop_timeout_seconds = 1.5\n", 1, "stop_timeout_seconds",
     "must be an integer, got a float"},
    {"string as int", "qemu = 5\n", 1, "qemu", "must be a string, got an integer"},
    {"table as string", "\n\nnetwork = \"user\"\n", 3, "network", "must be a table ([network])"},
    {"zero timeout", "stop_timeout_seconds = 0\n", 1, "stop_timeout_seconds",
     "must be 1..3600, got 0"},
    {"huge timeout", "stop_timeout_seconds = 86400\n", 1, "stop_timeout_seconds",
     "must be 1..3600, got 86400"},
    {"cbitpos too big", "[snp]\ncbitpos = 64\n", 2, "snp.cbitpos", "must be 32..63, got 64"},
    {"reduced_phys_bits zero", "[snp]\nreduced_phys_bits = 0\n", 2, "snp.reduced_phys_bits",
     "must be 1..63, got 0"},
    {"negative policy", "[snp]\npolicy = -1\n", 2, "snp.policy", "got -1"},
    {"policy without reserved bit 17", "[snp]\npolicy = 0x10000\n", 2, "snp.policy",
     "bit 17 is reserved and must be 1"},
    {"policy allows debug", "[snp]\npolicy = 0xb0000\n", 2, "snp.policy", "bit 19"},
    {"tdx debug attribute", "[tdx]\nattributes = 0x10000001\n", 2, "tdx.attributes",
     "allows debugging (bit 0)"},
    {"relative state_dir", "state_dir = \"var/lib/confpod\"\n", 1, "state_dir",
     "must be an absolute path"},
    {"root state_dir", "state_dir = \"/\"\n", 1, "state_dir", "must not be /"},
    {"dotdot runtime_dir", "runtime_dir = \"/run/../tmp\"\n", 1, "runtime_dir",
     "must be normalized"},
    {"empty qemu", "qemu = \"\"\n", 1, "qemu", "must be an absolute path"},
    {"relative firmware", "[firmware]\nsnp = \"OVMF.fd\"\n", 2, "firmware.snp",
     "must be an absolute path"},
    {"trailing slash initrd", "guest_initrd = \"/boot/\"\n", 1, "guest_initrd",
     "must not end in /"},
    {"double slash kernel", "guest_kernel = \"/boot//vmlinuz\"\n", 1, "guest_kernel",
     "must not contain //"},
    {"relative qgs socket", "[tdx]\nqgs_socket = \"qgs.socket\"\n", 2, "tdx.qgs_socket",
     "must be an absolute path"},
    {"bad backend", "backend = \"docker\"\n", 1, "backend",
     "must be qemu or libvirt, got \"docker\""},
    {"bad vmm backend", "[vmm]\nbackend = \"docker\"\n", 2, "vmm.backend",
     "must be qemu or libvirt, got \"docker\""},
    {"unknown vmm key", "[vmm]\nbakend = \"qemu\"\n", 2, "vmm.bakend", "unknown key"},
    {"vmm backend twice, differently", "backend = \"qemu\"\n[vmm]\nbackend = \"libvirt\"\n", 1,
     "backend", "differs from vmm.backend"},
    {"vmm libvirt uri without scheme", "[vmm]\nlibvirt_uri = \"system\"\n", 2, "vmm.libvirt_uri",
     "must be a libvirt URI"},
    {"vmm qemu user not a user name", "[vmm]\nlibvirt_qemu_user = \"../root\"\n", 2,
     "vmm.libvirt_qemu_user", "must be a user name"},
    {"bad vmm channel", "[vmm]\nchannel = \"virtio\"\n", 2, "vmm.channel",
     "must be auto or virtio-serial or vsock, got \"virtio\""},
    {"vsock cid of the host", "[vmm]\nvsock_cid_first = 2\n", 2, "vmm.vsock_cid_first",
     "must be 3..4294901760, got 2"},
    {"vsock cid past the range", "[vmm]\nvsock_cid_first = 4294967295\n", 2, "vmm.vsock_cid_first",
     "must be 3..4294901760"},
    {"channel only in [vmm]", "channel = \"vsock\"\n", 1, "channel", "unknown key"},
    {"qemu user only in [vmm]", "libvirt_qemu_user = \"nobody\"\n", 1, "libvirt_qemu_user",
     "unknown key"},
    {"bad accel", "accel = \"hvf\"\n", 1, "accel", "must be auto or kvm or tcg, got \"hvf\""},
    {"enum is case-sensitive", "backend = \"QEMU\"\n", 1, "backend", "must be qemu or libvirt"},
    {"tcg without insecure tee", "accel = \"tcg\"\n", 1, "accel",
     "needs allow_insecure_tee = true"},
    {"unknown pod network", "[network]\npod_network = \"nat\"\n", 2, "network.pod_network",
     "must be \"user\", \"none\" or a declared network, got \"nat\""},
    {"old mode key with its successor", "[network]\nmode = \"user\"\npod_network = \"user\"\n", 2,
     "network.mode", "is replaced by network.pod_network"},
    {"old mode key, unknown value", "[network]\nmode = \"nat\"\n", 2, "network.mode",
     "must be user or bridge"},
    {"loopback subnet", "[network]\nsubnet = \"127.0.0.0/24\"\n", 1, "network",
     "subnet 127.0.0.0/24 is in the loopback range 127.0.0.0/8"},
    {"link-local subnet", "[network]\nsubnet = \"169.254.0.0/24\"\n", 1, "network",
     "link-local range 169.254.0.0/16"},
    {"multicast subnet6", "[network]\nsubnet6 = \"ff02::/64\"\n", 1, "network",
     "multicast range ff00::/8"},
    {"dns not an address", "[network]\ndns = [\"resolver\"]\n", 2, "network.dns",
     "not an IPv4 or IPv6 address"},
    {"subnet6 host bits", "[network]\nsubnet6 = \"fd00::1/64\"\n", 2, "network.subnet6",
     "host bits set"},
    {"networks overlap",
     "[[networks]]\nname = \"a\"\nbridge = \"br-a\"\nsubnet = \"10.89.0.0/16\"\n", 1, "networks[0]",
     "overlaps 10.89.0.0/24 of network default"},
    {"networks same bridge",
     "[[networks]]\nname = \"a\"\nbridge = \"confpod0\"\nsubnet = \"10.90.0.0/24\"\n", 1,
     "networks[0]", "already belongs to network default"},
    {"networks without subnet", "[[networks]]\nname = \"a\"\nbridge = \"br-a\"\n", 1, "networks[0]",
     "name, bridge and subnet are required"},
    {"subnet without prefix", "[network]\nsubnet = \"10.88.0.0\"\n", 2, "network.subnet",
     "must be IPv4 CIDR"},
    {"subnet host bits", "[network]\nsubnet = \"10.88.0.1/24\"\n", 2, "network.subnet",
     "host bits set; the network is 10.88.0.0/24"},
    {"subnet leading zero", "[network]\nsubnet = \"010.88.0.0/24\"\n", 2, "network.subnet",
     "not a dotted-quad"},
    {"subnet octet > 255", "[network]\nsubnet = \"10.256.0.0/16\"\n", 2, "network.subnet",
     "not a dotted-quad"},
    {"subnet /31", "[network]\nsubnet = \"10.88.0.0/31\"\n", 2, "network.subnet",
     "prefix length must be 8..30"},
    {"subnet ipv6", "[network]\nsubnet = \"fd00::/64\"\n", 2, "network.subnet",
     "not a dotted-quad IPv4"},
    {"bridge too long", "[network]\nbridge = \"confpod-bridge-0\"\n", 2, "network.bridge", "1..15"},
    {"bridge with colon", "[network]\nbridge = \"br0:1\"\n", 2, "network.bridge", "1..15"},
    {"listen without port", "[kbs]\nlisten = \"127.0.0.1\"\n", 2, "kbs.listen",
     "must be host:port"},
    {"listen port zero", "[kbs]\nlisten = \"127.0.0.1:0\"\n", 2, "kbs.listen",
     "port must be 1..65535"},
    {"listen port too big", "[kbs]\nlisten = \"127.0.0.1:65536\"\n", 2, "kbs.listen",
     "port must be 1..65535"},
    {"listen ipv6 without brackets", "[kbs]\nlisten = \"::1:80\"\n", 2, "kbs.listen",
     "host must be"},
    {"plain http off loopback", "[kbs]\n\nlisten = \"0.0.0.0:8080\"\n", 3, "kbs.listen",
     "allow_plain_http = true"},
    {"plain http on a name", "[kbs]\nlisten = \"kbs.example.org:80\"\n", 2, "kbs.listen",
     "plain HTTP off loopback"},
    {"metrics off loopback", "[metrics]\nlisten = \"0.0.0.0:9464\"\n", 2, "metrics.listen",
     "must be a loopback address"},
    {"metrics on a name", "[metrics]\nlisten = \"metrics.example.org:9464\"\n", 2, "metrics.listen",
     "local only"},
    {"metrics unknown key", "[metrics]\nport = 9464\n", 2, "metrics.port", "unknown key"},
    {"127 prefix that is a name", "[kbs]\nlisten = \"127.example.org:80\"\n", 2, "kbs.listen",
     "plain HTTP off loopback"},
    {"cert without key", "[kbs]\ntls_cert = \"/etc/k.crt\"\n", 2, "kbs.tls_cert",
     "must be set together"},
    {"key without cert", "[kbs]\n\ntls_key = \"/etc/k.key\"\n", 3, "kbs.tls_key",
     "must be set together"},
    {"relative cert", "[kbs]\ntls_cert = \"kbs.crt\"\ntls_key = \"/k\"\n", 2, "kbs.tls_cert",
     "must be an absolute path"},
    {"plain http as string", "[kbs]\nallow_plain_http = \"yes\"\n", 2, "kbs.allow_plain_http",
     "must be a boolean"},
    {"libvirt uri without scheme", "libvirt_uri = \"system\"\n", 1, "libvirt_uri",
     "must be a libvirt URI"},
    {"cpu model with options", "cpu_model = \"EPYC,+avx\"\n", 1, "cpu_model",
     "QEMU CPU model name"},
    {"cmdline newline", "kernel_cmdline = \"a\\nb\"\n", 1, "kernel_cmdline",
     "contains a control character"},
    {"syntax error", "state_dir = \"/a\"\nqemu =\n", 2, "syntax", ""},
    {"duplicate key", "backend = \"qemu\"\nbackend = \"libvirt\"\n", 2, "syntax", ""},
};

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, IsInvalidNamingFileLineAndKey) {
  const BadCase& c = GetParam();
  auto r = parse_config(c.toml, "/etc/confpod/confpod.toml");
  ASSERT_FALSE(r.ok()) << c.what << ": accepted";
  EXPECT_EQ(r.error().code, "config.invalid");
  const std::string prefix =
      "/etc/confpod/confpod.toml: line " + std::to_string(c.line) + ": " + c.key + ": ";
  EXPECT_EQ(r.error().message.substr(0, prefix.size()), prefix) << r.error().message;
  EXPECT_NE(r.error().message.find(c.message, prefix.size()), std::string::npos)
      << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadConfig, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           std::string name = info.param.what;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(Config, OldNetworkModeKeyKeepsItsMeaning) {
  // Configs written before named networks: mode chose between user networking and the bridge.
  auto user = parse_config("[network]\nmode = \"user\"\n", "t");
  ASSERT_TRUE(user.ok()) << user.error().describe();
  EXPECT_EQ(user->network.pod_network, "user");
  auto bridge = parse_config("[network]\nmode = \"bridge\"\nbridge = \"br7\"\n", "t");
  ASSERT_TRUE(bridge.ok()) << bridge.error().describe();
  EXPECT_EQ(bridge->network.pod_network, "default");
  EXPECT_EQ(bridge->network.default_network.bridge, "br7");
}

TEST(Config, CmdlineLongerThanTheKernelKeepsIsInvalid) {
  auto r = parse_config("kernel_cmdline = \"" + std::string(2049, 'a') + "\"\n", "c.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.substr(0, 30), "c.toml: line 1: kernel_cmdline");
  EXPECT_NE(r.error().message.find("longer than 2048 bytes"), std::string::npos);
}

TEST(Config, OversizedFileIsInvalid) {
  auto r = parse_config(std::string((1 << 20) + 1, '#'), "big.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "config.invalid");
  EXPECT_NE(r.error().message.find("larger than"), std::string::npos);
}

// --- files -------------------------------------------------------------------------------

TEST(LoadConfig, ReadsAndNamesTheFileInErrors) {
  TempDir dir;
  const std::string good = dir.write("good.toml", "stop_timeout_seconds = 5\n");
  auto r = load_config(good);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->stop_timeout_seconds, 5u);

  const std::string bad = dir.write("bad.toml", "\nstop_timeout_seconds = -5\n");
  auto b = load_config(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, "config.invalid");
  EXPECT_EQ(b.error().message.substr(0, bad.size() + 9), bad + ": line 2:") << b.error().message;
}

TEST(LoadConfig, ExplicitMissingFileIsAReadError) {
  TempDir dir;
  const std::string path = dir.path() + "/absent.toml";
  auto r = load_config(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "config.read");
  EXPECT_NE(r.error().message.find(path), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
}

TEST(LoadConfig, DirectoryIsAReadError) {
  TempDir dir;
  auto r = load_config(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "config.read");
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos);
}

TEST(LoadConfig, MissingDefaultPathMeansDefaults) {
  const std::string path(kDefaultConfigPath);
  if (std::filesystem::exists(path)) GTEST_SKIP() << path << " exists on this machine";
  auto r = load_config(path);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(dump(*r), dump(DaemonConfig{}));
}

// --- the shipped example and the docs -----------------------------------------------------

TEST(ExampleConfig, ParsesToTheDefaults) {
  auto r = load_config(CONFPOD_EXAMPLE_CONFIG);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(dump(*r), dump(DaemonConfig{}));
}

// The example shows each key commented out at its default ("# key = value"). Uncommenting
// all of them must still give the defaults, and must set every key: so the values shown are
// the real defaults and none is missing.
TEST(ExampleConfig, EveryCommentedKeyShowsItsDefault) {
  const std::string text = read_text(CONFPOD_EXAMPLE_CONFIG);
  ASSERT_FALSE(text.empty());
  const std::regex commented_key("^# ([a-z_0-9]+) = (.+)$");
  const std::regex table_header("^\\[([a-z_]+)\\]$");
  std::istringstream in(text);
  std::string line, table, uncommented;
  std::vector<std::string> keys;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, table_header)) {
      table = m[1];
    } else if (std::regex_match(line, m, commented_key)) {
      keys.push_back(table.empty() ? std::string(m[1]) : table + "." + std::string(m[1]));
      line = line.substr(2);
    }
    uncommented += line + "\n";
  }
  std::sort(keys.begin(), keys.end());
  std::vector<std::string> all = kAllKeys;
  std::sort(all.begin(), all.end());
  EXPECT_EQ(keys, all);
  // The insecure-TEE gate stays off even in the uncommented example.
  auto r = parse_config(uncommented, "uncommented example");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(dump(*r), dump(DaemonConfig{}));
}

TEST(ConfigDocs, DocumentEveryKey) {
  const std::string doc = read_text(CONFPOD_CONFIG_DOC);
  ASSERT_FALSE(doc.empty());
  for (const std::string& key : kAllKeys) {
    const std::size_t dot = key.find('.');
    const std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
    const std::string table = dot == std::string::npos ? "" : key.substr(0, dot);
    if (!table.empty()) {
      EXPECT_NE(doc.find("`[" + table + "]`"), std::string::npos) << table;
    }
    EXPECT_NE(doc.find("| `" + leaf + "` |"), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace confpod::config
