#include "attest/kbs/kbs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "attest/base/time.h"
#include "attest/kbs/kbs_test_util.h"
#include "attest/tdx/roots.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod::kbs {
namespace {

using nlohmann::json;

constexpr UnixSeconds kNow = 1'767'225'600;  // 2026-01-01, inside the fixture VCEK's validity
const std::string kInitData =
    "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\npod = \"web\"\n";
const std::string kSecret = "the web pod's database password";

std::string auth_body(const std::string& tee, const std::string& version = "0.4.0") {
  return json{{"version", version},
              {"tee", tee},
              {"extra-params", {{"supported-hash-algorithms", {"sha256", "sha384", "sha512"}}}}}
      .dump();
}

std::string error_type(const Reply& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return "<no type>";
  std::string t = j["type"];
  return t.substr(std::min(t.size(), kErrorTypePrefix.size()));
}

// A sample guest: computes report_data from the challenge as guest-components does.
json sample_attestation(const std::string& nonce, const json& jwk, const std::string& init_data) {
  auto key = parse_tee_key(jwk);
  EXPECT_TRUE(key.ok());
  Bytes rd = runtime_data_digest(nonce, *key, "");
  return {{"init-data", {{"format", "toml"}, {"body", init_data}}},
          {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", jwk}}},
          {"tee-evidence",
           {{"primary_evidence", {{"svn", "1"}, {"report_data", to_base64(rd)}}},
            {"additional_evidence", ""}}}};
}

// Decrypts a JWE and checks a JWT with Python's joserfc + cryptography: an implementation
// that shares no code with ours.
constexpr const char* kPython = R"PY(
import hashlib, json, sys
from joserfc import jwe, jwt
from joserfc.jwk import ECKey, RSAKey, import_key
mode = sys.argv[1]
if mode == "jwe":
    pem = open(sys.argv[2]).read()
    key = import_key(pem)
    obj = json.loads(open(sys.argv[3]).read())
    assert set(obj) == {"protected", "encrypted_key", "iv", "ciphertext", "tag"}, sorted(obj)
    algs = ["RSA-OAEP-256", "ECDH-ES+A256KW", "A256GCM"]
    sys.stdout.write(jwe.decrypt_json(obj, key, algorithms=algs).plaintext.decode())
elif mode == "jwt":
    jwks = json.loads(open(sys.argv[2]).read())
    key = ECKey.import_key(jwks["keys"][0])
    tok = jwt.decode(open(sys.argv[3]).read(), key, algorithms=["ES256"])
    sys.stdout.write(json.dumps({"header": tok.header, "claims": tok.claims}))
elif mode == "binding":
    rt = {"tee-pubkey": json.loads(sys.argv[3]), "nonce": sys.argv[2], "additional-evidence": ""}
    canon = json.dumps(rt, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sys.stdout.write(hashlib.sha384(canon.encode()).hexdigest())
)PY";

confpod::testing::ProcessResult python(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env", "python3", "-c", kPython};
  argv.insert(argv.end(), args.begin(), args.end());
  return confpod::testing::run_process(argv);
}

class KbsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_shared<InMemoryResourceStore>();
    ASSERT_TRUE(store_->put("default/db/password", as_bytes(kSecret)).ok());
    ASSERT_TRUE(store_->put("default/db/other", as_bytes(std::string("not for web"))).ok());
    make_kbs(Options{});
  }

  void make_kbs(Options options, bool insecure = true) {
    options.allow_insecure = insecure;
    auto key = TokenKey::generate();
    ASSERT_TRUE(key.ok());
    kbs_ = std::make_unique<Kbs>(std::move(options), std::move(key).value(), store_);
    ReferenceValues web;
    web.pod = "web";
    web.tee = "sample";
    web.init_data_digest = crypto::sha256(as_bytes(kInitData));
    web.resources = {"default/db/password", "default/db/absent"};
    ASSERT_TRUE(kbs_->set_reference_values(web).ok());
  }

  // auth; returns {session id, nonce}.
  std::pair<std::string, std::string> auth(const std::string& tee, UnixSeconds now = kNow) {
    Reply r = kbs_->handle_auth(auth_body(tee), now);
    EXPECT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["extra-params"], "");
    return {r.session_id, j["nonce"].get<std::string>()};
  }

  std::shared_ptr<InMemoryResourceStore> store_;
  std::unique_ptr<Kbs> kbs_;
};

void expect_error(const Reply& r, int status, const std::string& type, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(error_type(r), type) << r.body;
  EXPECT_EQ(r.error_code, code) << r.body;
}

TEST_F(KbsTest, FullSampleHandshakeEcKeyDecryptedByJoserfc) {
  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("sample");
  EXPECT_EQ(from_base64(nonce)->size(), 32u);
  EXPECT_EQ(kbs_->session_count(), 1u);

  Reply att =
      kbs_->handle_attest(sid, sample_attestation(nonce, tee_key.jwk, kInitData).dump(), kNow + 1);
  ASSERT_EQ(att.status, 200) << att.body;
  std::string token = json::parse(att.body)["token"];

  Reply res = kbs_->handle_resource_with_session(sid, "default/db/password", kNow + 2);
  ASSERT_EQ(res.status, 200) << res.body;
  auto protected_header =
      json::parse(from_base64url(json::parse(res.body)["protected"].get<std::string>()).value());
  EXPECT_EQ(protected_header["alg"], "ECDH-ES+A256KW");
  EXPECT_EQ(protected_header["enc"], "A256GCM");

  confpod::testing::TempDir dir;
  auto out =
      python({"jwe", dir.write("tee.pem", tee_key.private_pem), dir.write("jwe.json", res.body)});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, kSecret);

  // The token, checked by joserfc against the published JWK set.
  auto checked =
      python({"jwt", dir.write("jwks.json", kbs_->jwks().dump()), dir.write("token.jwt", token)});
  ASSERT_EQ(checked.exit_code, 0) << checked.err;
  auto t = json::parse(checked.out);
  EXPECT_EQ(t["header"]["alg"], "ES256");
  EXPECT_EQ(t["claims"]["pod"], "web");
  EXPECT_EQ(t["claims"]["tee"], "sample");
  EXPECT_EQ(t["claims"]["insecure"], true);
  EXPECT_EQ(t["claims"]["ear.status"], "warning");
  EXPECT_EQ(t["claims"]["host_data"], to_hex(crypto::sha256(as_bytes(kInitData))));
  EXPECT_EQ(t["claims"]["exp"].get<std::int64_t>() - t["claims"]["iat"].get<std::int64_t>(), 600);
  EXPECT_EQ(t["claims"]["tee-pubkey"], tee_key.jwk);

  // The same resource with the token as bearer (no session).
  Reply by_token = kbs_->handle_resource_with_token(token, "default/db/password", kNow + 3);
  ASSERT_EQ(by_token.status, 200) << by_token.body;
  auto again = python(
      {"jwe", dir.write("tee2.pem", tee_key.private_pem), dir.write("jwe2.json", by_token.body)});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, kSecret);
}

TEST_F(KbsTest, RsaOaep256ResourceDecryptedByJoserfc) {
  auto tee_key = testing::make_rsa_tee_key();
  auto [sid, nonce] = auth("sample");
  Reply att =
      kbs_->handle_attest(sid, sample_attestation(nonce, tee_key.jwk, kInitData).dump(), kNow);
  ASSERT_EQ(att.status, 200) << att.body;
  Reply res = kbs_->handle_resource_with_session(sid, "default/db/password", kNow);
  ASSERT_EQ(res.status, 200) << res.body;
  auto header =
      json::parse(from_base64url(json::parse(res.body)["protected"].get<std::string>()).value());
  EXPECT_EQ(header, json::parse(R"({"alg":"RSA-OAEP-256","enc":"A256GCM"})"));
  confpod::testing::TempDir dir;
  auto out =
      python({"jwe", dir.write("tee.pem", tee_key.private_pem), dir.write("jwe.json", res.body)});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, kSecret);
}

TEST_F(KbsTest, RuntimeDataDigestMatchesAnIndependentJcsHash) {
  auto tee_key = testing::make_ec_tee_key();
  auto key = parse_tee_key(tee_key.jwk);
  ASSERT_TRUE(key.ok());
  std::string nonce = "q83vEjRWeJA=\"\\\x01/\xc3\xa9";  // quotes, escapes, control, UTF-8
  auto out = python({"binding", nonce, tee_key.jwk.dump()});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(to_hex(runtime_data_digest(nonce, *key, "")), out.out);
}

TEST_F(KbsTest, WrongNonceIsRefused) {
  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("sample");
  auto [sid2, nonce2] = auth("sample");
  // Evidence for the other session's challenge.
  Reply r =
      kbs_->handle_attest(sid, sample_attestation(nonce2, tee_key.jwk, kInitData).dump(), kNow);
  expect_error(r, 401, "AttestationError", "kbs.nonce");
  // The nonce is spent: the session cannot try again.
  r = kbs_->handle_attest(sid, sample_attestation(nonce, tee_key.jwk, kInitData).dump(), kNow);
  expect_error(r, 401, "AttestationError", "kbs.session.unknown");
}

TEST_F(KbsTest, ReplayedEvidenceIsRefused) {
  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("sample");
  std::string body = sample_attestation(nonce, tee_key.jwk, kInitData).dump();
  ASSERT_EQ(kbs_->handle_attest(sid, body, kNow).status, 200);
  // Same session again.
  expect_error(kbs_->handle_attest(sid, body, kNow), 401, "AttestationError", "kbs.session.replay");
  // Same evidence on a new session: its challenge differs.
  auto [sid2, nonce2] = auth("sample");
  expect_error(kbs_->handle_attest(sid2, body, kNow), 401, "AttestationError", "kbs.nonce");
  // Evidence whose runtime-data names the new nonce but carries the old report_data.
  auto [sid3, nonce3] = auth("sample");
  json forged = json::parse(body);
  forged["runtime-data"]["nonce"] = nonce3;
  expect_error(kbs_->handle_attest(sid3, forged.dump(), kNow), 401, "AttestationError",
               "kbs.binding");
}

TEST_F(KbsTest, SnpReportDataMismatchWithARealReport) {
  Bytes report = confpod::testing::read_fixture("snp/virtee_report_milan.bin");
  Bytes vcek = confpod::testing::read_fixture("snp/virtee_vcek_milan.der");
  ASSERT_FALSE(report.empty());
  ASSERT_FALSE(vcek.empty());
  auto tee_key = testing::make_ec_tee_key();
  auto attest = [&](const Bytes& rep) {
    auto [sid, nonce] = auth("snp");
    json body = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_key.jwk}}},
                 {"tee-evidence",
                  {{"primary_evidence",
                    {{"attestation_report", to_base64(rep)},
                     {"cert_chain", {{{"cert_type", "VCEK"}, {"data", json(vcek)}}}}}},
                   {"additional_evidence", ""}}}};
    return kbs_->handle_attest(sid, body.dump(), kNow);
  };
  // Genuine report and signature: only the binding to this challenge fails.
  Reply r = attest(report);
  expect_error(r, 401, "AttestationError", "kbs.binding");
  EXPECT_NE(r.body.find("REPORT_DATA"), std::string::npos);
  // The same report in the form Trustee's SNP attester sends (the sev crate's serde object):
  // re-assembled, its signature verifies and again only the binding fails.
  {
    auto [sid, nonce] = auth("snp");
    json body = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_key.jwk}}},
                 {"tee-evidence",
                  {{"primary_evidence",
                    {{"attestation_report", testing::sev_report_json(report)},
                     {"cert_chain", {{{"cert_type", "VCEK"}, {"data", json(vcek)}}}}}},
                   {"additional_evidence", ""}}}};
    expect_error(kbs_->handle_attest(sid, body.dump(), kNow), 401, "AttestationError",
                 "kbs.binding");
  }
  // One flipped bit in the signed part: the signature check names it.
  Bytes tampered = report;
  tampered[0x50] ^= 1;
  expect_error(attest(tampered), 401, "AttestationError", "snp.signature");
  // Truncated report.
  expect_error(attest(Bytes(report.begin(), report.begin() + 100)), 401, "AttestationError",
               "snp.report.size");
}

TEST_F(KbsTest, SnpWithoutCertificateOrSourceIsRefused) {
  Bytes report = confpod::testing::read_fixture("snp/virtee_report_milan.bin");
  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("snp");
  json body = {
      {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_key.jwk}}},
      {"tee-evidence",
       {{"primary_evidence", {{"attestation_report", json(report)}, {"cert_chain", nullptr}}},
        {"additional_evidence", ""}}}};
  expect_error(kbs_->handle_attest(sid, body.dump(), kNow), 401, "AttestationError",
               "kbs.evidence.snp");
}

TEST_F(KbsTest, TdxReportDataMismatchWithARealQuote) {
  constexpr UnixSeconds kQuoteAt = 1752919234;  // 2025-07-19T10:00:34Z: the collateral is valid
  auto verified = testing::verified_tdx_collateral_v4(kQuoteAt);
  ASSERT_TRUE(verified.ok()) << verified.error().describe();
  auto shared = *verified;
  int calls = 0;
  Options o;
  o.tdx_collateral =
      [&](const tdx::Quote&,
          UnixSeconds now) -> Result<std::shared_ptr<const tdx::VerifiedCollateral>> {
    ++calls;
    EXPECT_EQ(now, kQuoteAt);
    return shared;
  };
  make_kbs(o);
  Bytes quote = confpod::testing::read_fixture("tdx/dcapqvl_quote_v4.dat");
  auto tee_key = testing::make_ec_tee_key();
  auto attest = [&](const Bytes& q) {
    auto [sid, nonce] = auth("tdx", kQuoteAt);
    json body = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_key.jwk}}},
                 {"tee-evidence",
                  {{"primary_evidence", {{"quote", to_base64(q)}, {"cc_eventlog", nullptr}}},
                   {"additional_evidence", ""}}}};
    return kbs_->handle_attest(sid, body.dump(), kQuoteAt);
  };
  Reply r = attest(quote);
  expect_error(r, 401, "AttestationError", "kbs.binding");
  EXPECT_NE(r.body.find("REPORTDATA"), std::string::npos);
  EXPECT_EQ(calls, 1);
  Bytes tampered = quote;
  tampered[48 + 16] ^= 1;  // TEE_TCB_SVN, inside the signed body
  expect_error(attest(tampered), 401, "AttestationError", "tdx.quote.signature");
}

TEST_F(KbsTest, TdxWithoutCollateralSourceIsRefused) {
  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("tdx");
  json body = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_key.jwk}}},
               {"tee-evidence",
                {{"primary_evidence", {{"quote", "!!notbase64"}, {"cc_eventlog", nullptr}}},
                 {"additional_evidence", ""}}}};
  expect_error(kbs_->handle_attest(sid, body.dump(), kNow), 401, "AttestationError",
               "kbs.evidence.tdx");
}

TEST_F(KbsTest, ResourceNotInPolicyIsForbiddenAndAbsentIsNotFound) {
  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("sample");
  ASSERT_EQ(kbs_->handle_attest(sid, sample_attestation(nonce, tee_key.jwk, kInitData).dump(), kNow)
                .status,
            200);
  // Stored, but web's spec does not list it.
  expect_error(kbs_->handle_resource_with_session(sid, "default/db/other", kNow), 403, "PolicyDeny",
               "kbs.policy.resource");
  // Not stored and not listed: still forbidden (existence is not revealed).
  expect_error(kbs_->handle_resource_with_session(sid, "default/db/nothing", kNow), 403,
               "PolicyDeny", "kbs.policy.resource");
  // Listed but not stored.
  expect_error(kbs_->handle_resource_with_session(sid, "default/db/absent", kNow), 404,
               "InvalidRequestPath", "kbs.resource.missing");
  expect_error(kbs_->handle_resource_with_session(sid, "../etc/passwd", kNow), 404,
               "InvalidRequestPath", "kbs.resource.path");
  // Reference values removed after attestation: the session no longer gets anything.
  kbs_->remove_reference_values("web");
  expect_error(kbs_->handle_resource_with_session(sid, "default/db/password", kNow), 403,
               "PolicyDeny", "kbs.policy.stale");
}

TEST_F(KbsTest, EvidenceMatchingNoPodIsDenied) {
  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("sample");
  Reply r = kbs_->handle_attest(
      sid, sample_attestation(nonce, tee_key.jwk, kInitData + "# changed\n").dump(), kNow);
  expect_error(r, 401, "PolicyDeny", "kbs.policy.no_pod");
}

TEST_F(KbsTest, ExpiredSessionsAndTokens) {
  auto tee_key = testing::make_ec_tee_key();
  // Challenge answered after session_ttl.
  auto [sid, nonce] = auth("sample");
  expect_error(kbs_->handle_attest(sid, sample_attestation(nonce, tee_key.jwk, kInitData).dump(),
                                   kNow + 300),
               401, "AttestationError", "kbs.session.expired");
  EXPECT_EQ(kbs_->session_count(), 0u);

  // Attested session and token past token_ttl.
  auto [sid2, nonce2] = auth("sample");
  Reply att = kbs_->handle_attest(sid2, sample_attestation(nonce2, tee_key.jwk, kInitData).dump(),
                                  kNow + 10);
  ASSERT_EQ(att.status, 200);
  std::string token = json::parse(att.body)["token"];
  EXPECT_EQ(kbs_->handle_resource_with_session(sid2, "default/db/password", kNow + 609).status,
            200);
  expect_error(kbs_->handle_resource_with_session(sid2, "default/db/password", kNow + 610), 401,
               "TokenNotFound", "kbs.session.expired");
  expect_error(kbs_->handle_resource_with_token(token, "default/db/password", kNow + 610), 401,
               "TokenVerifierError", "kbs.token.expired");
  expect_error(kbs_->handle_resource_with_token("", "default/db/password", kNow), 401,
               "TokenNotFound", "kbs.token.missing");
  expect_error(kbs_->handle_resource_with_session("nope", "default/db/password", kNow), 401,
               "TokenNotFound", "kbs.session.unknown");
}

TEST_F(KbsTest, UnattestedSessionGetsNoResource) {
  auto [sid, nonce] = auth("sample");
  expect_error(kbs_->handle_resource_with_session(sid, "default/db/password", kNow), 401,
               "TokenNotFound", "kbs.session.unattested");
}

TEST_F(KbsTest, OversizeAndHostileBodies) {
  std::string big(kMaxAuthBody + 1, ' ');
  expect_error(kbs_->handle_auth(big, kNow), 413, "SerdeError", "kbs.body.too_large");
  auto [sid, nonce] = auth("sample");
  std::string huge(kMaxAttestBody + 1, ' ');
  expect_error(kbs_->handle_attest(sid, huge, kNow), 413, "SerdeError", "kbs.body.too_large");

  expect_error(kbs_->handle_auth(std::string(100, '[') + std::string(100, ']'), kNow), 401,
               "SerdeError", "kbs.json.depth");
  expect_error(kbs_->handle_auth("{\"version\":", kNow), 401, "SerdeError", "kbs.json.syntax");
  expect_error(kbs_->handle_auth(R"({"version":1e99999,"tee":"snp","extra-params":""})", kNow), 401,
               "SerdeError", "kbs.json.syntax");
  expect_error(kbs_->handle_auth(R"({"version":123456789012345678901234567890,"tee":"snp",
                                     "extra-params":""})",
                                 kNow),
               401, "SerdeError", "kbs.request");
  expect_error(kbs_->handle_auth(R"({"version":"0.4.0","tee":"snp"})", kNow), 401, "SerdeError",
               "kbs.request");
  expect_error(kbs_->handle_auth("\"\xff\xfe\"", kNow), 401, "SerdeError", "kbs.json.syntax");

  // Bad base64 and wrong types inside an Attestation.
  auto tee_key = testing::make_ec_tee_key();
  auto [sid2, nonce2] = auth("sample");
  json body = sample_attestation(nonce2, tee_key.jwk, kInitData);
  body["tee-evidence"]["primary_evidence"]["report_data"] = "%%%";
  expect_error(kbs_->handle_attest(sid2, body.dump(), kNow), 401, "AttestationError",
               "kbs.evidence.sample");
  auto [sid3, nonce3] = auth("sample");
  body = sample_attestation(nonce3, tee_key.jwk, kInitData);
  body["tee-evidence"]["additional_evidence"] = json::object();
  expect_error(kbs_->handle_attest(sid3, body.dump(), kNow), 401, "SerdeError", "kbs.attestation");
}

TEST_F(KbsTest, ProtocolVersions) {
  for (const char* v :
       {"0.1.1", "0.2.0", "0.3.0", "0.4.1", "1.0.0", "0.4.0-rc1", "v0.4.0", "", "0.4.0+"}) {
    expect_error(kbs_->handle_auth(auth_body("sample", v), kNow), 401, "AttestationError",
                 "kbs.version");
  }
  EXPECT_EQ(kbs_->handle_auth(auth_body("sample", "0.4.0+build.7"), kNow).status, 200);
}

TEST_F(KbsTest, TeesAndInsecureOption) {
  expect_error(kbs_->handle_auth(auth_body("sgx"), kNow), 401, "AttestationError",
               "kbs.tee.unsupported");
  make_kbs(Options{}, /*insecure=*/false);
  expect_error(kbs_->handle_auth(auth_body("sample"), kNow), 401, "AttestationError",
               "kbs.tee.insecure");
  EXPECT_EQ(kbs_->handle_auth(auth_body("snp"), kNow).status, 200);
  EXPECT_EQ(kbs_->handle_auth(auth_body("tdx"), kNow).status, 200);
}

TEST_F(KbsTest, SessionTableIsBounded) {
  Options o;
  o.max_sessions = 3;
  make_kbs(o);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(kbs_->handle_auth(auth_body("sample"), kNow).status, 200);
  expect_error(kbs_->handle_auth(auth_body("sample"), kNow), 503, "AttestationError",
               "kbs.session.limit");
  // Expired sessions make room.
  EXPECT_EQ(kbs_->handle_auth(auth_body("sample"), kNow + 300).status, 200);
  EXPECT_EQ(kbs_->session_count(), 1u);
}

TEST_F(KbsTest, FullTableEvictsTheOldestAttestedSessionWhoseTokenStillWorks) {
  Options o;
  o.max_sessions = 2;
  make_kbs(o);
  auto tee_key = testing::make_ec_tee_key();
  auto [first, nonce1] = auth("sample", kNow);
  Reply att1 =
      kbs_->handle_attest(first, sample_attestation(nonce1, tee_key.jwk, kInitData).dump(), kNow);
  ASSERT_EQ(att1.status, 200) << att1.body;
  std::string token1 = json::parse(att1.body)["token"];
  auto [second, nonce2] = auth("sample", kNow + 1);
  ASSERT_EQ(kbs_->handle_attest(second, sample_attestation(nonce2, tee_key.jwk, kInitData).dump(),
                                kNow + 1)
                .status,
            200);
  // Full of attested sessions: a new client gets in; the oldest session goes.
  auto [third, nonce3] = auth("sample", kNow + 2);
  EXPECT_FALSE(third.empty());
  EXPECT_EQ(kbs_->session_count(), 2u);
  expect_error(kbs_->handle_resource_with_session(first, "default/db/password", kNow + 3), 401,
               "TokenNotFound", "kbs.session.unknown");
  EXPECT_EQ(kbs_->handle_resource_with_session(second, "default/db/password", kNow + 3).status,
            200);
  // The evicted client still holds its token.
  EXPECT_EQ(kbs_->handle_resource_with_token(token1, "default/db/password", kNow + 3).status, 200);
  // A table of unfinished challenges is a flood: nothing is evicted for it.
  auto [fourth, nonce4] = auth("sample", kNow + 4);  // evicts `second`, the last attested one
  (void)fourth;
  expect_error(kbs_->handle_auth(auth_body("sample"), kNow + 5), 503, "AttestationError",
               "kbs.session.limit");
}

// A busy KBS runs with a full table: room is made a batch at a time (1/16 of the table, the
// sessions that expire first), not by one scan per new client.
TEST_F(KbsTest, FullTableEvictsABatchOfTheOldestAttestedSessions) {
  Options o;
  o.max_sessions = 32;
  make_kbs(o);
  auto tee_key = testing::make_ec_tee_key();
  std::vector<std::string> sessions;
  for (int i = 0; i < 32; ++i) {
    auto [id, nonce] = auth("sample", kNow + i);
    ASSERT_EQ(
        kbs_->handle_attest(id, sample_attestation(nonce, tee_key.jwk, kInitData).dump(), kNow + i)
            .status,
        200);
    sessions.push_back(id);
  }
  ASSERT_EQ(kbs_->session_count(), 32u);
  auto [newcomer, nonce] = auth("sample", kNow + 40);
  EXPECT_FALSE(newcomer.empty());
  EXPECT_EQ(kbs_->session_count(), 31u);  // two evicted, one added
  for (int i = 0; i < 2; ++i)
    expect_error(kbs_->handle_resource_with_session(sessions[static_cast<std::size_t>(i)],
                                                    "default/db/password", kNow + 41),
                 401, "TokenNotFound", "kbs.session.unknown");
  EXPECT_EQ(
      kbs_->handle_resource_with_session(sessions[2], "default/db/password", kNow + 41).status,
      200);
  // The next newcomer finds room without evicting anyone.
  auto [second, nonce2] = auth("sample", kNow + 42);
  EXPECT_FALSE(second.empty());
  EXPECT_EQ(kbs_->session_count(), 32u);
}

TEST_F(KbsTest, AdminValuesSurviveTheDaemonsUpdatesAndAreAcceptedBesideThem) {
  // The daemon's layer for "web" (make_kbs) binds kInitData; an admin adds a second
  // init-data digest for the same pod with a resource of its own.
  const std::string admin_init_data = "# computed on a trusted machine\n";
  ReferenceValues admin;
  admin.pod = "web";
  admin.tee = "sample";
  admin.init_data_digest = crypto::sha256(as_bytes(admin_init_data));
  admin.resources = {"default/db/other"};
  ASSERT_TRUE(kbs_->set_reference_values(admin, Kbs::Source::kAdmin).ok());
  // The daemon re-registers its own values (the pod changed): the admin layer stays.
  ReferenceValues daemon;
  daemon.pod = "web";
  daemon.tee = "sample";
  daemon.init_data_digest = crypto::sha256(as_bytes(kInitData));
  daemon.resources = {"default/db/password"};
  ASSERT_TRUE(kbs_->set_reference_values(daemon).ok());

  auto tee_key = testing::make_ec_tee_key();
  auto [sid, nonce] = auth("sample");
  ASSERT_EQ(
      kbs_->handle_attest(sid, sample_attestation(nonce, tee_key.jwk, admin_init_data).dump(), kNow)
          .status,
      200);
  // Met the admin layer: its resource, not the daemon layer's.
  EXPECT_EQ(kbs_->handle_resource_with_session(sid, "default/db/other", kNow).status, 200);
  expect_error(kbs_->handle_resource_with_session(sid, "default/db/password", kNow), 403,
               "PolicyDeny", "kbs.policy.resource");
  // The daemon removing its layer does not remove the admin's.
  kbs_->remove_reference_values("web");
  EXPECT_EQ(kbs_->handle_resource_with_session(sid, "default/db/other", kNow).status, 200);
  kbs_->remove_reference_values("web", Kbs::Source::kAdmin);
  expect_error(kbs_->handle_resource_with_session(sid, "default/db/other", kNow), 403, "PolicyDeny",
               "kbs.policy.stale");
}

TEST_F(KbsTest, ReferenceValuesAreChecked) {
  ReferenceValues rv;
  rv.pod = "db";
  rv.tee = "snp";
  rv.init_data_digest = Bytes(32, 1);
  EXPECT_EQ(kbs_->set_reference_values(rv).error().code, "kbs.reference_values");  // no measurement
  rv.measurements = {Bytes(48, 2)};
  EXPECT_TRUE(kbs_->set_reference_values(rv).ok());
  rv.resources = {"a/b"};
  EXPECT_EQ(kbs_->set_reference_values(rv).error().code, "kbs.reference_values");
  rv.resources = {"a/b/c"};
  rv.tee = "tdx";
  EXPECT_EQ(kbs_->set_reference_values(rv).error().code, "kbs.reference_values");  // 32 != 48
  rv.pod = "no/slash";
  rv.tee = "snp";
  EXPECT_EQ(kbs_->set_reference_values(rv).error().code, "kbs.reference_values");
}

TEST_F(KbsTest, ConcurrentHandshakes) {
  std::atomic<int> released{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto tee_key = testing::make_ec_tee_key();
      for (int i = 0; i < 10; ++i) {
        Reply a = kbs_->handle_auth(auth_body("sample"), kNow);
        if (!a.ok()) continue;
        std::string nonce = json::parse(a.body)["nonce"];
        Reply att = kbs_->handle_attest(
            a.session_id, sample_attestation(nonce, tee_key.jwk, kInitData).dump(), kNow);
        if (!att.ok()) continue;
        if (kbs_->handle_resource_with_session(a.session_id, "default/db/password", kNow).ok())
          ++released;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(released.load(), 80);
  EXPECT_EQ(kbs_->session_count(), 80u);
}

TEST(ResourcePath, Rules) {
  EXPECT_TRUE(check_resource_path("default/key/1").ok());
  EXPECT_TRUE(check_resource_path("my-repo/tls_cert/v1.2").ok());
  for (const char* bad :
       {"", "a/b", "a/b/c/d", "a//c", "a/../c", "a/./c", "/a/b/c", "a/b/c/", "a/b/c d", "a/b/%2e"})
    EXPECT_EQ(check_resource_path(bad).error().code, "kbs.resource.path") << bad;
}

}  // namespace
}  // namespace confpod::kbs
