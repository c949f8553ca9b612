// Pod spec parsing: the documented example, every key and default, the bad-spec corpus, the
// canonical serialization and the input limits.
#include "daemon/spec/spec.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace confpod::spec {
namespace {

const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::filesystem::path data_dir() { return std::filesystem::path(CONFPOD_SPEC_DATA); }

PodSpec parse_ok(std::string_view text) {
  auto r = parse_pod_spec(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : PodSpec{};
}

Error parse_err(std::string_view text) {
  auto r = parse_pod_spec(text);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Error{} : r.error();
}

TEST(PodSpec, IssueExampleParsesToTheRightValues) {
  PodSpec s = parse_ok(read_text(data_dir() / "good/payroll.toml"));
  EXPECT_EQ(s.name, "payroll");
  EXPECT_EQ(s.tee, vmm::Tee::kSnp);
  EXPECT_EQ(s.restart, RestartPolicy::kOnFailure);
  EXPECT_EQ(s.vm.vcpus, 2u);
  EXPECT_EQ(s.vm.memory_mib, 2048u);
  ASSERT_EQ(s.containers.size(), 1u);
  const Container& c = s.containers[0];
  EXPECT_EQ(c.name, "app");
  EXPECT_EQ(c.image.transport, "oci-archive");
  EXPECT_EQ(c.image.path, "/srv/images/app.tar");
  EXPECT_EQ(c.image.digest, kDigest);
  EXPECT_EQ(c.image.to_string(), "oci-archive:/srv/images/app.tar@" + kDigest);
  EXPECT_EQ(c.command, (std::vector<std::string>{"/bin/app", "--serve"}));
  EXPECT_EQ(c.env, (std::map<std::string, std::string>{{"MODE", "prod"}}));
  EXPECT_EQ(c.workdir, "/");
  ASSERT_EQ(s.secrets.size(), 1u);
  EXPECT_EQ(s.secrets[0].resource, "payroll/keys/db");
  EXPECT_EQ(s.secrets[0].path, "/run/secrets/db");
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].host_port, 8443);
  EXPECT_EQ(s.ports[0].guest_port, 443);
  EXPECT_EQ(s.ports[0].protocol, "tcp");
  EXPECT_EQ(s.ports[0].host_ip, "0.0.0.0");
  EXPECT_EQ(s.network, "");  // the daemon's default, filled in at CreatePod
}

TEST(PodSpec, PortsWithTheOlderKeysStillParse) {
  // Pods stored before guest networking wrote [[ports]] host/container.
  std::string text = read_text(data_dir() / "good/payroll.toml");
  const std::string now = "host_port = 8443\nguest_port = 443\n";
  const std::size_t at = text.find(now);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, now.size(), "host = 8443\ncontainer = 443\n");
  PodSpec s = parse_ok(text);
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].host_port, 8443);
  EXPECT_EQ(s.ports[0].guest_port, 443);
  // Canonical text has the current keys only.
  EXPECT_NE(to_toml(s).find(now), std::string::npos);
}

TEST(PodSpec, DefaultsForOptionalKeys) {
  PodSpec s = parse_ok(read_text(data_dir() / "good/minimal.toml"));
  EXPECT_EQ(s.name, "m");
  EXPECT_EQ(s.tee, vmm::Tee::kNone);
  EXPECT_EQ(s.restart, RestartPolicy::kNo);
  EXPECT_EQ(s.vm.vcpus, 1u);
  EXPECT_EQ(s.vm.memory_mib, 512u);
  ASSERT_EQ(s.containers.size(), 1u);
  EXPECT_TRUE(s.containers[0].command.empty());
  EXPECT_TRUE(s.containers[0].env.empty());
  EXPECT_EQ(s.containers[0].workdir, "/");
  EXPECT_TRUE(s.secrets.empty());
  EXPECT_TRUE(s.ports.empty());
}

TEST(PodSpec, FullSpecKeepsEveryValue) {
  PodSpec s = parse_ok(read_text(data_dir() / "good/full.toml"));
  EXPECT_EQ(s.tee, vmm::Tee::kTdx);
  EXPECT_EQ(s.restart, RestartPolicy::kAlways);
  EXPECT_TRUE(s.allow_exec);
  EXPECT_EQ(s.vm.vcpus, 256u);
  EXPECT_EQ(s.vm.memory_mib, 1048576u);
  ASSERT_EQ(s.containers.size(), 2u);
  EXPECT_EQ(s.containers[0].command.back(), "ünïcode");
  EXPECT_EQ(s.containers[0].command[3], "quote\"d");
  EXPECT_EQ(s.containers[0].command[4], "back\\slash");
  // env is ordered by key whatever the order in the file.
  std::vector<std::string> keys;
  for (const auto& [k, v] : s.containers[0].env) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"A", "B", "_UNDER", "lower_case"}));
  EXPECT_EQ(s.containers[0].workdir, "/var/lib/proxy");
  EXPECT_EQ(s.secrets.size(), 2u);
  ASSERT_EQ(s.ports.size(), 3u);
  EXPECT_EQ(s.ports[1].protocol, "udp");  // same host port, other protocol: allowed
  EXPECT_EQ(s.ports[1].host_ip, "192.0.2.10");
  EXPECT_EQ(s.ports[2].host_port, 65535);
  EXPECT_EQ(s.ports[2].guest_port, 1);
  EXPECT_EQ(s.network, "backend");
}

// Every file in tests/data/specs/bad has one defect; its first line names the key the error
// must name. The test also checks the message carries a line number.
TEST(PodSpec, ContainerConfinementAndLimits) {
  PodSpec s = parse_ok(read_text(data_dir() / "good/confined.toml"));
  ASSERT_EQ(s.containers.size(), 3u);
  const Container& migrate = s.containers[0];
  EXPECT_TRUE(migrate.init);
  EXPECT_EQ(migrate.memory_mib, 200u);
  const Container& api = s.containers[1];
  EXPECT_FALSE(api.init);
  EXPECT_EQ(api.user, "app:app");
  EXPECT_TRUE(api.read_only_rootfs);
  EXPECT_EQ(api.tmpfs, (std::vector<std::string>{"/tmp", "/run/api"}));
  EXPECT_EQ(api.cap_add, (std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));
  EXPECT_EQ(api.cap_drop, (std::vector<std::string>{"ALL"}));
  EXPECT_EQ(api.cpu_millis, 1500u);
  EXPECT_EQ(container_capabilities(api), (std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));
  const Container& debug = s.containers[2];
  EXPECT_EQ(debug.seccomp, "unconfined");
  EXPECT_EQ(debug.cpu_millis, 250u);
  // The default set less NET_RAW and MKNOD, plus SYS_ADMIN and SYS_PTRACE.
  EXPECT_EQ(container_capabilities(debug),
            (std::vector<std::string>{
                "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
                "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
                "CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE"}));
  Container plain;
  EXPECT_EQ(container_capabilities(plain).size(), 14u);
  // No [vm]: 1.75 CPUs of limits -> 2 vCPUs; max(200, 256 + 64) + 256 MiB for the guest.
  EXPECT_EQ(s.vm.vcpus, 2u);
  EXPECT_EQ(s.vm.memory_mib, 576u);
  ASSERT_EQ(s.secrets.size(), 1u);
  EXPECT_EQ(s.secrets[0].env, "DB_PASSWORD");
  EXPECT_EQ(s.secrets[0].path, "");
  // The canonical text keeps it all, [[init_containers]] included.
  const std::string canonical = to_toml(s);
  EXPECT_NE(canonical.find("[[init_containers]]\nname = \"migrate\""), std::string::npos)
      << canonical;
  EXPECT_NE(canonical.find("cpus = 1.500\n"), std::string::npos) << canonical;
  EXPECT_EQ(parse_ok(canonical), s);
}

TEST(PodSpec, BadCorpusFailsNamingTheKey) {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir() / "bad")) {
    const std::string text = read_text(entry.path());
    const std::string prefix = "# expect: ";
    ASSERT_EQ(text.compare(0, prefix.size(), prefix), 0) << entry.path();
    const std::string key = text.substr(prefix.size(), text.find('\n') - prefix.size());
    auto r = parse_pod_spec(text);
    ASSERT_FALSE(r.ok()) << entry.path() << " parsed";
    EXPECT_EQ(r.error().code, "spec.invalid") << entry.path();
    EXPECT_EQ(r.error().message.rfind("line ", 0), 0u) << r.error().message;
    EXPECT_NE(r.error().message.find(": " + key + ": "), std::string::npos)
        << entry.path().filename() << ": expected key " << key << " in: " << r.error().message;
    ++count;
  }
  EXPECT_GE(count, 30u);
}

TEST(PodSpec, ErrorNamesTheLineOfTheBadValue) {
  std::string text =
      "name = \"p\"\ntee = \"snp\"\n\n[[containers]]\nname = \"app\"\n"
      "command = [\"/bin/app\"]\nimage = \"oci-archive:/a.tar@sha256:abc\"\n";
  Error e = parse_err(text);
  EXPECT_EQ(e.message, "line 7: containers[0].image: digest must be sha256:<64 hex digits>");
}

TEST(PodSpec, MissingKeyNamesItsTable) {
  Error e = parse_err("name = \"p\"\ntee = \"snp\"\n[[containers]]\nname = \"app\"\n");
  EXPECT_EQ(e.message, "line 3: containers[0].image: required");
}

TEST(PodSpec, UnknownKeyNamesItsOwnLine) {
  Error e = parse_err(
      "name = \"p\"\ntee = \"snp\"\n[vm]\nvcpus = 1\nmemroy_mib = 4096\n[[containers]]\nname = "
      "\"a\"\nimage = \"oci-archive:/a@" +
      kDigest + "\"\n");
  EXPECT_EQ(e.message, "line 5: vm.memroy_mib: unknown key");
}

TEST(PodSpec, TooLargeIsRejectedBeforeParsing) {
  std::string text(kMaxSpecBytes + 1, '#');
  Error e = parse_err(text);
  EXPECT_EQ(e.code, "spec.invalid");
  EXPECT_NE(e.message.find("larger than"), std::string::npos);
}

TEST(PodSpec, CountLimits) {
  std::string text = "name = \"p\"\ntee = \"none\"\n";
  for (std::size_t i = 0; i <= kMaxContainers; ++i)
    text += "[[containers]]\nname = \"c" + std::to_string(i) + "\"\nimage = \"oci-archive:/a@" +
            kDigest + "\"\n";
  Error e = parse_err(text);
  EXPECT_NE(e.message.find("containers: more than 16 entries"), std::string::npos) << e.message;

  std::string args = "[";
  for (std::size_t i = 0; i <= kMaxCommandArgs; ++i) args += "\"x\",";
  args += "]";
  e = parse_err(
      "name = \"p\"\ntee = \"none\"\n[[containers]]\nname = \"c\"\nimage = "
      "\"oci-archive:/a@" +
      kDigest + "\"\ncommand = " + args + "\n");
  EXPECT_NE(e.message.find("containers[0].command: more than 256"), std::string::npos) << e.message;

  e = parse_err(
      "name = \"p\"\ntee = \"none\"\n[[containers]]\nname = \"c\"\nimage = "
      "\"oci-archive:/a@" +
      kDigest + "\"\nworkdir = \"/" + std::string(5000, 'w') + "\"\n");
  EXPECT_NE(e.message.find("containers[0].workdir: longer than 4096"), std::string::npos)
      << e.message;
}

TEST(PodSpec, CanonicalTomlRoundTrips) {
  for (const auto& entry : std::filesystem::directory_iterator(data_dir() / "good")) {
    PodSpec s = parse_ok(read_text(entry.path()));
    const std::string canonical = to_toml(s);
    PodSpec again = parse_ok(canonical);
    EXPECT_EQ(again, s) << entry.path() << "\n" << canonical;
    EXPECT_EQ(to_toml(again), canonical) << entry.path();
  }
}

TEST(PodSpec, CanonicalTomlIsExact) {
  PodSpec s = parse_ok(read_text(data_dir() / "good/payroll.toml"));
  EXPECT_EQ(to_toml(s),
            "name = \"payroll\"\n"
            "tee = \"snp\"\n"
            "restart = \"on-failure\"\n"
            "allow_exec = false\n"
            "\n[vm]\nvcpus = 2\nmemory_mib = 2048\n"
            "\n[[containers]]\nname = \"app\"\n"
            "image = \"oci-archive:/srv/images/app.tar@" +
                kDigest +
                "\"\n"
                "command = [\"/bin/app\", \"--serve\"]\n"
                "env = { MODE = \"prod\" }\n"
                "workdir = \"/\"\n"
                "\n[[secrets]]\nresource = \"payroll/keys/db\"\npath = \"/run/secrets/db\"\n"
                "\n[[ports]]\nhost_port = 8443\nguest_port = 443\nprotocol = \"tcp\"\n"
                "host_ip = \"0.0.0.0\"\n");
}

TEST(PodSpec, RestartPolicyNames) {
  EXPECT_EQ(to_string(RestartPolicy::kNo), "no");
  EXPECT_EQ(to_string(RestartPolicy::kOnFailure), "on-failure");
  EXPECT_EQ(to_string(RestartPolicy::kAlways), "always");
}

}  // namespace
}  // namespace confpod::spec
