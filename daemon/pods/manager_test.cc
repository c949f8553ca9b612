// The pod manager against a real store (SQLite in a temp dir) and real QEMU under TCG with
// the test guest (guest/image). Each test drives the sd-event loop itself.
#include "daemon/pods/manager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "attest/measure/snp_measure.h"
#include "attest/measure/tdx_measure.h"
#include "daemon/pods/measurement.h"
#include "daemon/pods/pods_test_fixture.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "tests/support/bus.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"
#include "vmm/probe.h"
#include "vmm/qemu_argv.h"

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;
using store::PodState;
using testing_support::PodsTest;

TEST(PodsHelpers, SanitizeUtf8) {
  EXPECT_EQ(sanitize_utf8("plain\n"), "plain\n");
  EXPECT_EQ(sanitize_utf8("\xc3\xa9t\xc3\xa9"), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(sanitize_utf8(std::string("a\0b", 3)),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(sanitize_utf8("\xff"), "\xef\xbf\xbd");
  EXPECT_EQ(sanitize_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong '/'
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(sanitize_utf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");                  // truncated
  EXPECT_EQ(sanitize_utf8("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
}

TEST_F(PodsTest, CreateValidatesAndPersists) {
  with_guest_ = false;
  auto m = make_manager(options());
  ASSERT_TRUE(m);

  auto bad = m->create_pod("name = \"x\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "spec.invalid");

  std::string huge(spec::kMaxSpecBytes + 1, '#');
  auto oversize = m->create_pod(huge);
  ASSERT_FALSE(oversize.ok());
  EXPECT_EQ(oversize.error().code, "spec.invalid");
  EXPECT_NE(oversize.error().message.find(std::to_string(huge.size())), std::string::npos);

  auto created = m->create_pod(spec("web"));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_EQ(created->state, PodState::kCreated);
  EXPECT_EQ(created->tee, "none");
  EXPECT_EQ(created->measurement, "");  // tee none: nothing to measure
  EXPECT_GT(created->created_at_us, 0);
  // The canonical form, with the network the daemon chose written in.
  spec::PodSpec stored = *spec::parse_pod_spec(spec("web"));
  stored.network = "user";
  EXPECT_EQ(created->spec_toml, spec::to_toml(stored));
  EXPECT_EQ(created->network, "user");
  EXPECT_EQ(created->address, "");

  auto dup = m->create_pod(spec("web"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "pods.exists");

  // Another manager on the same state dir sees the pod.
  m.reset();
  auto again = make_manager(options());
  ASSERT_TRUE(again);
  ASSERT_NE(again->find("web"), nullptr);
  EXPECT_EQ(*again->find("web"), *created);
  EXPECT_EQ(again->list().size(), 1u);
}

TEST_F(PodsTest, TeeNoneNeedsAllowInsecure) {
  with_guest_ = false;
  auto m = make_manager(options(false));
  ASSERT_TRUE(m);
  auto created = m->create_pod(spec("web"));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code, "vmm.tee_unavailable") << created.error().describe();
  EXPECT_EQ(m->list().size(), 0u);
}

TEST_F(PodsTest, InvalidStatesAndUnknownNames) {
  with_guest_ = false;
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("web")).ok());
  Status stop = call([&](Manager::Done d) { m->stop_pod("web", d); });
  EXPECT_EQ(stop.error().code, "pods.invalid_state");
  Status kill = call([&](Manager::Done d) { m->kill_pod("web", d); });
  EXPECT_EQ(kill.error().code, "pods.invalid_state");
  std::string hostile = "../../etc\n\x01" + std::string(300, 'x');
  Status start = call([&](Manager::Done d) { m->start_pod(hostile, d); });
  ASSERT_FALSE(start.ok());
  EXPECT_EQ(start.error().code, "pods.not_found");
  EXPECT_LT(start.error().message.size(), 120u);
  EXPECT_EQ(start.error().message.find('\n'), std::string::npos);
  EXPECT_FALSE(m->pod_log(hostile, 100).ok());
}

// [vmm] channel is decided at CreatePod and kept with the pod: a vsock pod gets the lowest
// CID from vsock_cid_first up that no pod holds, in SQLite (a new manager sees it), free
// again once the pod is removed.
TEST_F(PodsTest, VsockPodsGetTheLowestFreeCidKeptWithThePod) {
  with_guest_ = false;
  auto o = options();
  o.config.channel = "vsock";
  o.config.vsock_cid_first = 20000;
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  auto a = m->create_pod(spec("a"));
  auto b = m->create_pod(spec("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->vsock_cid, 20000u);
  EXPECT_EQ(b->vsock_cid, 20001u);
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("a", false, d); }).ok());
  auto c = m->create_pod(spec("c"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->vsock_cid, 20000u);
  m.reset();

  // After a restart with the channel changed, the pods keep theirs; new ones take the new.
  o.config.channel = "virtio-serial";
  auto again = make_manager(o);
  ASSERT_TRUE(again);
  ASSERT_NE(again->find("b"), nullptr);
  EXPECT_EQ(again->find("b")->vsock_cid, 20001u);
  EXPECT_EQ(again->find("c")->vsock_cid, 20000u);
  auto d = again->create_pod(spec("d"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->vsock_cid, 0u);
}

// "auto" takes vsock where the probe found /dev/vhost-vsock, virtio-serial elsewhere.
TEST_F(PodsTest, AutoChannelFollowsWhatTheProbeFound) {
  with_guest_ = false;
  auto o = options();
  o.config.channel = "auto";
  o.config.vsock_cid_first = 30000;
  o.probe.dev_vhost_vsock = false;
  {
    auto m = make_manager(o);
    ASSERT_TRUE(m);
    auto serial = m->create_pod(spec("serial"));
    ASSERT_TRUE(serial.ok());
    EXPECT_EQ(serial->vsock_cid, 0u);
  }
  o.probe.dev_vhost_vsock = true;
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  auto vsock = m->create_pod(spec("vsock"));
  ASSERT_TRUE(vsock.ok());
  EXPECT_EQ(vsock->vsock_cid, 30000u);
  EXPECT_EQ(m->find("serial")->vsock_cid, 0u);
}

// A vsock pod on a host without /dev/vhost-vsock (the module unloaded since it was created,
// or channel = "vsock" forced): the start fails before QEMU, saying what is missing.
TEST_F(PodsTest, AVsockPodWithoutVhostVsockFailsToStartSayingWhy) {
  with_guest_ = false;
  auto o = options();
  o.config.channel = "vsock";
  o.config.vsock_cid_first = 40000;
  o.config.host.kernel = dir_.path() + "/vmlinuz";  // never read: the start stops before
  o.config.host.initrd = dir_.path() + "/initrd.img";
  o.probe.dev_vhost_vsock = false;
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("web")).ok());
  Status started = call([&](Manager::Done d) { m->start_pod("web", d); });
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, "pods.no_vsock");
  EXPECT_NE(started.error().message.find("over vsock (CID 40000)"), std::string::npos)
      << started.error().message;
  EXPECT_NE(started.error().message.find("no /dev/vhost-vsock"), std::string::npos)
      << started.error().message;
  EXPECT_EQ(state(*m, "web"), PodState::kCreated);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/run/pods/web/qemu.pid"));
}

TEST_F(PodsTest, NewManagerReattachesRunningVm) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("keep")).ok());
  ASSERT_TRUE(m->create_pod(spec("idle")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("keep", d); }).ok());
  m.reset();  // the daemon goes away; the VM stays

  auto again = make_manager(options());
  ASSERT_TRUE(again);
  EXPECT_EQ(state(*again, "keep"), PodState::kRunning);
  EXPECT_EQ(state(*again, "idle"), PodState::kCreated);
  ASSERT_TRUE(call([&](Manager::Done d) { again->kill_pod("keep", d); }).ok());
  EXPECT_EQ(state(*again, "keep"), PodState::kExited);
  EXPECT_EQ(again->find("keep")->exit_status, 137);
}

TEST_F(PodsTest, ReattachFailureMarksFailed) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("gone")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("gone", d); }).ok());
  pid_t pid = qemu_pid("gone");
  ASSERT_GT(pid, 0);
  m.reset();
  ::kill(pid, SIGKILL);
  // Reap it (we are its parent: the manager ran in this process).
  int status = 0;
  ::waitpid(pid, &status, 0);

  auto again = make_manager(options());
  ASSERT_TRUE(again);
  EXPECT_EQ(state(*again, "gone"), PodState::kFailed);
  EXPECT_EQ(again->find("gone")->exit_status, -1);
}

// --- Expected launch measurements -------------------------------------------------------------

// ../shared/fixtures/snp/README.md "snp_only": AmdSev suffix, empty kernel and initrd,
// -append "console=ttyS0 loglevel=7", 1 EPYC-v4 vCPU, guest features 0x1, QEMU.
constexpr const char* kSnpOnlyDigest =
    "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b"
    "08fa";
// ../shared/fixtures/tdx/README.md, case 7: synthetic_tdvf_64k.bin.
constexpr const char* kSyntheticTdvfMrtd =
    "1918701c3755294a3e9d5492f555e94d273e3e752123c3d1c1f865c424781d9647c2bdbe3bf7fc84e0a1f6faca14"
    "34da";
constexpr const char* kReadmeCmdline = "console=ttyS0 loglevel=7";

// A host that says it can run SEV-SNP and TDX (this one cannot: CreatePod only checks the probe).
vmm::HostProbe tee_probe() {
  vmm::HostProbe p;
  p.dev_kvm = p.dev_sev = true;
  p.kvm_amd_loaded = true;
  p.kvm_amd_sev_snp = true;
  p.kvm_intel_loaded = true;
  p.kvm_intel_tdx = true;
  p.cpuid.leaf_present = p.cpuid.sev = p.cpuid.sev_es = p.cpuid.sev_snp = true;
  p.cpuid.cbitpos = 51;
  p.cpuid.reduced_phys_bits = 1;
  p.qemu.binary = "/usr/bin/qemu-system-x86_64";
  p.qemu.runs = true;
  p.qemu.has_sev_snp_guest = p.qemu.has_tdx_guest = p.qemu.has_memory_backend_memfd = true;
  return p;
}

// Every change the listener hears of, with the record as it was then.
struct RecordingListener : Listener {
  std::vector<store::PodRecord> added;
  std::vector<std::pair<store::PodRecord, unsigned>> changed;
  void pod_added(const store::PodRecord& pod) override { added.push_back(pod); }
  void pod_changed(const store::PodRecord& pod, unsigned changes) override {
    changed.emplace_back(pod, changes);
  }
  void pod_removed(const store::PodRecord&) override {}
};

// A second listener (the KBS's reference values) hears what the main one hears.
TEST_F(PodsTest, AddedListenersHearAddAndRemove) {
  with_guest_ = false;
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  RecordingListener main, second;
  struct Removals : RecordingListener {
    std::vector<std::string> removed;
    void pod_removed(const store::PodRecord& pod) override { removed.push_back(pod.name); }
  } third;
  m->set_listener(&main);
  m->add_listener(&second);
  m->add_listener(&third);
  ASSERT_TRUE(m->create_pod(spec("web")).ok());
  ASSERT_EQ(second.added.size(), 1u);
  EXPECT_EQ(second.added[0].name, "web");
  ASSERT_EQ(third.added.size(), 1u);
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("web", false, d); }).ok());
  EXPECT_EQ(third.removed, std::vector<std::string>{"web"});
  // Removed listeners hear nothing more.
  m->remove_listener(&second);
  ASSERT_TRUE(m->create_pod(spec("db")).ok());
  EXPECT_EQ(second.added.size(), 1u);
  EXPECT_EQ(third.added.size(), 2u);
  EXPECT_EQ(main.added.size(), 2u);
  m->set_listener(nullptr);
  m->remove_listener(&third);
}

class PodsMeasureTest : public PodsTest {
 protected:
  void SetUp() override {
    PodsTest::SetUp();
    with_guest_ = false;
    kernel_ = dir_.write("vmlinuz", "");
    initrd_ = dir_.write("initrd.img", "");
  }

  // SNP and TDX configured with the real fixtures, the README's cmdline and vCPU type.
  ManagerOptions tee_options() {
    ManagerOptions o = options(false);
    o.config.host.accel = "kvm";
    o.config.host.cpu_model = "EPYC-v4";
    o.config.host.firmware_snp = testing::fixture_path("snp/ovmf_AmdSev_suffix.bin");
    o.config.host.firmware_tdx = testing::fixture_path("tdx/synthetic_tdvf_64k.bin");
    o.config.host.kernel = kernel_;
    o.config.host.initrd = initrd_;
    o.config.host.kernel_cmdline = kReadmeCmdline;
    o.probe = tee_probe();
    return o;
  }

  std::string tee_spec(const std::string& name, const std::string& tee, unsigned vcpus = 1) {
    return "name = \"" + name + "\"\ntee = \"" + tee +
           "\"\n[vm]\nvcpus = " + std::to_string(vcpus) +
           "\nmemory_mib = 256\n[[containers]]\nname = \"app\"\n"
           "image = \"oci-archive:" +
           image_path_ + "@sha256:" + std::string(64, '0') + "\"\n";
  }

  // attest/measure called directly on the same inputs the daemon is configured with.
  static std::string library_snp_digest(const std::string& kernel, const std::string& initrd,
                                        const std::string& cmdline, std::uint32_t vcpus,
                                        std::uint32_t signature) {
    Bytes ovmf = testing::read_fixture("snp/ovmf_AmdSev_suffix.bin");
    Bytes k = read_file(kernel).value();
    Bytes i = read_file(initrd).value();
    measure::SnpParams params;
    params.vcpus = vcpus;
    params.vcpu_signature = signature;
    params.guest_features = 0x1;
    params.vmm = measure::VmmType::kQemu;
    auto digest = measure::snp_launch_digest(ovmf, measure::kernel_hashes(k, i, cmdline), params);
    EXPECT_TRUE(digest.ok()) << digest.error().describe();
    return digest.ok() ? to_hex(*digest) : "";
  }

  std::string kernel_, initrd_;
};

TEST(PodsMeasurement, CpuModelIsTheOneQemuArgvUses) {
  vmm::VmConfig c;
  c.name = "m";
  c.tee = vmm::Tee::kNone;
  c.allow_insecure_tee = true;
  c.qmp_socket = "/run/q.sock";
  c.pidfile = "/run/q.pid";
  c.serial_log = "/run/s.log";
  struct Case {
    const char* accel;
    const char* model;
  } cases[] = {{"kvm", ""}, {"tcg", ""}, {"kvm", "EPYC-v4"}, {"tcg", "EPYC-Milan"}};
  for (const auto& k : cases) {
    c.accel = k.accel;
    c.cpu_model = k.model;
    auto argv = vmm::qemu_argv(c);
    ASSERT_TRUE(argv.ok()) << argv.error().describe();
    auto at = std::find(argv->begin(), argv->end(), "-cpu");
    ASSERT_NE(at, argv->end());
    EXPECT_EQ(effective_cpu_model(c), *(at + 1)) << k.accel << " " << k.model;
  }
}

TEST(PodsMeasurement, HostCpuSignatureAsQemuDecodesIt) {
  // CPUID leaf 1 EAX of real parts: Rome 23/49/0, Milan 25/1/1, Genoa 25/17/0.
  EXPECT_EQ(qemu_host_vcpu_signature(0x00830f10), measure::vcpu_signature("EPYC-Rome").value());
  EXPECT_EQ(qemu_host_vcpu_signature(0x00a00f11), measure::vcpu_signature("EPYC-Milan").value());
  EXPECT_EQ(qemu_host_vcpu_signature(0x00a10f10), measure::vcpu_signature("EPYC-Genoa").value());
  // Reserved and processor-type bits do not survive QEMU's decoding.
  EXPECT_EQ(qemu_host_vcpu_signature(0xf0a03f11), measure::vcpu_signature("EPYC-Milan").value());

  vmm::VmConfig vm;
  vm.vcpus = 2;
  vm.accel = "kvm";
  auto host = snp_params(vm, 0x00a00f11);  // "-cpu host"
  ASSERT_TRUE(host.ok()) << host.error().describe();
  EXPECT_EQ(host->vcpu_signature, 0x00a00f11u);
  EXPECT_EQ(host->vcpus, 2u);
  EXPECT_EQ(host->guest_features, 0x1u);
  EXPECT_EQ(host->vmm, measure::VmmType::kQemu);
  vm.cpu_model = "max";  // under KVM also the host's signature
  EXPECT_EQ(snp_params(vm, 0x00a00f11)->vcpu_signature, 0x00a00f11u);
  vm.cpu_model = "EPYC-Genoa";
  EXPECT_EQ(snp_params(vm, std::nullopt)->vcpu_signature,
            measure::vcpu_signature("EPYC-Genoa").value());
  vm.cpu_model = "Skylake-Server";
  auto unknown = snp_params(vm, 0x00a00f11);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "measure.params");
  EXPECT_NE(unknown.error().message.find("Skylake-Server"), std::string::npos);
}

TEST_F(PodsMeasureTest, SnpPodGetsTheLaunchDigestOfItsFiles) {
  auto m = make_manager(tee_options());
  ASSERT_TRUE(m);
  RecordingListener listener;
  m->set_listener(&listener);

  auto created = m->create_pod(tee_spec("secure", "snp"));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_EQ(created->tee, "snp");
  EXPECT_EQ(created->measurement, kSnpOnlyDigest);
  EXPECT_EQ(created->measurement, library_snp_digest(kernel_, initrd_, kReadmeCmdline, 1,
                                                     measure::vcpu_signature("EPYC-v4").value()));
  // Announced with the value already in place (InterfacesAdded carries it).
  ASSERT_EQ(listener.added.size(), 1u);
  EXPECT_EQ(listener.added[0].measurement, kSnpOnlyDigest);

  // A kernel, initrd and 3 vCPUs that are not the README's: still what the library computes.
  std::string kernel = dir_.write("vmlinuz-big", std::string(300000, 'k'));
  std::string initrd = dir_.write("initrd-big", std::string(500000, 'i'));
  ManagerOptions o = tee_options();
  o.config.host.kernel = kernel;
  o.config.host.initrd = initrd;
  o.config.host.kernel_cmdline = "console=ttyS0 quiet";
  o.config.host.cpu_model = "EPYC-Genoa";
  o.config.state_dir = dir_.path() + "/state2";
  auto m2 = make_manager(o);
  ASSERT_TRUE(m2);
  auto big = m2->create_pod(tee_spec("big", "snp", 3));
  ASSERT_TRUE(big.ok()) << big.error().describe();
  EXPECT_EQ(big->measurement, library_snp_digest(kernel, initrd, "console=ttyS0 quiet", 3,
                                                 measure::vcpu_signature("EPYC-Genoa").value()));
  EXPECT_NE(big->measurement, kSnpOnlyDigest);

  // The stored record survives the daemon.
  m->set_listener(nullptr);
  m.reset();
  auto again = make_manager(tee_options());
  ASSERT_TRUE(again);
  ASSERT_NE(again->find("secure"), nullptr);
  EXPECT_EQ(again->find("secure")->measurement, kSnpOnlyDigest);
  EXPECT_EQ(*again->find("secure"), *created);
}

TEST_F(PodsMeasureTest, SnpPodWithCpuHostUsesThisCpusSignature) {
  ManagerOptions o = tee_options();
  o.config.host.cpu_model = "";                                 // "-cpu host" under kvm
  o.host_cpu_signature = qemu_host_vcpu_signature(0x00a00f11);  // a Milan host
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  auto created = m->create_pod(tee_spec("host", "snp", 2));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_EQ(created->measurement,
            library_snp_digest(kernel_, initrd_, kReadmeCmdline, 2,
                               measure::vcpu_signature("EPYC-Milan").value()));
}

TEST_F(PodsMeasureTest, TdxPodGetsTheMrtdOfItsFirmware) {
  auto m = make_manager(tee_options());
  ASSERT_TRUE(m);
  auto created = m->create_pod(tee_spec("td", "tdx", 2));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_EQ(created->tee, "tdx");
  EXPECT_EQ(created->measurement, kSyntheticTdvfMrtd);
  auto library = measure::tdx_mrtd(testing::read_fixture("tdx/synthetic_tdvf_64k.bin"));
  ASSERT_TRUE(library.ok());
  EXPECT_EQ(created->measurement, to_hex(*library));

  m.reset();
  auto again = make_manager(tee_options());
  ASSERT_TRUE(again);
  ASSERT_NE(again->find("td"), nullptr);
  EXPECT_EQ(again->find("td")->measurement, kSyntheticTdvfMrtd);
}

TEST_F(PodsMeasureTest, UnmeasurableFirmwareRefusesThePod) {
  struct Case {
    std::string firmware_snp, firmware_tdx, cpu_model, tee, code, says;
  };
  const std::string missing = dir_.path() + "/no-such-ovmf.fd";
  const std::string blank = dir_.write("blank.fd", std::string(4096, '\0'));
  const Case cases[] = {
      // The firmware file is not there.
      {missing, "", "EPYC-v4", "snp", "measure.input", missing},
      {"", missing, "EPYC-v4", "tdx", "measure.input", missing},
      // Firmware without SEV metadata / TDX metadata.
      {blank, "", "EPYC-v4", "snp", "measure.ovmf", "pod bad"},
      {"", testing::fixture_path("snp/ovmf_AmdSev_suffix.bin"), "EPYC-v4", "tdx", "measure.tdvf",
       "TDX MRTD"},
      // An OVMF that cannot measure the kernel QEMU is given.
      {testing::fixture_path("snp/ovmf_OvmfX64_suffix.bin"), "", "EPYC-v4", "snp",
       "measure.ovmf.kernel_hashes", "SEV-SNP launch digest"},
      // A CPU model whose VMSA signature is unknown.
      {testing::fixture_path("snp/ovmf_AmdSev_suffix.bin"), "", "Skylake-Server", "snp",
       "measure.params", "Skylake-Server"},
  };
  int n = 0;
  for (const Case& c : cases) {
    ManagerOptions o = tee_options();
    o.config.state_dir = dir_.path() + "/state" + std::to_string(n++);
    o.config.host.firmware_snp = c.firmware_snp;
    o.config.host.firmware_tdx = c.firmware_tdx;
    o.config.host.cpu_model = c.cpu_model;
    auto m = make_manager(o);
    ASSERT_TRUE(m);
    auto created = m->create_pod(tee_spec("bad", c.tee));
    ASSERT_FALSE(created.ok()) << c.code;
    EXPECT_EQ(created.error().code, c.code) << created.error().describe();
    EXPECT_NE(created.error().message.find("pod bad: cannot compute the expected"),
              std::string::npos)
        << created.error().message;
    EXPECT_NE(created.error().message.find(c.says), std::string::npos) << created.error().message;
    EXPECT_EQ(m->find("bad"), nullptr);  // nothing stored
    EXPECT_TRUE(m->list().empty());
  }
}

TEST_F(PodsMeasureTest, SecondPodWithTheSameFilesIsACacheHit) {
  // Files changed less than a second before they were hashed are hashed again next time;
  // let the freshly written kernel and initrd settle so the second pod reads nothing.
  std::this_thread::sleep_for(1100ms);
  auto m = make_manager(tee_options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(tee_spec("a", "snp")).ok());
  Measurer::Stats first = m->measurement_stats();
  EXPECT_EQ(first.cache.misses, 1u);
  EXPECT_EQ(first.cache.hits, 0u);
  EXPECT_EQ(first.cache.firmware_loads, 1u);
  EXPECT_EQ(first.files_hashed, 3u);  // firmware, kernel, initrd

  auto b = m->create_pod(tee_spec("b", "snp"));
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ(b->measurement, kSnpOnlyDigest);
  Measurer::Stats second = m->measurement_stats();
  EXPECT_EQ(second.cache.hits, 1u);
  EXPECT_EQ(second.cache.misses, 1u);
  EXPECT_EQ(second.cache.firmware_loads, 1u);
  EXPECT_EQ(second.files_hashed, 3u);  // no file read again
  EXPECT_EQ(second.files_unchanged, 3u);

  // TDX likewise: the second pod is a lookup.
  ASSERT_TRUE(m->create_pod(tee_spec("t1", "tdx")).ok());
  ASSERT_TRUE(m->create_pod(tee_spec("t2", "tdx")).ok());
  Measurer::Stats tdx = m->measurement_stats();
  EXPECT_EQ(tdx.cache.hits, 2u);
  EXPECT_EQ(tdx.files_hashed, 4u);

  // A changed initrd is seen (re-hashed, new digest); the firmware pages are not hashed again.
  std::ofstream(initrd_, std::ios::binary | std::ios::trunc) << "new initrd";
  auto c = m->create_pod(tee_spec("c", "snp"));
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_NE(c->measurement, kSnpOnlyDigest);
  EXPECT_EQ(c->measurement, library_snp_digest(kernel_, initrd_, kReadmeCmdline, 1,
                                               measure::vcpu_signature("EPYC-v4").value()));
  Measurer::Stats third = m->measurement_stats();
  EXPECT_EQ(third.files_hashed, 5u);
  EXPECT_EQ(third.cache.firmware_loads, tdx.cache.firmware_loads);
}

TEST_F(PodsMeasureTest, StartRecomputesAndAnnouncesAChangedMeasurement) {
  ManagerOptions o = tee_options();
  // QEMU is not run for real here: the start fails right after the measurement step.
  o.config.host.qemu_binary = "/bin/false";
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  RecordingListener listener;
  m->set_listener(&listener);
  ASSERT_TRUE(m->create_pod(tee_spec("secure", "snp")).ok());
  ASSERT_EQ(m->find("secure")->measurement, kSnpOnlyDigest);

  // Unchanged files: no measurement change is announced.
  Status first = call([&](Manager::Done d) { m->start_pod("secure", d); });
  EXPECT_FALSE(first.ok());  // /bin/false is no QEMU
  for (const auto& [record, changes] : listener.changed)
    EXPECT_EQ(changes & kChangeMeasurement, 0u);
  EXPECT_EQ(m->find("secure")->measurement, kSnpOnlyDigest);

  // The admin replaces the kernel: the next start measures the new one, stores it, and says so
  // before the VM is started.
  std::ofstream(kernel_, std::ios::binary | std::ios::trunc) << "another kernel";
  std::string expected = library_snp_digest(kernel_, initrd_, kReadmeCmdline, 1,
                                            measure::vcpu_signature("EPYC-v4").value());
  listener.changed.clear();
  Status second = call([&](Manager::Done d) { m->start_pod("secure", d); });
  EXPECT_FALSE(second.ok());
  ASSERT_FALSE(listener.changed.empty());
  EXPECT_EQ(listener.changed[0].second, static_cast<unsigned>(kChangeMeasurement));
  EXPECT_EQ(listener.changed[0].first.measurement, expected);
  EXPECT_EQ(listener.changed[0].first.state, PodState::kFailed);  // from the first start
  EXPECT_EQ(m->find("secure")->measurement, expected);
  m->set_listener(nullptr);
  m.reset();
  auto again = make_manager(o);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->find("secure")->measurement, expected);

  // A kernel that has gone: the start is refused with the measurement error, nothing changes.
  std::filesystem::remove(kernel_);
  Status third = call([&](Manager::Done d) { again->start_pod("secure", d); });
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, "measure.input") << third.error().describe();
  EXPECT_NE(third.error().message.find(kernel_), std::string::npos);
  EXPECT_EQ(again->find("secure")->state, PodState::kFailed);
  EXPECT_EQ(again->find("secure")->measurement, expected);
}

TEST_F(PodsMeasureTest, ReferenceValuesForTheKbs) {
  ManagerOptions o = tee_options();
  o.config.host.allow_insecure_tee = true;
  o.config.host.accel = "kvm";
  auto m = make_manager(o);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(tee_spec("s", "snp")).ok());
  ASSERT_TRUE(m->create_pod(tee_spec("t", "tdx")).ok());
  ASSERT_TRUE(m->create_pod(tee_spec("n", "none")).ok());

  auto snp = m->reference_values("s");
  ASSERT_TRUE(snp.ok()) << snp.error().describe();
  EXPECT_EQ(snp->tee, vmm::Tee::kSnp);
  EXPECT_EQ(snp->measurement, kSnpOnlyDigest);
  std::string init_data =
      spec::init_data_text(*spec::parse_pod_spec(tee_spec("s", "snp")), m->config().host);
  EXPECT_EQ(snp->init_data_digest, to_hex(crypto::sha256(as_bytes(init_data))));
  EXPECT_EQ(snp->snp_policy, o.config.host.snp_policy);

  auto tdx = m->reference_values("t");
  ASSERT_TRUE(tdx.ok()) << tdx.error().describe();
  EXPECT_EQ(tdx->tee, vmm::Tee::kTdx);
  EXPECT_EQ(tdx->measurement, kSyntheticTdvfMrtd);
  init_data = spec::init_data_text(*spec::parse_pod_spec(tee_spec("t", "tdx")), m->config().host);
  EXPECT_EQ(tdx->init_data_digest, to_hex(crypto::sha384(as_bytes(init_data))));
  EXPECT_EQ(tdx->tdx_attributes, o.config.host.tdx_attributes);

  auto none = m->reference_values("n");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "pods.invalid_state");
  EXPECT_EQ(m->find("n")->measurement, "");
  EXPECT_EQ(m->reference_values("nope").error().code, "pods.not_found");
}

}  // namespace
}  // namespace confpod::pods
