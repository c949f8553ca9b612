// The KBS client against the real KBS HTTP server (daemon/kbs) in process on loopback, with
// sample evidence from a fake root whose kernel command line carries the init-data digest;
// hostile replies from a bare httplib server; the JWE decryption on its own.
#include "guest/kbs_client/kbs_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "attest/base/unique_fd.h"
#include "attest/crypto/crypto.h"
#include "attest/kbs/jose.h"
#include "attest/kbs/kbs.h"
#include "daemon/kbs/server.h"
#include "daemon/kbs/test_server.h"
#include "guest/kbs_client/jwe.h"
#include "tests/support/process.h"

namespace confpod::guest {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kInitData = R"({"containers":[],"version":1})";
const std::string kSecret = "the web pod's database password";
const std::string kResource = "default/db/password";

class KbsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kbs_http::testing::TestKbsOptions o;
    o.resources = {{kResource, kSecret}, {"default/db/other", "not yours"}};
    o.init_data = kInitData;
    o.pod_resources = {kResource};
    auto made = kbs_http::testing::TestKbs::make(std::move(o));
    ASSERT_TRUE(made.ok()) << made.error().describe();
    store_ = made->store;
    token_key_ =
        std::make_unique<kbs::TokenKey>(kbs::TokenKey::from_pem(made->token_key_pem).value());
    auto s = made->serve();
    ASSERT_TRUE(s.ok()) << s.error().describe();
    kbs_ = std::move(made->kbs);  // the server keeps pointing at the same Kbs
    server_ = std::move(*s);
    const Bytes web_digest = crypto::sha256(as_bytes(kInitData));

    // The guest: sample evidence, the digest on its kernel command line.
    fs::create_directories(root_.path() + "/proc");
    std::ofstream(root_.path() + "/proc/cmdline")
        << "console=ttyS0 confpod.init_data_digest=" << to_hex(web_digest) << "\n";
    auto p = make_evidence_provider("none", root_.path());
    ASSERT_TRUE(p.ok()) << p.error().describe();
    evidence_ = std::move(*p);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  std::shared_ptr<kbs::InMemoryResourceStore> store_;
  std::unique_ptr<kbs::TokenKey> token_key_;  // a copy of the KBS's, to verify tokens
  std::unique_ptr<kbs::Kbs> kbs_;
  std::unique_ptr<kbs_http::Server> server_;
  confpod::testing::TempDir root_;
  std::unique_ptr<EvidenceProvider> evidence_;
};

// A loopback TCP forwarder to the KBS that counts the connections it accepts: how many
// connections a client opens for a handshake.
class CountingForwarder {
 public:
  explicit CountingForwarder(int target_port) : target_port_(target_port) {
    listen_fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_.get(), 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    stop_read_ = UniqueFd(p[0]);
    stop_write_ = UniqueFd(p[1]);
    thread_ = std::thread([this] { run(); });
  }
  ~CountingForwarder() {
    stop_write_.reset();
    thread_.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void run() {
    std::vector<std::pair<UniqueFd, UniqueFd>> pairs;  // (client side, server side)
    for (;;) {
      std::vector<pollfd> fds = {{stop_read_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
      for (auto& [c, s] : pairs) {
        fds.push_back({c.get(), POLLIN, 0});
        fds.push_back({s.get(), POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 5000) <= 0) continue;
      if (fds[0].revents != 0) return;
      if (fds[1].revents != 0) {
        UniqueFd client(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(static_cast<std::uint16_t>(target_port_));
        if (client && ::connect(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
          ++connections_;
          pairs.emplace_back(std::move(client), std::move(server));
        }
        continue;  // the fd list changed
      }
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        for (int side = 0; side < 2; ++side) {
          if (fds[2 + 2 * i + static_cast<std::size_t>(side)].revents == 0) continue;
          int from = side == 0 ? pairs[i].first.get() : pairs[i].second.get();
          int to = side == 0 ? pairs[i].second.get() : pairs[i].first.get();
          char buf[16384];
          ssize_t n = ::read(from, buf, sizeof buf);
          if (n <= 0) {
            ::shutdown(to, SHUT_WR);
            continue;
          }
          for (ssize_t off = 0; off < n;) {
            ssize_t w = ::send(to, buf + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
            if (w <= 0) break;
            off += w;
          }
        }
      }
      // Drop pairs whose both ends are closed by the peers.
      std::erase_if(pairs, [](const auto& pr) {
        char c;
        return ::recv(pr.first.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0 &&
               ::recv(pr.second.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
      });
    }
  }

  int target_port_;
  int port_ = 0;
  UniqueFd listen_fd_, stop_read_, stop_write_;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

TEST_F(KbsClientTest, FullHandshakeWithEcAndRsaKeys) {
  for (auto kind : {KbsClientOptions::KeyKind::kEc, KbsClientOptions::KeyKind::kRsa}) {
    KbsClient client({.url = url(), .timeout = std::chrono::seconds(10), .key_kind = kind},
                     *evidence_);
    EXPECT_TRUE(client.token().empty());
    Status s = client.attest(kInitData);
    ASSERT_TRUE(s.ok()) << s.error().describe();
    // An ES256 JWT the KBS verifies with its own key; it names the pod and our key type.
    auto claims = token_key_->verify_jwt(client.token(), std::time(nullptr));
    ASSERT_TRUE(claims.ok()) << claims.error().describe();
    EXPECT_EQ((*claims)["pod"], "web");
    EXPECT_EQ((*claims)["tee"], "sample");
    EXPECT_EQ((*claims)["tee-pubkey"]["kty"],
              kind == KbsClientOptions::KeyKind::kRsa ? "RSA" : "EC");
    auto secret = client.get_resource(kResource);
    ASSERT_TRUE(secret.ok()) << secret.error().describe();
    EXPECT_EQ(std::string(secret->begin(), secret->end()), kSecret);
    // A second resource on the same session works as well.
    secret = client.get_resource(kResource);
    ASSERT_TRUE(secret.ok()) << secret.error().describe();
  }
}

// auth, attest and the resources over one kept connection (as upstream's client does): one
// TCP (and TLS) set-up per handshake instead of one per request.
TEST_F(KbsClientTest, AHandshakeUsesOneConnection) {
  CountingForwarder forwarder(server_->port());
  KbsClient client({.url = "http://127.0.0.1:" + std::to_string(forwarder.port()),
                    .timeout = std::chrono::seconds(10)},
                   *evidence_);
  ASSERT_TRUE(client.attest(kInitData).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.get_resource(kResource).ok());
  EXPECT_EQ(forwarder.connections(), 1) << "auth, attest and 3 resources";
}

// The server ends a kept connection after 16 requests (docs/kbs.md): the client goes on over
// a new one without an error.
TEST_F(KbsClientTest, MoreRequestsThanTheServerKeepsAConnectionFor) {
  CountingForwarder forwarder(server_->port());
  KbsClient client({.url = "http://127.0.0.1:" + std::to_string(forwarder.port()),
                    .timeout = std::chrono::seconds(10)},
                   *evidence_);
  ASSERT_TRUE(client.attest(kInitData).ok());
  for (int i = 0; i < 30; ++i) {
    auto secret = client.get_resource(kResource);
    ASSERT_TRUE(secret.ok()) << "request " << i + 3 << ": " << secret.error().describe();
  }
  EXPECT_EQ(forwarder.connections(), 2) << "32 requests, at most 16 per connection";
}

TEST_F(KbsClientTest, TrailingSlashAndReattest) {
  KbsClient client({.url = url() + "/"}, *evidence_);
  ASSERT_TRUE(client.attest(kInitData).ok());
  std::string first = client.token();
  ASSERT_TRUE(client.attest(kInitData).ok());  // a fresh session, key and token
  EXPECT_NE(client.token(), first);
  EXPECT_TRUE(client.get_resource(kResource).ok());
}

TEST_F(KbsClientTest, WrongInitDataIsRefusedByPolicy) {
  KbsClient client({.url = url()}, *evidence_);
  Status s = client.attest(R"({"containers":["evil"],"version":1})");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "kbs_client.status");
  EXPECT_NE(s.error().message.find("HTTP 401"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("PolicyDeny"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("kbs.policy.no_pod"), std::string::npos) << s.error().message;
  EXPECT_TRUE(client.token().empty());
  EXPECT_EQ(client.get_resource(kResource).error().code, "kbs_client.state");
}

TEST_F(KbsClientTest, UnlistedResourceIsForbidden) {
  KbsClient client({.url = url()}, *evidence_);
  ASSERT_TRUE(client.attest(kInitData).ok());
  auto r = client.get_resource("default/db/other");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "kbs_client.status");
  EXPECT_NE(r.error().message.find("HTTP 403"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("default/db/other"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("not yours"), std::string::npos);
  // Malformed paths never leave the guest.
  for (std::string bad : {"", "a/b", "a/b/c/d", "a/../c", "a/b/c?x=1", "a//c", "a/b/ c"})
    EXPECT_EQ(client.get_resource(bad).error().code, "kbs_client.resource") << bad;
}

TEST_F(KbsClientTest, EvidenceErrorsPassThrough) {
  // A provider that fails: its error comes back unchanged.
  class Broken : public EvidenceProvider {
   public:
    std::string tee() const override { return "sample"; }
    Result<Bytes> init_data_digest() override { return make_error("evidence.io", "x"); }
    Result<json> evidence(ByteView) override { return make_error("evidence.io", "no report"); }
  } broken;
  KbsClient c2({.url = url()}, broken);
  EXPECT_EQ(c2.attest(kInitData).error().code, "evidence.io");
}

TEST_F(KbsClientTest, ServerDownIsATransportError) {
  const std::string down = url();
  server_->stop();
  KbsClient client({.url = down, .timeout = std::chrono::seconds(2)}, *evidence_);
  Status s = client.attest(kInitData);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "kbs_client.http") << s.error().describe();
}

// A self-signed P-256 certificate for 127.0.0.1, as PEM files in `dir`.
struct SelfSigned {
  std::string cert, key;
};
SelfSigned make_cert(const confpod::testing::TempDir& dir) {
  crypto::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  std::unique_ptr<X509, void (*)(X509*)> x(X509_new(), X509_free);
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x.get(), key.get(), EVP_sha256());
  auto pem = [](auto write) {
    std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), BIO_free);
    write(bio.get());
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
  };
  std::string cert_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, x.get()); });
  std::string key_pem = pem([&](BIO* b) {
    PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return {dir.write("kbs.crt", cert_pem), dir.write("kbs.key", key_pem)};
}

TEST_F(KbsClientTest, HttpsWithTheKbsCaAndWithoutIt) {
  confpod::testing::TempDir dir;
  SelfSigned tls = make_cert(dir);
  kbs_http::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.tls_cert = tls.cert;
  so.tls_key = tls.key;
  auto s = kbs_http::Server::start(*kbs_, std::move(so));
  ASSERT_TRUE(s.ok()) << s.error().describe();
  const std::string https = "https://127.0.0.1:" + std::to_string((*s)->port());

  KbsClientOptions o;
  o.url = https;
  o.ca_cert_file = tls.cert;
  KbsClient client(o, *evidence_);
  Status st = client.attest(kInitData);
  ASSERT_TRUE(st.ok()) << st.error().describe();
  auto secret = client.get_resource(kResource);
  ASSERT_TRUE(secret.ok()) << secret.error().describe();
  EXPECT_EQ(std::string(secret->begin(), secret->end()), kSecret);

  // Not signed by a CA we trust: the connection fails before anything is sent.
  KbsClient untrusting({.url = https}, *evidence_);
  EXPECT_EQ(untrusting.attest(kInitData).error().code, "kbs_client.http");
}

TEST(KbsClientUrl, BadUrlsAreRefused) {
  class Unused : public EvidenceProvider {
   public:
    std::string tee() const override { return "sample"; }
    Result<Bytes> init_data_digest() override { return Bytes(32); }
    Result<json> evidence(ByteView) override { return json::object(); }
  } unused;
  for (std::string u : {"", "ftp://kbs", "http://", "http://kbs/kbs/v0", "http://user@kbs",
                        "http://kbs:", "http://kbs:0", "http://kbs:65536", "http://kbs:80x",
                        "http://[::1", "http://kbs?x", "kbs:8080"}) {
    KbsClient client({.url = u}, unused);
    Status s = client.attest("");
    ASSERT_FALSE(s.ok()) << u;
    EXPECT_EQ(s.error().code, "kbs_client.url") << u << ": " << s.error().describe();
  }
}

// A bare HTTP server standing in for a hostile KBS.
class HostileServer {
 public:
  explicit HostileServer(std::function<void(const httplib::Request&, httplib::Response&)> auth) {
    server_.Post("/kbs/v0/auth", auth);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HostileServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(KbsClientHostile, MalformedAndOversizedReplies) {
  class Sample : public EvidenceProvider {
   public:
    std::string tee() const override { return "sample"; }
    Result<Bytes> init_data_digest() override { return Bytes(32); }
    Result<json> evidence(ByteView rd) override {
      return json{{"svn", "1"}, {"report_data", to_base64(rd)}};
    }
  } sample;
  struct Case {
    std::string name;
    std::function<void(const httplib::Request&, httplib::Response&)> handler;
    std::string code;
  };
  const std::string cookie = "kbs-session-id=0123456789abcdef; Path=/kbs/v0";
  std::vector<Case> cases = {
      {"not json",
       [&](const httplib::Request&, httplib::Response& res) {
         res.set_header("Set-Cookie", cookie);
         res.set_content("{nonce", "application/json");
       },
       "kbs_client.reply"},
      {"no cookie",
       [&](const httplib::Request&, httplib::Response& res) {
         res.set_content(R"({"nonce":"abc","extra-params":""})", "application/json");
       },
       "kbs_client.reply"},
      {"nonce not a string",
       [&](const httplib::Request&, httplib::Response& res) {
         res.set_header("Set-Cookie", cookie);
         res.set_content(R"({"nonce":5,"extra-params":""})", "application/json");
       },
       "kbs_client.reply"},
      {"deep nesting",
       [&](const httplib::Request&, httplib::Response& res) {
         res.set_header("Set-Cookie", cookie);
         res.set_content(std::string(5000, '[') + std::string(5000, ']'), "application/json");
       },
       "kbs_client.reply"},
      {"oversized",
       [&](const httplib::Request&, httplib::Response& res) {
         res.set_header("Set-Cookie", cookie);
         res.set_content(std::string(8u << 20, ' '), "application/json");
       },
       "kbs_client.reply"},
      {"error without ErrorInformation",
       [&](const httplib::Request&, httplib::Response& res) {
         res.status = 500;
         res.set_content(std::string("\x01\xff garbage"), "text/plain");
       },
       "kbs_client.status"},
      {"redirect",
       [&](const httplib::Request&, httplib::Response& res) {
         res.set_redirect("http://127.0.0.1:1/kbs/v0/auth");
       },
       "kbs_client.status"},
  };
  for (const auto& c : cases) {
    HostileServer server(c.handler);
    KbsClient client({.url = server.url(), .timeout = std::chrono::seconds(5)}, sample);
    Status s = client.attest("");
    ASSERT_FALSE(s.ok()) << c.name;
    EXPECT_EQ(s.error().code, c.code) << c.name << ": " << s.error().describe();
    for (char ch : s.error().message) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << c.name;
  }
}

// The JWE on its own --------------------------------------------------------------------------

struct Encrypted {
  TeeKeyPair pair;
  json jwe;
};

Encrypted encrypt_to_new_key(bool rsa, const std::string& plaintext) {
  Encrypted e;
  e.pair = generate_tee_key(rsa).value();
  auto key = kbs::parse_tee_key(e.pair.jwk);
  EXPECT_TRUE(key.ok()) << key.error().describe();
  auto text = kbs::jwe_encrypt(*key, as_bytes(plaintext));
  EXPECT_TRUE(text.ok());
  e.jwe = json::parse(*text);
  return e;
}

std::string flip_b64url_byte(const std::string& b64, std::size_t at) {
  Bytes b = kbs::from_base64url(b64).value();
  b[at % b.size()] ^= 0x01;
  return kbs::base64url(b);
}

TEST(ResourceJwe, DecryptsWhatTheKbsEncryptsAndRefusesTampering) {
  for (bool rsa : {false, true}) {
    SCOPED_TRACE(rsa ? "RSA-OAEP-256" : "ECDH-ES+A256KW");
    Encrypted e = encrypt_to_new_key(rsa, kSecret);
    auto plain = decrypt_resource_jwe(e.jwe.dump(), e.pair.key.get());
    ASSERT_TRUE(plain.ok()) << plain.error().describe();
    EXPECT_EQ(std::string(plain->begin(), plain->end()), kSecret);

    for (const char* member : {"ciphertext", "tag", "iv", "encrypted_key", "protected"}) {
      json t = e.jwe;
      t[member] = flip_b64url_byte(t[member].get<std::string>(), 3);
      auto r = decrypt_resource_jwe(t.dump(), e.pair.key.get());
      ASSERT_FALSE(r.ok()) << member;
      EXPECT_EQ(r.error().code, "kbs_client.jwe") << member;
    }
    // Another key of the same kind cannot open it.
    TeeKeyPair other = generate_tee_key(rsa).value();
    EXPECT_EQ(decrypt_resource_jwe(e.jwe.dump(), other.key.get()).error().code, "kbs_client.jwe");
    // Shape: not JSON, missing members, an AAD member, truncated ciphertext.
    EXPECT_EQ(decrypt_resource_jwe("{", e.pair.key.get()).error().code, "kbs_client.jwe");
    json no_tag = e.jwe;
    no_tag.erase("tag");
    EXPECT_EQ(decrypt_resource_jwe(no_tag.dump(), e.pair.key.get()).error().code, "kbs_client.jwe");
    json aad = e.jwe;
    aad["aad"] = "AAAA";
    EXPECT_EQ(decrypt_resource_jwe(aad.dump(), e.pair.key.get()).error().code, "kbs_client.jwe");
    json short_ct = e.jwe;
    std::string ct = short_ct["ciphertext"];
    short_ct["ciphertext"] = ct.substr(0, ct.size() - 4);
    EXPECT_EQ(decrypt_resource_jwe(short_ct.dump(), e.pair.key.get()).error().code,
              "kbs_client.jwe");
  }
  // An ephemeral key that is not a point of P-256 (a coordinate changed, or (0, 0)) is refused
  // as such before any ECDH with it.
  Encrypted e = encrypt_to_new_key(false, kSecret);
  for (bool zero : {false, true}) {
    Bytes header_text = kbs::from_base64url(e.jwe["protected"].get<std::string>()).value();
    json header = json::parse(header_text.begin(), header_text.end());
    if (zero) {
      header["epk"]["x"] = kbs::base64url(Bytes(32, 0));
      header["epk"]["y"] = kbs::base64url(Bytes(32, 0));
    } else {
      header["epk"]["y"] = flip_b64url_byte(header["epk"]["y"].get<std::string>(), 5);
    }
    json t = e.jwe;
    t["protected"] = kbs::base64url(as_bytes(header.dump()));
    auto off_curve = decrypt_resource_jwe(t.dump(), e.pair.key.get());
    ASSERT_FALSE(off_curve.ok());
    EXPECT_EQ(off_curve.error().code, "kbs_client.jwe");
    EXPECT_NE(off_curve.error().message.find("'epk': not a point on the curve"), std::string::npos)
        << off_curve.error().message;
  }
  // An RSA JWE offered to an EC key (and back) is refused by alg, not attempted.
  Encrypted to_rsa = encrypt_to_new_key(true, kSecret);
  Encrypted to_ec = encrypt_to_new_key(false, kSecret);
  auto r = decrypt_resource_jwe(to_rsa.jwe.dump(), to_ec.pair.key.get());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("alg"), std::string::npos) << r.error().message;
  EXPECT_EQ(decrypt_resource_jwe(to_ec.jwe.dump(), to_rsa.pair.key.get()).error().code,
            "kbs_client.jwe");
}

}  // namespace
}  // namespace confpod::guest
