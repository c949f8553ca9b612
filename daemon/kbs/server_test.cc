// The KBS HTTP layer in process, over real loopback sockets: the full sample handshake with
// the resource decrypted by joserfc, bearer tokens, cookie handling, ErrorInformation on every
// failure (including httplib's own 413/404), the transport rule, HTTPS with a self-signed
// certificate made here, and many clients on a small worker pool.
#include "daemon/kbs/server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <thread>
#include <vector>

#include "attest/crypto/crypto.h"
#include "attest/kbs/kbs_test_util.h"
#include "daemon/kbs/test_client.h"
#include "daemon/kbs/test_server.h"
#include "tests/support/process.h"

namespace confpod::kbs_http {
namespace {

using nlohmann::json;
using namespace confpod::kbs_http::testing;

const std::string kInitData = "version = \"0.1.0\"\n[data]\npod = \"web\"\n";
const std::string kSecret = "the web pod's database password";
const std::string kResource = "default/db/password";

std::string decrypt(const std::string& private_pem, const std::string& jwe) {
  confpod::testing::TempDir dir;
  auto out = confpod::testing::run_process({"/usr/bin/env", "python3", "-c", kDecryptPy,
                                            dir.write("tee.pem", private_pem),
                                            dir.write("jwe.json", jwe)});
  EXPECT_EQ(out.exit_code, 0) << out.err;
  return out.out;
}

// A self-signed P-256 certificate for 127.0.0.1 / localhost, as PEM files.
struct SelfSigned {
  std::string cert, key;
};
SelfSigned make_cert(confpod::testing::TempDir& dir, const std::string& file) {
  crypto::EvpPkeyPtr key(EVP_EC_gen("P-256"));
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key.get(), EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string cert_pem(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  X509_free(x);
  return {dir.write(file + ".crt", cert_pem),
          dir.write(file + ".key", kbs::testing::private_pem(key.get()))};
}

class KbsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::TestKbsOptions o;
    o.resources = {{kResource, kSecret}, {"default/db/other", "not yours"}};
    o.init_data = kInitData;
    o.pod_resources = {kResource};
    auto made = testing::TestKbs::make(std::move(o));
    ASSERT_TRUE(made.ok()) << made.error().describe();
    store_ = made->store;
    kbs_ = std::move(made->kbs);
  }

  std::unique_ptr<Server> start(ServerOptions o = {}) {
    if (o.listen == ServerOptions{}.listen) o.listen = "127.0.0.1:0";
    auto s = Server::start(*kbs_, std::move(o));
    EXPECT_TRUE(s.ok()) << s.error().describe();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::shared_ptr<kbs::InMemoryResourceStore> store_;
  std::unique_ptr<kbs::Kbs> kbs_;
};

TEST_F(KbsHttpTest, FullHandshakeReleasesTheResourceToTheAttestedKey) {
  auto server = start();
  ASSERT_TRUE(server);
  httplib::Client cli("127.0.0.1", server->port());
  auto tee_key = kbs::testing::make_ec_tee_key();
  Handshake h = sample_handshake(cli, tee_key.jwk, kInitData, kResource);
  ASSERT_TRUE(h.ok()) << h.auth << " " << h.attest << " " << h.resource << " " << h.error;
  EXPECT_EQ(decrypt(tee_key.private_pem, h.resource_body), kSecret);

  // The same resource with the token instead of the cookie; RSA keys work too.
  auto by_token = cli.Get("/kbs/v0/resource/" + kResource,
                          httplib::Headers{{"Authorization", "Bearer " + h.token}});
  ASSERT_TRUE(by_token);
  ASSERT_EQ(by_token->status, 200) << by_token->body;
  EXPECT_EQ(decrypt(tee_key.private_pem, by_token->body), kSecret);
  auto rsa_key = kbs::testing::make_rsa_tee_key();
  Handshake rsa = sample_handshake(cli, rsa_key.jwk, kInitData, kResource);
  ASSERT_TRUE(rsa.ok()) << rsa.error;
  EXPECT_EQ(decrypt(rsa_key.private_pem, rsa.resource_body), kSecret);

  // A resource the pod does not list: 403 PolicyDeny, with the cookie and with the token.
  auto other = cli.Get("/kbs/v0/resource/default/db/other", httplib::Headers{{"Cookie", h.cookie}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 403);
  EXPECT_EQ(error_kind(other->body), "PolicyDeny");
  EXPECT_EQ(other->body.find("not yours"), std::string::npos);

  // The published key set is the Kbs's.
  auto jwks = cli.Get(std::string(kJwksPath));
  ASSERT_TRUE(jwks);
  EXPECT_EQ(jwks->status, 200);
  EXPECT_EQ(json::parse(jwks->body), kbs_->jwks());
}

TEST_F(KbsHttpTest, CookieHandling) {
  auto server = start();
  ASSERT_TRUE(server);
  httplib::Client cli("127.0.0.1", server->port());
  auto a = cli.Post("/kbs/v0/auth", auth_body(), "application/json");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 200);
  const std::string set_cookie = a->get_header_value("Set-Cookie");
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_EQ(set_cookie.find("Secure"), std::string::npos) << "plain HTTP: no Secure flag";
  std::string cookie = session_cookie(a);
  ASSERT_EQ(cookie.size(), std::string("kbs-session-id=").size() + 32) << cookie;
  std::string nonce = json::parse(a->body)["nonce"];
  auto tee_key = kbs::testing::make_ec_tee_key();
  const std::string body = sample_attestation(nonce, tee_key.jwk, kInitData);

  // No cookie, or an unknown one: 401 AttestationError, and the session survives.
  auto none = cli.Post("/kbs/v0/attest", body, "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(error_kind(none->body), "AttestationError");
  auto wrong = cli.Post("/kbs/v0/attest", httplib::Headers{{"Cookie", "kbs-session-id=00"}}, body,
                        "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  // Among other cookies, quoted, after a second Cookie header: still found.
  auto ok =
      cli.Post("/kbs/v0/attest",
               httplib::Headers{{"Cookie", "theme=dark"},
                                {"Cookie", "a=b; " + std::string(kSessionCookie) + "=\"" +
                                               cookie.substr(cookie.find('=') + 1) + "\"; c=d"}},
               body, "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  // Attesting the same session again is a replay.
  auto again =
      cli.Post("/kbs/v0/attest", httplib::Headers{{"Cookie", cookie}}, body, "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401);
  EXPECT_NE(again->body.find("kbs.session.replay"), std::string::npos) << again->body;
  // No credentials at all for a resource: 401 TokenNotFound.
  auto anon = cli.Get("/kbs/v0/resource/" + kResource);
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->status, 401);
  EXPECT_EQ(error_kind(anon->body), "TokenNotFound");

  EXPECT_EQ(cookie_value("a=1; kbs-session-id=xyz", "kbs-session-id"), "xyz");
  EXPECT_EQ(cookie_value("kbs-session-idx=1", "kbs-session-id"), std::nullopt);
  EXPECT_EQ(cookie_value("", "kbs-session-id"), std::nullopt);
  EXPECT_EQ(cookie_value(";;=;kbs-session-id=", "kbs-session-id"), "");
}

TEST_F(KbsHttpTest, EveryFailureIsErrorInformation) {
  ServerOptions o;
  o.max_body = 1 << 20;
  auto server = start(o);
  ASSERT_TRUE(server);
  httplib::Client cli("127.0.0.1", server->port());
  // Oversize: refused from Content-Length before the body is read.
  auto big = cli.Post("/kbs/v0/attest", std::string((1 << 20) + 1, '{'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(error_kind(big->body), "SerdeError");
  EXPECT_NE(big->body.find("kbs.body.too_large"), std::string::npos);
  // Under the server limit but over the auth limit: the Kbs refuses it the same way.
  auto auth_big =
      cli.Post("/kbs/v0/auth", std::string(kbs::kMaxAuthBody + 1, ' '), "application/json");
  ASSERT_TRUE(auth_big);
  EXPECT_EQ(auth_big->status, 413);
  EXPECT_EQ(error_kind(auth_big->body), "SerdeError");
  for (const char* bad : {"{", "[[[[", "\xff\xfe", "{\"version\": 1e999999}", ""}) {
    auto r = cli.Post("/kbs/v0/auth", std::string(bad), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << bad;
    EXPECT_EQ(error_kind(r->body), "SerdeError") << r->body;
  }
  for (const char* path : {"/", "/kbs/v0/nope", "/kbs/v1/auth", "/kbs/v0/resource/"}) {
    auto r = cli.Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(error_kind(r->body), "InvalidRequestPath") << path << " " << r->body;
  }
  auto traversal = cli.Get("/kbs/v0/resource/../../etc", httplib::Headers{{"Cookie", "x=y"}});
  ASSERT_TRUE(traversal);
  EXPECT_GE(traversal->status, 400);
  EXPECT_NE(error_kind(traversal->body), "<none>");
  auto long_path = cli.Get("/kbs/v0/resource/" + std::string(4000, 'a'));
  ASSERT_TRUE(long_path);
  EXPECT_EQ(long_path->status, 404);
  EXPECT_NE(error_kind(long_path->body), "<none>");
  // Wrong method on a real route.
  auto get_auth = cli.Get("/kbs/v0/auth");
  ASSERT_TRUE(get_auth);
  EXPECT_EQ(get_auth->status, 404);
  EXPECT_EQ(error_kind(get_auth->body), "InvalidRequestPath");
  // Still serving.
  auto fine = cli.Post("/kbs/v0/auth", auth_body(), "application/json");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->status, 200);
}

TEST_F(KbsHttpTest, PlainHttpOnlyOnLoopbackUnlessAllowed) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1:1"));
  EXPECT_TRUE(is_loopback_host("127.9.8.7:1"));
  EXPECT_TRUE(is_loopback_host("[::1]:1"));
  EXPECT_TRUE(is_loopback_host("localhost:1"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0:1"));
  EXPECT_FALSE(is_loopback_host("127.example.org:1"));
  EXPECT_FALSE(is_loopback_host("[::]:1"));

  ServerOptions o;
  o.listen = "0.0.0.0:0";
  auto refused = Server::start(*kbs_, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "kbs.http.config");
  o.tls_cert = "/nonexistent.crt";
  auto half = Server::start(*kbs_, o);
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().code, "kbs.http.config");
  o.tls_key = "/nonexistent.key";
  auto missing = Server::start(*kbs_, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "kbs.http.tls");
  o = {};
  o.listen = "0.0.0.0:0";
  o.allow_plain_http = true;
  EXPECT_TRUE(Server::start(*kbs_, o).ok());
  // A port in use.
  auto first = start();
  ASSERT_TRUE(first);
  o = {};
  o.listen = "127.0.0.1:" + std::to_string(first->port());
  auto busy = Server::start(*kbs_, o);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, "kbs.http.bind");
}

TEST_F(KbsHttpTest, HttpsWithAConfiguredCertificate) {
  confpod::testing::TempDir dir;
  SelfSigned cert = make_cert(dir, "kbs");
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.tls_cert = cert.cert;
  o.tls_key = cert.key;
  auto server = start(o);
  ASSERT_TRUE(server);
  EXPECT_TRUE(server->tls());

  httplib::Client cli("https://127.0.0.1:" + std::to_string(server->port()));
  cli.set_ca_cert_path(cert.cert);
  cli.enable_server_certificate_verification(true);
  auto tee_key = kbs::testing::make_ec_tee_key();
  Handshake h = sample_handshake(cli, tee_key.jwk, kInitData, kResource);
  ASSERT_TRUE(h.ok()) << h.auth << " " << h.attest << " " << h.resource << " " << h.error;
  EXPECT_EQ(decrypt(tee_key.private_pem, h.resource_body), kSecret);
  auto a = cli.Post("/kbs/v0/auth", auth_body(), "application/json");
  ASSERT_TRUE(a);
  EXPECT_NE(a->get_header_value("Set-Cookie").find("Secure"), std::string::npos);

  // A client that does not trust the certificate fails the TLS handshake; plain HTTP to the
  // TLS port gets no answer.
  httplib::Client untrusting("https://127.0.0.1:" + std::to_string(server->port()));
  untrusting.enable_server_certificate_verification(true);
  untrusting.set_ca_cert_path(make_cert(dir, "stranger").cert);
  EXPECT_FALSE(untrusting.Get(std::string(kJwksPath)));
  httplib::Client plain("127.0.0.1", server->port());
  auto p = plain.Get(std::string(kJwksPath));
  EXPECT_TRUE(!p || p->status != 200);
  // Still serving.
  EXPECT_EQ(cli.Get(std::string(kJwksPath))->status, 200);

  // A key that does not match the certificate.
  SelfSigned other = make_cert(dir, "other");
  o.tls_key = other.key;
  auto mismatch = Server::start(*kbs_, o);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, "kbs.http.tls");
}

TEST_F(KbsHttpTest, ManyClientsOnAFewWorkers) {
  ServerOptions o;
  o.workers = 2;
  o.queue = 4;
  auto server = start(o);
  ASSERT_TRUE(server);
  auto tee_key = kbs::testing::make_ec_tee_key();
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 24; ++i) {
    clients.emplace_back([&] {
      httplib::Client cli("127.0.0.1", server->port());
      if (sample_handshake(cli, tee_key.jwk, kInitData, kResource).ok()) ++ok;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 24);
  server->stop();
  server->stop();  // idempotent
  httplib::Client after("127.0.0.1", server->port());
  EXPECT_FALSE(after.Get(std::string(kJwksPath)));
}

}  // namespace
}  // namespace confpod::kbs_http
