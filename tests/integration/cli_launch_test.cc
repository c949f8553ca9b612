// confpodctl qemu-argv and host-probe, run as real processes: the argv binds the canonical
// spec (init-data) into the TEE launch parameters, --tee overrides the spec, bad specs are
// rejected with one line naming the problem, and the probe reports this host truthfully.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using testing::ProcessResult;
using testing::run_process;
using testing::TempDir;

ProcessResult ctl(std::vector<std::string> args) {
  args.insert(args.begin(), CONFPODCTL_PATH);
  return run_process(args);
}

std::string spec_file(const std::string& name) {
  return std::string(CONFPOD_SPEC_DATA) + "/" + name;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The value following `flag` whose text contains `needle` (e.g. the -object that is the
// sev-snp-guest); empty when there is none.
std::string arg_after(const std::vector<std::string>& argv, const std::string& flag,
                      const std::string& needle) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag && argv[i + 1].find(needle) != std::string::npos) return argv[i + 1];
  return "";
}

// The init-data the argv must bind: the canonical TOML of the parsed spec.
// The pod's init-data document as qemu-argv derives it (the default KBS URL for guests).
std::string pod_init_data(const spec::PodSpec& pod) {
  spec::HostDefaults host;
  host.kbs_guest_url = "http://10.0.2.2:8080";
  return spec::init_data_text(pod, host);
}

std::string canonical_init_data(const std::string& path) {
  auto text = read_text_file(path);
  EXPECT_TRUE(text.ok());
  auto pod = spec::parse_pod_spec(*text);
  EXPECT_TRUE(pod.ok()) << pod.error().describe();
  return pod_init_data(*pod);
}

ByteView view(const std::string& s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

TEST(CliQemuArgv, SnpSpecBindsInitDataAsHostData) {
  auto r = ctl({"qemu-argv", spec_file("good/payroll.toml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto argv = lines(r.out);
  ASSERT_FALSE(argv.empty());
  EXPECT_NE(argv[0].find("qemu-system-x86_64"), std::string::npos) << argv[0];

  std::string snp = arg_after(argv, "-object", "sev-snp-guest");
  ASSERT_FALSE(snp.empty()) << r.out;
  std::string host_data =
      to_base64(crypto::sha256(view(canonical_init_data(spec_file("good/payroll.toml")))));
  EXPECT_NE(snp.find("host-data=" + host_data), std::string::npos) << snp;
  EXPECT_NE(snp.find("kernel-hashes=on"), std::string::npos) << snp;
  std::string machine = arg_after(argv, "-machine", "confidential-guest-support=");
  EXPECT_NE(machine.find("memory-backend="), std::string::npos) << machine;
  EXPECT_FALSE(arg_after(argv, "-object", "memory-backend-memfd").empty()) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST(CliQemuArgv, TeeOverrideToTdxBindsInitDataAsMrConfigId) {
  auto r = ctl({"qemu-argv", spec_file("good/payroll.toml"), "--tee", "tdx"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto argv = lines(r.out);
  EXPECT_TRUE(arg_after(argv, "-object", "sev-snp-guest").empty());
  std::string tdx = arg_after(argv, "-object", "tdx-guest");
  ASSERT_FALSE(tdx.empty()) << r.out;
  // The override changes the tee, so the bound init-data is the pod's with tee = "tdx".
  auto text = read_text_file(spec_file("good/payroll.toml"));
  ASSERT_TRUE(text.ok());
  auto pod = spec::parse_pod_spec(*text);
  ASSERT_TRUE(pod.ok());
  pod->tee = vmm::Tee::kTdx;
  std::string mrconfigid = to_base64(crypto::sha384(view(pod_init_data(*pod))));
  EXPECT_NE(tdx.find(mrconfigid), std::string::npos) << tdx;
}

TEST(CliQemuArgv, TeeNoneIsTcgAndWarnedInsecure) {
  auto r = ctl({"qemu-argv", spec_file("good/payroll.toml"), "--tee", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto argv = lines(r.out);
  EXPECT_TRUE(arg_after(argv, "-object", "sev-snp-guest").empty());
  EXPECT_TRUE(arg_after(argv, "-object", "tdx-guest").empty());
  EXPECT_FALSE(arg_after(argv, "-accel", "tcg").empty()) << r.out;
  EXPECT_NE(r.err.find("INSECURE"), std::string::npos) << r.err;
}

TEST(CliQemuArgv, BadSpecsAreRejectedNamingTheProblem) {
  std::size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(spec_file("bad"))) {
    auto r = ctl({"qemu-argv", entry.path().string()});
    EXPECT_EQ(r.exit_code, 1) << entry.path() << ": " << r.out << r.err;
    EXPECT_EQ(r.out, "") << entry.path();
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << entry.path() << r.err;
    EXPECT_NE(r.err.find("spec.invalid"), std::string::npos) << entry.path() << r.err;
    // Each bad spec starts with "# expect: <what the error must name>".
    auto text = read_text_file(entry.path().string());
    ASSERT_TRUE(text.ok());
    const std::string marker = "# expect: ";
    ASSERT_EQ(text->rfind(marker, 0), 0u) << entry.path();
    std::string expected = text->substr(marker.size(), text->find('\n') - marker.size());
    EXPECT_NE(r.err.find(expected), std::string::npos)
        << entry.path() << ": expected '" << expected << "' in: " << r.err;
    ++checked;
  }
  EXPECT_GT(checked, 10u);
}

TEST(CliQemuArgv, UnusableArgumentsExitTwo) {
  TempDir dir;
  for (auto args : std::vector<std::vector<std::string>>{
           {"qemu-argv", dir.path() + "/missing.toml"},
           {"qemu-argv", spec_file("good/payroll.toml"), "--tee", "sgx"},
           {"qemu-argv"},
       }) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << r.out << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(r.err.empty());
  }
}

TEST(CliHostProbe, SaysWhichAcceleratorTeeNonePodsGetAndWhy) {
  testing::TempDir run;
  // No verdict of confpodd's yet: without /dev/kvm the answer is known, with it not.
  auto fresh = ctl({"host-probe", "--runtime-dir", run.path()});
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  auto accel = nlohmann::json::parse(fresh.out)["tee"]["none"]["accel"];
  if (!std::filesystem::exists("/dev/kvm")) {
    EXPECT_EQ(accel["accel"], "tcg") << accel;
    EXPECT_EQ(accel["reason"], "no /dev/kvm on this host") << accel;
  } else {
    EXPECT_EQ(accel["accel"], "unknown") << accel;
  }
  // confpodd's verdict, as its start-up check leaves it, is what host-probe reports.
  run.write(
      "tee-none-accel.json",
      R"({"key":"k","accel":"kvm","reason":"a test guest booted and powered off under KVM in 812 ms"})");
  auto cached = ctl({"host-probe", "--runtime-dir", run.path()});
  accel = nlohmann::json::parse(cached.out)["tee"]["none"]["accel"];
  EXPECT_EQ(accel["accel"], "kvm");
  EXPECT_NE(accel["source"].get<std::string>().find("confpodd's check"), std::string::npos);
}

TEST(CliHostProbe, ReportsThisHost) {
  auto r = ctl({"host-probe"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;

  // QEMU answers here: the probe's version is the one the binary itself prints.
  ASSERT_TRUE(j["qemu"]["runs"].get<bool>()) << r.out;
  auto version = run_process({"/usr/bin/qemu-system-x86_64", "--version"});
  ASSERT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("version " + j["qemu"]["version"].get<std::string>()),
            std::string::npos)
      << version.out << " vs " << j["qemu"]["version"];
  EXPECT_TRUE(j["qemu"]["memory_backend_memfd"].get<bool>());

  EXPECT_EQ(j["kvm"].get<bool>(), std::filesystem::exists("/dev/kvm"));
  EXPECT_EQ(j["dev_sev"].get<bool>(), std::filesystem::exists("/dev/sev"));
  EXPECT_TRUE(j["tee"]["none"]["available"].get<bool>());
  EXPECT_TRUE(j["tee"]["none"]["insecure"].get<bool>());
  if (!std::filesystem::exists("/dev/sev")) {
    EXPECT_FALSE(j["tee"]["snp"]["available"].get<bool>());
    EXPECT_NE(j["tee"]["snp"]["missing"].get<std::string>().find("/dev/sev"), std::string::npos)
        << j["tee"]["snp"];
  }
  if (!std::filesystem::exists("/dev/kvm")) {
    EXPECT_FALSE(j["tee"]["tdx"]["available"].get<bool>());
    EXPECT_NE(j["tee"]["tdx"]["missing"].get<std::string>().find("/dev/kvm"), std::string::npos)
        << j["tee"]["tdx"];
  }
}

}  // namespace
}  // namespace confpod
