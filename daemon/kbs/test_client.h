// Test and benchmark helpers: a guest's side of the KBS handshake with `sample` evidence over
// httplib::Client (cookie handled by hand, as httplib keeps no cookie jar).
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "attest/base/bytes.h"
#include "attest/kbs/jose.h"
#include "attest/kbs/kbs.h"
#include "daemon/kbs/server.h"

namespace confpod::kbs_http::testing {

inline std::string auth_body(const std::string& tee = "sample") {
  return nlohmann::json{{"version", "0.4.0"},
                        {"tee", tee},
                        {"extra-params", {{"supported-hash-algorithms", {"sha384"}}}}}
      .dump();
}

// The Attestation a sample guest sends for `nonce`, binding `jwk` (and no device evidence).
inline std::string sample_attestation(const std::string& nonce, const nlohmann::json& jwk,
                                      const std::string& init_data) {
  auto key = kbs::parse_tee_key(jwk);
  Bytes rd = key.ok() ? kbs::runtime_data_digest(nonce, *key, "") : Bytes{};
  return nlohmann::json{{"init-data", {{"format", "toml"}, {"body", init_data}}},
                        {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", jwk}}},
                        {"tee-evidence",
                         {{"primary_evidence", {{"svn", "1"}, {"report_data", to_base64(rd)}}},
                          {"additional_evidence", ""}}}}
      .dump();
}

// "kbs-session-id=<id>" from a response's Set-Cookie headers, or "".
inline std::string session_cookie(const httplib::Result& res) {
  if (!res) return {};
  const std::size_t n = res->get_header_value_count("Set-Cookie");
  for (std::size_t i = 0; i < n; ++i) {
    std::string v = res->get_header_value("Set-Cookie", i);
    std::string first = v.substr(0, v.find(';'));
    if (first.rfind(std::string(kSessionCookie) + "=", 0) == 0) return first;
  }
  return {};
}

// The ErrorInformation kind ("SerdeError", ...) of a body, or "<none>".
inline std::string error_kind(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string() || !j.contains("detail"))
    return "<none>";
  std::string t = j["type"];
  if (t.rfind(kbs::kErrorTypePrefix, 0) != 0) return "<none>";
  return t.substr(kbs::kErrorTypePrefix.size());
}

struct Handshake {
  int auth = -1, attest = -1, resource = -1;  // HTTP statuses (-1: no response)
  std::string cookie;                         // "kbs-session-id=..."
  std::string token;
  std::string resource_body;  // the JWE, or the error
  std::string error;          // the first failing step's body or transport error
  bool ok() const { return auth == 200 && attest == 200 && resource == 200; }
};

// auth + attest + GET resource (with the cookie) on one client.
inline Handshake sample_handshake(httplib::Client& cli, const nlohmann::json& jwk,
                                  const std::string& init_data, const std::string& resource) {
  Handshake h;
  auto a = cli.Post("/kbs/v0/auth", auth_body(), "application/json");
  if (!a) {
    h.error = "auth: " + httplib::to_string(a.error());
    return h;
  }
  h.auth = a->status;
  h.cookie = session_cookie(a);
  if (a->status != 200) {
    h.error = a->body;
    return h;
  }
  std::string nonce = nlohmann::json::parse(a->body, nullptr, false).value("nonce", "");
  httplib::Headers cookie = {{"Cookie", h.cookie}};
  auto t = cli.Post("/kbs/v0/attest", cookie, sample_attestation(nonce, jwk, init_data),
                    "application/json");
  if (!t) {
    h.error = "attest: " + httplib::to_string(t.error());
    return h;
  }
  h.attest = t->status;
  if (t->status != 200) {
    h.error = t->body;
    return h;
  }
  h.token = nlohmann::json::parse(t->body, nullptr, false).value("token", "");
  auto r = cli.Get("/kbs/v0/resource/" + resource, cookie);
  if (!r) {
    h.error = "resource: " + httplib::to_string(r.error());
    return h;
  }
  h.resource = r->status;
  h.resource_body = r->body;
  if (r->status != 200) h.error = r->body;
  return h;
}

// Decrypts a JWE with Python's joserfc (an implementation sharing no code with ours).
inline constexpr const char* kDecryptPy = R"PY(
import json, sys
from joserfc import jwe
from joserfc.jwk import import_key
key = import_key(open(sys.argv[1]).read())
obj = json.loads(open(sys.argv[2]).read())
algs = ["RSA-OAEP-256", "ECDH-ES+A256KW", "A256GCM"]
sys.stdout.write(jwe.decrypt_json(obj, key, algorithms=algs).plaintext.decode())
)PY";

}  // namespace confpod::kbs_http::testing
