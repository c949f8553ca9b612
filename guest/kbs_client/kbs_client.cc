#include "guest/kbs_client/kbs_client.h"

#include <httplib.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "attest/kbs/jose.h"
#include "attest/kbs/kbs.h"
#include "guest/kbs_client/jwe.h"

namespace confpod::guest {
namespace {

// Every reply is hostile: bodies are read through a bounded receiver, never whole.
constexpr std::size_t kMaxChallengeReply = 64u << 10;
constexpr std::size_t kMaxTokenReply = 64u << 10;
constexpr std::size_t kMaxErrorReply = 64u << 10;
constexpr std::size_t kMaxNonce = 256;  // what the KBS accepts back
constexpr std::size_t kMaxToken = 16u << 10;
constexpr std::size_t kMaxCookie = 256;
constexpr std::size_t kMaxDetailInMessage = 1024;
constexpr std::string_view kCookieName = "kbs-session-id";
constexpr std::string_view kErrorTypePrefix =
    "https://github.com/confidential-containers/kbs/errors/";

// "scheme://host[:port]" from a base URL, or why not. A trailing "/" is allowed, nothing else
// after the authority (the routes are fixed).
Result<std::string> parse_base_url(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return make_error("kbs_client.url", "KBS URL '" + url.substr(0, 256) + "': " + why);
  };
  std::string rest;
  std::string scheme;
  for (std::string s : {"http", "https"})
    if (url.rfind(s + "://", 0) == 0) {
      scheme = s;
      rest = url.substr(s.size() + 3);
    }
  if (scheme.empty()) return bad("must start with http:// or https://");
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return bad("no host");
  std::string host = rest, port;
  if (rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return bad("unterminated IPv6 address");
    host = rest.substr(0, close + 1);
    std::string after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("unexpected text after the address");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
    bool ok6 = host.size() > 2 && std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
                 return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
               });
    if (!ok6) return bad("bad IPv6 address");
  } else {
    auto colon = rest.find(':');
    if (colon != std::string::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      if (port.empty()) return bad("empty port");
    }
    bool ok = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
    });
    if (!ok) return bad("host must be a name or an address (no path, user or query)");
  }
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return bad("bad port");
    int p = std::stoi(port);
    if (p < 1 || p > 65535) return bad("port out of range");
  }
  return scheme + "://" + host + (port.empty() ? "" : ":" + port);
}

// "<repository>/<type>/<tag>", each [A-Za-z0-9._-]+ and not "." or "..", as the KBS requires.
bool valid_resource_path(const std::string& path) {
  if (path.empty() || path.size() > 255) return false;
  int segments = 0;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view seg(path.data() + start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    for (char c : seg)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
        return false;
    ++segments;
    start = end + 1;
  }
  return segments == 3;
}

// Hostile text for an error message: bounded, printable ASCII only.
std::string printable(std::string_view s, std::size_t max = kMaxDetailInMessage) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > max) out += "...";
  return out;
}

struct HttpReply {
  int status = 0;
  std::string body;
  std::string session_cookie;  // "kbs-session-id=<value>" when the reply set one
};

}  // namespace

struct KbsClient::Impl {
  Impl(KbsClientOptions o, EvidenceProvider& e) : options(std::move(o)), evidence(e) {}
  ~Impl() { forget(); }

  KbsClientOptions options;
  EvidenceProvider& evidence;
  std::unique_ptr<httplib::Client> http;
  std::string cookie;  // "kbs-session-id=<value>"
  std::string token;
  crypto::EvpPkeyPtr key;  // the ephemeral TEE private key of the last handshake
  bool attested = false;

  void forget() {
    OPENSSL_cleanse(cookie.data(), cookie.size());
    OPENSSL_cleanse(token.data(), token.size());
    cookie.clear();
    token.clear();
    key.reset();  // EVP_PKEY_free clears the private key material
    attested = false;
  }

  Status connect() {
    if (http) return ok_status();
    CONFPOD_ASSIGN_OR_RETURN(std::string base, parse_base_url(options.url));
    try {
      auto c = std::make_unique<httplib::Client>(base);
      if (!c->is_valid()) return make_error("kbs_client.url", "unusable KBS URL " + base);
      c->set_connection_timeout(options.timeout);
      c->set_read_timeout(options.timeout);
      c->set_write_timeout(options.timeout);
      c->set_follow_location(false);
      // One connection for the whole handshake (auth, attest, resources), as upstream's
      // client keeps its connection: one TCP (and TLS) set-up instead of one per request.
      c->set_keep_alive(true);
      // httplib writes a request's headers and body in two sends: on a kept connection
      // Nagle would hold the body for the server's delayed ACK (40 ms per request).
      c->set_tcp_nodelay(true);
      // No Accept-Encoding: compressed replies would be one more parser for hostile input.
      c->set_decompress(false);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT  // from cpp-httplib's pkg-config Cflags
      c->enable_server_certificate_verification(true);
      if (!options.ca_cert_file.empty()) c->set_ca_cert_path(options.ca_cert_file);
#endif
      http = std::move(c);
    } catch (const std::exception& e) {
      return make_error("kbs_client.url", std::string("cannot use KBS URL: ") + e.what());
    }
    return ok_status();
  }

  // One request; the body read through a receiver that stops at `max` bytes.
  Result<HttpReply> send(const std::string& method, const std::string& path,
                         const std::string& body, std::size_t max) {
    CONFPOD_TRY(connect());
    HttpReply out;
    bool too_big = false;
    try {
      httplib::Request req;
      req.method = method;
      req.path = path;
      req.headers.emplace("Accept", "application/json");
      if (!cookie.empty()) req.headers.emplace("Cookie", cookie);
      if (method == "POST") {
        req.headers.emplace("Content-Type", "application/json");
        req.body = body;
      }
      req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
        if (out.body.size() + n > max) {
          too_big = true;
          return false;
        }
        out.body.append(data, n);
        return true;
      };
      httplib::Response res;
      httplib::Error error = httplib::Error::Success;
      if (!http->send(req, res, error)) {
        if (too_big)
          return make_error("kbs_client.reply", method + " " + path + ": reply longer than " +
                                                    std::to_string(max) + " bytes");
        return make_error("kbs_client.http", method + " " + path + " to " + options.url + ": " +
                                                 httplib::to_string(error));
      }
      out.status = res.status;
      const std::size_t n = res.get_header_value_count("Set-Cookie");
      for (std::size_t i = 0; i < n && i < 16; ++i) {
        std::string v = res.get_header_value("Set-Cookie", i);
        std::string first = v.substr(0, v.find(';'));
        if (first.rfind(std::string(kCookieName) + "=", 0) == 0) out.session_cookie = first;
      }
    } catch (const std::exception& e) {
      return make_error("kbs_client.http", method + " " + path + ": " + e.what());
    }
    return out;
  }

  // A non-200 reply as "kbs_client.status", with the ErrorInformation kind and detail.
  static Error status_error(const std::string& what, const HttpReply& r) {
    std::string msg = what + ": HTTP " + std::to_string(r.status);
    auto info = kbs::parse_bounded_json(r.body, kMaxErrorReply);
    if (info.ok() && info->is_object() && info->contains("type") && (*info)["type"].is_string()) {
      std::string type = (*info)["type"].get<std::string>();
      if (type.rfind(kErrorTypePrefix, 0) == 0) type = type.substr(kErrorTypePrefix.size());
      msg += " " + printable(type, 256);
      auto d = info->find("detail");
      if (d != info->end() && d->is_string()) msg += ": " + printable(d->get<std::string>());
    } else {
      msg += " (no ErrorInformation)";
    }
    return make_error("kbs_client.status", msg);
  }

  // A 200 reply's JSON object.
  static Result<nlohmann::json> reply_object(const std::string& what, const HttpReply& r,
                                             std::size_t max) {
    auto j = kbs::parse_bounded_json(r.body, max);
    if (!j.ok()) return make_error("kbs_client.reply", what + ": " + j.error().describe());
    if (!j->is_object()) return make_error("kbs_client.reply", what + ": not a JSON object");
    return std::move(j).value();
  }

  Status attest(const std::string& init_data) {
    forget();
    // Request -> Challenge.
    const std::string request =
        nlohmann::json{{"version", std::string(kbs::kProtocolVersion)},
                       {"tee", evidence.tee()},
                       {"extra-params", {{"supported-hash-algorithms", {"sha384"}}}}}
            .dump();
    CONFPOD_ASSIGN_OR_RETURN(HttpReply a,
                             send("POST", "/kbs/v0/auth", request, kMaxChallengeReply));
    if (a.status != 200) return status_error("POST /kbs/v0/auth", a);
    if (a.session_cookie.empty() || a.session_cookie.size() > kMaxCookie)
      return make_error("kbs_client.reply", "POST /kbs/v0/auth: no usable kbs-session-id cookie");
    for (char c : a.session_cookie)
      if (c <= 0x20 || c >= 0x7f || c == ',' || c == '"' || c == '\\')
        return make_error("kbs_client.reply", "POST /kbs/v0/auth: malformed session cookie");
    cookie = a.session_cookie;
    CONFPOD_ASSIGN_OR_RETURN(nlohmann::json challenge,
                             reply_object("POST /kbs/v0/auth", a, kMaxChallengeReply));
    auto nonce_it = challenge.find("nonce");
    if (nonce_it == challenge.end() || !nonce_it->is_string() ||
        nonce_it->get_ref<const std::string&>().empty() ||
        nonce_it->get_ref<const std::string&>().size() > kMaxNonce)
      return make_error("kbs_client.reply", "Challenge lacks a usable 'nonce'");
    const std::string nonce = nonce_it->get<std::string>();
    // The binding is SHA-384 (the client default when the KBS selects nothing); a KBS asking
    // for another hash would not find our report_data.
    if (auto ep = challenge.find("extra-params"); ep != challenge.end() && ep->is_object()) {
      auto sel = ep->find("selected-hash-algorithm");
      if (sel != ep->end() && (!sel->is_string() || (sel->get<std::string>() != "sha384" &&
                                                     sel->get<std::string>() != "Sha384")))
        return make_error("kbs_client.reply", "the KBS selects a hash other than SHA-384");
    }

    // The ephemeral key and the evidence binding it with the nonce.
    CONFPOD_ASSIGN_OR_RETURN(TeeKeyPair pair,
                             generate_tee_key(options.key_kind == KbsClientOptions::KeyKind::kRsa));
    auto tee_key = kbs::parse_tee_key(pair.jwk);
    if (!tee_key.ok())
      return make_error("kbs_client.key", "own key refused: " + tee_key.error().describe());
    const Bytes report_data = kbs::runtime_data_digest(nonce, *tee_key, "");
    CONFPOD_ASSIGN_OR_RETURN(nlohmann::json primary, evidence.evidence(report_data));

    // Attestation -> token.
    std::string attestation;
    try {
      attestation =
          nlohmann::json{{"init-data", {{"format", "json"}, {"body", init_data}}},
                         {"runtime-data", {{"nonce", nonce}, {"tee-pubkey", pair.jwk}}},
                         {"tee-evidence",
                          {{"primary_evidence", std::move(primary)}, {"additional_evidence", ""}}}}
              .dump();
    } catch (const nlohmann::json::exception&) {
      // JSON carries only UTF-8; the KBS hashes the body as sent, so it is not repaired.
      return make_error("kbs_client.init_data", "init-data is not valid UTF-8");
    }
    CONFPOD_ASSIGN_OR_RETURN(HttpReply t,
                             send("POST", "/kbs/v0/attest", attestation, kMaxTokenReply));
    if (t.status != 200) return status_error("POST /kbs/v0/attest", t);
    CONFPOD_ASSIGN_OR_RETURN(nlohmann::json reply,
                             reply_object("POST /kbs/v0/attest", t, kMaxTokenReply));
    auto tok = reply.find("token");
    if (tok == reply.end() || !tok->is_string() || tok->get_ref<const std::string&>().empty() ||
        tok->get_ref<const std::string&>().size() > kMaxToken)
      return make_error("kbs_client.reply", "attestation reply lacks a usable 'token'");
    for (char c : tok->get_ref<const std::string&>())
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
        return make_error("kbs_client.reply", "token is not a compact JWT");
    // The KBS may renew the session cookie with the token.
    if (!t.session_cookie.empty() && t.session_cookie.size() <= kMaxCookie)
      cookie = t.session_cookie;
    token = tok->get<std::string>();
    key = std::move(pair.key);
    attested = true;
    return ok_status();
  }

  Result<Bytes> get_resource(const std::string& path) {
    if (!attested) return make_error("kbs_client.state", "get_resource before a successful attest");
    if (!valid_resource_path(path))
      return make_error("kbs_client.resource",
                        "resource path '" + printable(path, 300) +
                            "' is not <repository>/<type>/<tag> of [A-Za-z0-9._-]");
    const std::string route = "/kbs/v0/resource/" + path;
    CONFPOD_ASSIGN_OR_RETURN(HttpReply r, send("GET", route, "", kMaxJweSize));
    if (r.status != 200) return status_error("GET " + route, r);
    auto plain = decrypt_resource_jwe(r.body, key.get());
    if (!plain.ok())
      return make_error(plain.error().code, "GET " + route + ": " + plain.error().message);
    return std::move(plain).value();
  }
};

KbsClient::KbsClient(KbsClientOptions options, EvidenceProvider& evidence)
    : impl_(std::make_unique<Impl>(std::move(options), evidence)) {}

KbsClient::~KbsClient() = default;

Status KbsClient::attest(const std::string& init_data) {
  try {
    Status s = impl_->attest(init_data);
    if (!s.ok()) impl_->forget();
    return s;
  } catch (const std::exception& e) {
    impl_->forget();
    return make_error("kbs_client.internal", e.what());
  }
}

Result<Bytes> KbsClient::get_resource(const std::string& path) {
  try {
    return impl_->get_resource(path);
  } catch (const std::exception& e) {
    return make_error("kbs_client.internal", e.what());
  }
}

const std::string& KbsClient::token() const { return impl_->token; }

}  // namespace confpod::guest
