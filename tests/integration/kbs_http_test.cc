// The KBS served by the real confpodd over HTTP on loopback: a tee-none pod listing a secret
// (stored through the Broker's SetResource with busctl) completes the full sample handshake
// with a C++ client and gets the secret as a JWE that joserfc decrypts; the signing key
// persists (mode 0600) across restarts; hostile requests get ErrorInformation with the right
// status and the daemon keeps serving; removing the pod revokes it.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "attest/kbs/kbs_test_util.h"
#include "daemon/kbs/test_client.h"
#include "daemon/spec/init_data.h"
#include "daemon/spec/spec.h"
#include "tests/support/bus.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;
using kbs_http::testing::error_kind;
using kbs_http::testing::Handshake;
using kbs_http::testing::sample_handshake;

constexpr const char* kName = "org.confpod1";
constexpr const char* kPath = "/org/confpod1";
constexpr const char* kManager = "org.confpod1.Manager";
constexpr const char* kBroker = "org.confpod1.Broker";
const std::string kResource = "default/db/password";
const std::string kSecret = "s3cret";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string pod_spec(const testing::DaemonProcess& daemon, const std::string& name) {
  std::string image = daemon.dir() + "/app.tar";
  if (!std::filesystem::exists(image)) std::ofstream(image) << std::string(4096, '\0');
  return "name = \"" + name +
         "\"\ntee = \"none\"\n[vm]\nvcpus = 1\nmemory_mib = 256\n[[containers]]\nname = "
         "\"app\"\nimage = \"oci-archive:" +
         image + "@sha256:" + std::string(64, 'a') + "\"\n[[secrets]]\nresource = \"" + kResource +
         "\"\npath = \"/run/secrets/db\"\n";
}

std::string decrypt(const std::string& private_pem, const std::string& jwe) {
  testing::TempDir dir;
  auto out = testing::run_process({"/usr/bin/env", "python3", "-c", kbs_http::testing::kDecryptPy,
                                   dir.write("tee.pem", private_pem), dir.write("jwe.json", jwe)});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  return out.out;
}

class KbsHttpDaemonTest : public ::testing::Test {
 protected:
  // The init-data document confpodd derives for `spec` (its KBS URL from our port).
  std::string pod_init_data(const std::string& spec) const {
    auto parsed = spec::parse_pod_spec(spec);
    EXPECT_TRUE(parsed.ok()) << parsed.error().describe();
    spec::HostDefaults host;
    host.kbs_guest_url = "http://10.0.2.2:" + std::to_string(port_);
    return parsed.ok() ? spec::init_data_text(*parsed, host) : "";
  }

  // The harness writes "[kbs] enabled = false"; turn the KBS on at a free loopback port and
  // restart the daemon with it.
  void enable_kbs(testing::DaemonProcess& daemon) {
    port_ = free_port();
    std::string toml = read_file(daemon.config_path());
    const std::string off = "[kbs]\nenabled = false\n";
    auto at = toml.find(off);
    ASSERT_NE(at, std::string::npos) << toml;
    toml.replace(at, off.size(),
                 "[kbs]\nenabled = true\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n");
    std::ofstream(daemon.config_path(), std::ios::trunc) << toml;
    daemon.restart();
    ASSERT_TRUE(wait_serving()) << daemon.log();
  }

  bool wait_serving() {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      httplib::Client cli("127.0.0.1", port_);
      auto r = cli.Get(std::string(kbs_http::kJwksPath));
      if (r && r->status == 200) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  testing::PrivateBus bus_;
  int port_ = 0;
};

TEST_F(KbsHttpDaemonTest, SampleHandshakeReleasesTheSecretOfATeeNonePod) {
  testing::DaemonProcess daemon(bus_);
  enable_kbs(daemon);
  auto created = testing::busctl(
      bus_, {"call", kName, kPath, kManager, "CreatePod", "s", pod_spec(daemon, "web")});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::vector<std::string> set = {"call",        kName, kPath,     kBroker,
                                  "SetResource", "say", kResource, std::to_string(kSecret.size())};
  for (char c : kSecret) set.push_back(std::to_string(static_cast<unsigned char>(c)));
  auto stored = testing::busctl(bus_, set);
  ASSERT_EQ(stored.exit_code, 0) << stored.err;

  httplib::Client cli("127.0.0.1", port_);
  auto tee_key = kbs::testing::make_ec_tee_key();
  // The sample guest sends the pod's init-data document, as its agent would.
  const std::string init_data = pod_init_data(pod_spec(daemon, "web"));
  Handshake empty = sample_handshake(cli, tee_key.jwk, "", kResource);
  EXPECT_EQ(empty.attest, 401) << "init-data other than the pod's must not attest";
  Handshake h = sample_handshake(cli, tee_key.jwk, init_data, kResource);
  ASSERT_TRUE(h.ok()) << h.auth << " " << h.attest << " " << h.resource << " " << h.error
                      << daemon.log();
  EXPECT_EQ(decrypt(tee_key.private_pem, h.resource_body), kSecret);
  EXPECT_EQ(daemon.log().find(kSecret), std::string::npos) << "the secret reached the log";

  // The signing key: 0600 in state_dir, the same after a restart.
  const std::string key_path = daemon.state_dir() + "/kbs-signing-key.pem";
  struct stat st {};
  ASSERT_EQ(::stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string jwks = cli.Get(std::string(kbs_http::kJwksPath))->body;
  daemon.restart();
  ASSERT_TRUE(wait_serving()) << daemon.log();
  httplib::Client again("127.0.0.1", port_);
  EXPECT_EQ(again.Get(std::string(kbs_http::kJwksPath))->body, jwks);
  // Re-registered from the store after the restart.
  auto tee_key2 = kbs::testing::make_ec_tee_key();
  Handshake h2 = sample_handshake(again, tee_key2.jwk, init_data, kResource);
  ASSERT_TRUE(h2.ok()) << h2.error;
  EXPECT_EQ(decrypt(tee_key2.private_pem, h2.resource_body), kSecret);

  // Removing the pod revokes it: attestation finds no pod, the old cookie is stale.
  auto removed = testing::busctl(
      bus_, {"call", kName, "/org/confpod1/pod/web", "org.confpod1.Pod", "Remove", "b", "false"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  Handshake gone = sample_handshake(again, tee_key2.jwk, init_data, kResource);
  EXPECT_EQ(gone.attest, 401);
  EXPECT_EQ(error_kind(gone.error), "PolicyDeny") << gone.error;
  auto stale = again.Get("/kbs/v0/resource/" + kResource, httplib::Headers{{"Cookie", h2.cookie}});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 403);
}

TEST_F(KbsHttpDaemonTest, HostileRequestsGetErrorInformationAndTheDaemonKeepsRunning) {
  testing::DaemonProcess daemon(bus_);
  enable_kbs(daemon);
  httplib::Client cli("127.0.0.1", port_);

  auto big =
      cli.Post("/kbs/v0/attest", std::string(kbs::kMaxAttestBody + 4096, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(error_kind(big->body), "SerdeError") << big->body;

  for (const char* bad : {"{\"version\":", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "null"}) {
    auto r = cli.Post("/kbs/v0/auth", std::string(bad), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << bad;
    EXPECT_EQ(error_kind(r->body), "SerdeError") << r->body;
  }
  auto attest = cli.Post("/kbs/v0/attest", httplib::Headers{{"Cookie", "kbs-session-id=nope"}},
                         "{}", "application/json");
  ASSERT_TRUE(attest);
  EXPECT_EQ(attest->status, 401);
  EXPECT_NE(error_kind(attest->body), "<none>");

  for (const char* path : {"/", "/kbs/v0/unknown", "/.well-known/jwks.json"}) {
    auto r = cli.Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(error_kind(r->body), "InvalidRequestPath") << r->body;
  }
  // Auth works and sets the cookie; the daemon is still the same process.
  auto a = cli.Post("/kbs/v0/auth", kbs_http::testing::auth_body(), "application/json");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_FALSE(kbs_http::testing::session_cookie(a).empty());
  EXPECT_EQ(::kill(daemon.pid(), 0), 0);
  EXPECT_EQ(daemon.terminate(), 0) << daemon.log();
}

// An SNP report without its certificate chain (what a guest with /dev/sev-guest and no
// extended report sends): the live KBS takes the VCEK from the collateral store. Before the
// import it names what to fetch; after it, the report's chain and signature verify and only
// the nonce binding is left to fail (the fixture report was not made for this session).
TEST_F(KbsHttpDaemonTest, SnpEvidenceWithoutCertificatesUsesTheImportedVcek) {
  testing::DaemonProcess daemon(bus_);
  enable_kbs(daemon);
  const std::string report =
      to_base64(confpod::testing::read_fixture("snp/ms_genoa_report_v3.bin"));
  auto attest = [&]() -> std::string {
    httplib::Client cli("127.0.0.1", port_);
    auto a = cli.Post("/kbs/v0/auth", kbs_http::testing::auth_body("snp"), "application/json");
    if (!a || a->status != 200) return "auth failed";
    const std::string nonce = nlohmann::json::parse(a->body, nullptr, false).value("nonce", "");
    auto tee_key = kbs::testing::make_ec_tee_key();
    nlohmann::json body = {
        {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_key.jwk}}},
        {"tee-evidence",
         {{"primary_evidence", {{"attestation_report", report}, {"cert_chain", nullptr}}},
          {"additional_evidence", ""}}}};
    auto t = cli.Post("/kbs/v0/attest", {{"Cookie", kbs_http::testing::session_cookie(a)}},
                      body.dump(), "application/json");
    return t ? std::to_string(t->status) + " " + t->body : "no reply";
  };
  const std::string before = attest();
  EXPECT_TRUE(before.starts_with("401 ")) << before;
  EXPECT_NE(before.find("kdsintf.amd.com/vcek/v1/Genoa/"), std::string::npos) << before;

  auto imported =
      testing::run_process({CONFPODCTL_PATH, "--address", bus_.address(), "collateral", "import",
                            confpod::testing::fixture_path("snp/ms_genoa_vcek.pem")});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  const std::string after = attest();
  EXPECT_TRUE(after.starts_with("401 ")) << after;
  EXPECT_EQ(after.find("kdsintf"), std::string::npos) << after;
  EXPECT_NE(after.find("is not the runtime-data digest"), std::string::npos) << after;
}

// A KBS on its own (a trusted machine): no QEMU probe, no pods, the KBS and the Broker only.
TEST_F(KbsHttpDaemonTest, KbsOnlyServesTheKbsAndTheBroker) {
  port_ = free_port();
  testing::DaemonOptions options;
  options.kbs_toml =
      "[kbs]\nenabled = true\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n";
  options.extra_args = {"--kbs-only"};
  testing::DaemonProcess daemon(bus_, options);
  ASSERT_TRUE(wait_serving()) << daemon.log();
  // No QEMU was probed, so no pod can run here: creating one says what is missing.
  auto create = testing::busctl(
      bus_, {"call", kName, kPath, kManager, "CreatePod", "s", pod_spec(daemon, "web")});
  EXPECT_NE(create.exit_code, 0);
  EXPECT_NE(create.err.find("does not run"), std::string::npos) << create.err;

  auto stored = testing::busctl(
      bus_, {"call", kName, kPath, kBroker, "SetResource", "say", "site/keys/one", "1", "65"});
  ASSERT_EQ(stored.exit_code, 0) << stored.err;
  auto listed = testing::busctl(bus_, {"call", kName, kPath, kBroker, "ListResources"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("site/keys/one"), std::string::npos) << listed.out;
  auto pods = testing::busctl(bus_, {"call", kName, kPath, kManager, "ListPods"});
  EXPECT_EQ(pods.out, "a(ssso) 0\n") << pods.err;

  // The protocol answers: a challenge for a well-formed request.
  httplib::Client cli("127.0.0.1", port_);
  auto auth = cli.Post("/kbs/v0/auth", R"({"version":"0.4.0","tee":"sample","extra-params":""})",
                       "application/json");
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->status, 200) << auth->body;
  EXPECT_NE(auth->body.find("nonce"), std::string::npos) << auth->body;
}

}  // namespace
}  // namespace confpod
