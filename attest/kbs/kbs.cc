#include "attest/kbs/kbs.h"

#include <openssl/rand.h>

#include <algorithm>
#include <set>

#include "attest/base/json_scan.h"
#include "attest/kbs/json_fields.h"

namespace confpod::kbs {
namespace {

constexpr std::size_t kMaxInitDataSize = 64u << 10;
constexpr std::size_t kMaxNameSize = 128;

// Trustee's ErrorInformation kinds we use.
constexpr std::string_view kAttestationError = "AttestationError";
constexpr std::string_view kSerdeError = "SerdeError";
constexpr std::string_view kPolicyDeny = "PolicyDeny";
constexpr std::string_view kTokenNotFound = "TokenNotFound";
constexpr std::string_view kTokenVerifierError = "TokenVerifierError";
constexpr std::string_view kInvalidRequestPath = "InvalidRequestPath";
constexpr std::string_view kJweError = "JweError";

Reply error_reply(int status, std::string_view kind, const Error& error) {
  Reply r;
  r.status = status;
  r.error_code = error.code;
  nlohmann::json info = {{"type", std::string(kErrorTypePrefix) + std::string(kind)},
                         {"detail", error.describe()}};
  // error_handler::replace: a message quoting hostile bytes must not make dump() throw.
  r.body = info.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

// Status for a body-parsing failure: 413 for size, else 401 like Trustee's SerdeError.
Reply parse_error_reply(const Error& e) {
  return error_reply(e.code == "kbs.body.too_large" ? 413 : 401, kSerdeError, e);
}

std::string random_text(std::size_t n, bool hex) {
  Bytes b(n);
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) return {};
  return hex ? to_hex(b) : to_base64(b);
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameSize) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Semver "0.4.0", optionally with build metadata (which semver matching ignores); no
// pre-release.
bool version_accepted(std::string_view v) {
  auto plus = v.find('+');
  std::string_view core = v.substr(0, plus);
  if (plus != std::string_view::npos) {
    std::string_view build = v.substr(plus + 1);
    if (build.empty() || build.size() > 64) return false;
    for (char c : build)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            c == '-' || c == '.'))
        return false;
  }
  return core == kProtocolVersion;
}

}  // namespace

Result<nlohmann::json> parse_bounded_json(std::string_view text, std::size_t max_size) {
  if (text.size() > max_size)
    return make_error("kbs.body.too_large", "request body of " + std::to_string(text.size()) +
                                                " bytes exceeds " + std::to_string(max_size));
  // nlohmann's parser recurses only through the SAX stack, but the resulting value is
  // destroyed recursively, so deep input is refused before parsing.
  switch (scan_json(text, JsonLimits{kMaxJsonDepth})) {
    case JsonScan::kTooDeep:
    case JsonScan::kTooManyValues:
      return make_error("kbs.json.depth",
                        "JSON nesting deeper than " + std::to_string(kMaxJsonDepth));
    case JsonScan::kUnbalanced:
      return make_error("kbs.json.syntax", "request body is not valid JSON");
    case JsonScan::kWithinLimits:
      break;
  }
  try {
    auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return make_error("kbs.json.syntax", "request body is not valid JSON");
    return j;
  } catch (const std::exception&) {
    return make_error("kbs.json.syntax", "request body is not valid JSON");
  }
}

Bytes runtime_data_digest(const std::string& nonce, const TeeKey& key,
                          const std::string& additional_evidence) {
  // nlohmann's object keys are sorted bytewise (equal to JCS's UTF-16 order for these ASCII
  // keys), strings are written as UTF-8 with only '"', '\\' and control characters escaped
  // (\b \t \n \f \r, else \u00xx lower-case), and there is no whitespace: JCS for an object
  // of strings, which is all runtime data holds.
  nlohmann::json rt = {{"additional-evidence", additional_evidence},
                       {"nonce", nonce},
                       {"tee-pubkey", key.to_json()}};
  return crypto::sha384(
      as_bytes(rt.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
}

Kbs::Kbs(Options options, TokenKey token_key, std::shared_ptr<ResourceStore> store)
    : settings_(std::move(static_cast<SessionSettings&>(options))),
      verifier_(std::move(static_cast<EvidencePolicy&>(options))),
      token_key_(std::move(token_key)),
      store_(std::move(store)) {}

std::size_t Kbs::session_count() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void Kbs::purge_expired_locked(UnixSeconds now) {
  // At most once per second: a full table would otherwise be scanned on every auth.
  if (now == last_purge_) return;
  last_purge_ = now;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    // An attempt still verifying when its session expires finds it gone and fails.
    if (it->second.expires <= now)
      it = sessions_.erase(it);
    else
      ++it;
  }
}

Status Kbs::set_reference_values(ReferenceValues v, Source source) {
  auto bad = [](const std::string& m) { return make_error("kbs.reference_values", m); };
  if (!valid_name(v.pod)) return bad("pod name must be 1..128 of [A-Za-z0-9._-]");
  std::size_t digest_size = 0;
  if (v.tee == "snp") {
    digest_size = 32;
  } else if (v.tee == "tdx") {
    digest_size = 48;
  } else if (v.tee == "sample") {
    digest_size = 32;
  } else {
    return bad("tee must be snp, tdx or sample");
  }
  if (v.init_data_digest.size() != digest_size)
    return bad("init-data digest for " + v.tee + " must be " + std::to_string(digest_size) +
               " bytes");
  if (v.tee != "sample") {
    if (v.measurements.empty()) return bad("at least one measurement is required");
    for (const auto& m : v.measurements)
      if (m.size() != 48) return bad("measurements must be 48 bytes");
  }
  for (const auto& r : v.resources) {
    auto ok = check_resource_path(r);
    if (!ok.ok()) return bad("resource '" + r.substr(0, 64) + "': " + ok.error().message);
  }
  std::lock_guard lock(mu_);
  std::string name = v.pod;
  pods_[static_cast<std::size_t>(source)][name] = std::move(v);
  return ok_status();
}

void Kbs::remove_reference_values(std::string_view pod, Source source) {
  std::lock_guard lock(mu_);
  auto& layer = pods_[static_cast<std::size_t>(source)];
  auto it = layer.find(pod);
  if (it != layer.end()) layer.erase(it);
}

namespace {
// Whether `rv` accepts evidence of `tee` with these values.
bool accepts(const ReferenceValues& rv, const std::string& tee, const Bytes& init_data_digest,
             const Bytes& measurement) {
  if (rv.tee != tee || rv.init_data_digest != init_data_digest) return false;
  return rv.tee == "sample" || std::find(rv.measurements.begin(), rv.measurements.end(),
                                         measurement) != rv.measurements.end();
}
}  // namespace

bool Kbs::evict_oldest_attested_locked() {
  using Iterator = decltype(sessions_)::iterator;
  std::vector<std::pair<UnixSeconds, Iterator>> attested;
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
    if (it->second.state == Session::State::kAttested)
      attested.emplace_back(it->second.expires, it);
  if (attested.empty()) return false;
  // A batch, 1/16 of the table, soonest to expire first: one scan buys room for many new
  // clients instead of one (a full table is the normal state of a busy KBS).
  const std::size_t batch =
      std::min(attested.size(), std::max<std::size_t>(1, settings_.max_sessions / 16));
  std::nth_element(attested.begin(), attested.begin() + static_cast<std::ptrdiff_t>(batch - 1),
                   attested.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < batch; ++i) sessions_.erase(attested[i].second);
  return true;
}

// Auth ----------------------------------------------------------------------------------------

// The edge: nothing below is expected to throw (JSON is parsed without exceptions and read
// through type checks), but a throw from a library must become a reply, not a crash.
namespace {
Reply internal_error(const std::exception& e) {
  return error_reply(500, kAttestationError,
                     make_error("kbs.internal", std::string("internal error: ") + e.what()));
}
}  // namespace

Reply Kbs::handle_auth(std::string_view body, UnixSeconds now) {
  try {
    return auth_impl(body, now);
  } catch (const std::exception& e) {
    return internal_error(e);
  }
}

Reply Kbs::handle_attest(std::string_view session_id, std::string_view body, UnixSeconds now) {
  try {
    return attest_impl(session_id, body, now);
  } catch (const std::exception& e) {
    drop_session(session_id);
    return internal_error(e);
  }
}

Reply Kbs::handle_resource_with_session(std::string_view session_id, std::string_view path,
                                        UnixSeconds now) {
  try {
    return session_resource_impl(session_id, path, now);
  } catch (const std::exception& e) {
    return internal_error(e);
  }
}

Reply Kbs::handle_resource_with_token(std::string_view bearer_token, std::string_view path,
                                      UnixSeconds now) {
  try {
    return token_resource_impl(bearer_token, path, now);
  } catch (const std::exception& e) {
    return internal_error(e);
  }
}

void Kbs::drop_session(std::string_view session_id) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  if (it != sessions_.end()) sessions_.erase(it);
}

Reply Kbs::auth_impl(std::string_view body, UnixSeconds now) {
  auto parsed = parse_bounded_json(body, kMaxAuthBody);
  if (!parsed.ok()) return parse_error_reply(parsed.error());
  const auto& req = *parsed;
  if (!req.is_object())
    return error_reply(401, kSerdeError, make_error("kbs.request", "Request must be an object"));
  auto version = string_field(req, "version", "kbs.request", 80);
  auto tee = string_field(req, "tee", "kbs.request", 32);
  if (!version.ok()) return error_reply(401, kSerdeError, version.error());
  if (!tee.ok()) return error_reply(401, kSerdeError, tee.error());
  if (!req.contains("extra-params"))
    return error_reply(401, kSerdeError, make_error("kbs.request", "Request lacks 'extra-params'"));
  if (!version_accepted(*version))
    return error_reply(
        401, kAttestationError,
        make_error("kbs.version", "KBS protocol version mismatch: expected " +
                                      std::string(kProtocolVersion) + ", got '" + *version + "'"));
  if (*tee != "snp" && *tee != "tdx" && *tee != "sample")
    return error_reply(401, kAttestationError,
                       make_error("kbs.tee.unsupported", "tee '" + *tee + "' is not supported"));
  if (*tee == "sample" && !verifier_.policy().allow_insecure)
    return error_reply(401, kAttestationError,
                       make_error("kbs.tee.insecure",
                                  "tee 'sample' has no hardware evidence and insecure pods are "
                                  "not allowed"));

  Session s;
  s.tee = *tee;
  s.nonce = random_text(32, false);
  s.expires = now + settings_.session_ttl;
  std::string id = random_text(16, true);
  if (s.nonce.empty() || id.empty())
    return error_reply(500, kAttestationError, make_error("kbs.random", "no randomness"));
  std::lock_guard lock(mu_);
  if (sessions_.size() >= settings_.max_sessions) purge_expired_locked(now);
  // Full of live sessions: an attested one can go (its client has a token); a table full of
  // unfinished challenges is a flood, and new clients wait for those to expire.
  if (sessions_.size() >= settings_.max_sessions && !evict_oldest_attested_locked())
    return error_reply(503, kAttestationError,
                       make_error("kbs.session.limit", "too many open sessions (" +
                                                           std::to_string(settings_.max_sessions) +
                                                           ") waiting for attestation"));
  Reply r;
  r.body = nlohmann::json{{"nonce", s.nonce}, {"extra-params", ""}}.dump();
  r.session_id = id;
  sessions_.emplace(std::move(id), std::move(s));
  return r;
}

// Attest --------------------------------------------------------------------------------------

Reply Kbs::attest_impl(std::string_view session_id, std::string_view body, UnixSeconds now) {
  // Claim the session first: its nonce is spent by this attempt whatever the outcome.
  std::string tee, nonce;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session_id);
    if (session_id.empty() || it == sessions_.end())
      return error_reply(401, kAttestationError,
                         make_error("kbs.session.unknown", "no such session (authenticate first)"));
    if (it->second.expires <= now) {
      sessions_.erase(it);
      return error_reply(401, kAttestationError,
                         make_error("kbs.session.expired", "session expired"));
    }
    if (it->second.state != Session::State::kChallenged)
      return error_reply(
          401, kAttestationError,
          make_error("kbs.session.replay", "this session's challenge was already answered"));
    it->second.state = Session::State::kAttesting;
    tee = it->second.tee;
    nonce = it->second.nonce;
  }
  auto fail = [&](int status, std::string_view kind, const Error& e) {
    drop_session(session_id);
    return error_reply(status, kind, e);
  };

  auto parsed = parse_bounded_json(body, kMaxAttestBody);
  if (!parsed.ok())
    return fail(parsed.error().code == "kbs.body.too_large" ? 413 : 401, kSerdeError,
                parsed.error());
  const auto& att = *parsed;
  auto shape = [&](const std::string& m) {
    return fail(401, kSerdeError, make_error("kbs.attestation", m));
  };
  if (!att.is_object()) return shape("Attestation must be an object");
  auto rt = att.find("runtime-data");
  auto ev = att.find("tee-evidence");
  if (rt == att.end() || !rt->is_object()) return shape("'runtime-data' must be an object");
  if (ev == att.end() || !ev->is_object()) return shape("'tee-evidence' must be an object");
  auto got_nonce = string_field(*rt, "nonce", "kbs.attestation", 256);
  if (!got_nonce.ok()) return fail(401, kSerdeError, got_nonce.error());
  auto pk = rt->find("tee-pubkey");
  if (pk == rt->end()) return shape("'runtime-data' lacks 'tee-pubkey'");
  auto primary = ev->find("primary_evidence");
  if (primary == ev->end()) return shape("'tee-evidence' lacks 'primary_evidence'");
  auto additional = string_field(*ev, "additional_evidence", "kbs.attestation", 1u << 20);
  if (!additional.ok()) return fail(401, kSerdeError, additional.error());
  std::optional<std::string> init_body;
  if (auto id = att.find("init-data"); id != att.end() && !id->is_null()) {
    if (!id->is_object()) return shape("'init-data' must be an object");
    auto body_text = string_field(*id, "body", "kbs.attestation", kMaxInitDataSize);
    if (!body_text.ok()) return fail(401, kSerdeError, body_text.error());
    init_body = std::move(body_text).value();
  }

  if (*got_nonce != nonce)
    return fail(401, kAttestationError,
                make_error("kbs.nonce", "runtime-data nonce is not this session's challenge"));
  if (!additional->empty())
    return fail(
        401, kAttestationError,
        make_error("kbs.evidence.additional", "additional (device) evidence is not supported"));
  auto key = parse_tee_key(*pk);
  if (!key.ok()) return fail(401, kAttestationError, key.error());

  Bytes expected = runtime_data_digest(nonce, *key, *additional);
  auto facts = verifier_.verify(tee, *primary, expected_report_data(tee, expected), init_body, now);
  if (!facts.ok()) return fail(401, kAttestationError, facts.error());

  std::lock_guard lock(mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end())
    return error_reply(401, kAttestationError,
                       make_error("kbs.session.unknown", "session vanished during attestation"));
  // The pod whose reference values (either layer) this evidence meets.
  const ReferenceValues* match = nullptr;
  std::set<std::string_view> matched_pods;
  for (const auto& layer : pods_) {
    for (const auto& [name, rv] : layer) {
      if (!accepts(rv, facts->tee, facts->init_data_digest, facts->measurement)) continue;
      match = &rv;
      matched_pods.insert(name);
    }
  }
  const std::size_t matches = matched_pods.size();
  if (matches != 1) {
    sessions_.erase(it);
    return error_reply(
        401, kPolicyDeny,
        matches == 0 ? make_error("kbs.policy.no_pod",
                                  "no pod's reference values match this evidence (measurement " +
                                      to_hex(facts->measurement) + ", init-data digest " +
                                      to_hex(facts->init_data_digest) + ")")
                     : make_error("kbs.policy.ambiguous",
                                  "more than one pod's reference values match this evidence"));
  }

  Attested who;
  who.pod = match->pod;
  who.tee = facts->tee;
  who.measurement = facts->measurement;
  who.init_data_digest = facts->init_data_digest;
  nlohmann::json claims = {
      {"iss", settings_.issuer},
      {"iat", now},
      {"exp", now + settings_.token_ttl},
      {"eat_profile", "tag:github.com,2023:veraison/ear"},
      {"ear.status", facts->insecure ? "warning" : "affirming"},
      {"tee", facts->tee},
      {"pod", who.pod},
      {"insecure", facts->insecure},
      {"measurement", to_hex(facts->measurement)},
      {"tee-pubkey", key->to_json()},
      {"jwk", token_key_.public_jwk()},
  };
  if (facts->tee == "tdx")
    claims["mrconfigid"] = to_hex(facts->init_data_digest);
  else
    claims["host_data"] = to_hex(facts->init_data_digest);
  for (auto& [k, v] : facts->claims.items()) claims[k] = v;
  auto token = token_key_.sign_jwt(claims);
  if (!token.ok()) {
    sessions_.erase(it);
    return error_reply(500, kAttestationError, token.error());
  }
  who.key = std::make_shared<const TeeKey>(std::move(key).value());
  it->second.state = Session::State::kAttested;
  it->second.expires = now + settings_.token_ttl;
  it->second.attested = std::move(who);
  Reply r;
  r.body = nlohmann::json{{"token", *token}}.dump();
  r.session_id = std::string(session_id);
  return r;
}

// Resources -----------------------------------------------------------------------------------

Reply Kbs::release(const Attested& who, std::string_view path) {
  auto path_ok = check_resource_path(path);
  if (!path_ok.ok()) return error_reply(404, kInvalidRequestPath, path_ok.error());
  {
    std::lock_guard lock(mu_);
    // The pod must still exist and still accept what was attested (reference values can be
    // replaced or removed after a token was issued), in a layer that lists the resource.
    bool accepted = false, listed = false;
    for (const auto& layer : pods_) {
      auto pod = layer.find(who.pod);
      if (pod == layer.end() ||
          !accepts(pod->second, who.tee, who.init_data_digest, who.measurement))
        continue;
      accepted = true;
      const auto& resources = pod->second.resources;
      if (std::find(resources.begin(), resources.end(), path) != resources.end()) listed = true;
    }
    if (!accepted)
      return error_reply(
          403, kPolicyDeny,
          make_error("kbs.policy.stale", "pod '" + who.pod + "' no longer accepts this evidence"));
    if (!listed)
      return error_reply(
          403, kPolicyDeny,
          make_error("kbs.policy.resource",
                     "pod '" + who.pod + "' does not list resource '" + std::string(path) + "'"));
  }
  auto value = store_->get(path);
  if (!value.ok()) return error_reply(500, kAttestationError, value.error());
  if (!value->has_value())
    return error_reply(
        404, kInvalidRequestPath,
        make_error("kbs.resource.missing", "resource '" + std::string(path) + "' is not stored"));
  auto jwe = jwe_encrypt(*who.key, **value);
  OPENSSL_cleanse((*value)->data(), (*value)->size());
  if (!jwe.ok()) return error_reply(401, kJweError, jwe.error());
  Reply r;
  r.body = std::move(jwe).value();
  return r;
}

Reply Kbs::session_resource_impl(std::string_view session_id, std::string_view path,
                                 UnixSeconds now) {
  Attested who;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session_id);
    if (session_id.empty() || it == sessions_.end())
      return error_reply(401, kTokenNotFound,
                         make_error("kbs.session.unknown", "no attested session"));
    if (it->second.expires <= now) {
      sessions_.erase(it);
      return error_reply(401, kTokenNotFound, make_error("kbs.session.expired", "session expired"));
    }
    if (it->second.state != Session::State::kAttested)
      return error_reply(401, kTokenNotFound,
                         make_error("kbs.session.unattested", "session has not attested"));
    who = it->second.attested;
  }
  return release(who, path);
}

Reply Kbs::token_resource_impl(std::string_view bearer_token, std::string_view path,
                               UnixSeconds now) {
  if (bearer_token.empty())
    return error_reply(401, kTokenNotFound, make_error("kbs.token.missing", "no token"));
  auto claims = token_key_.verify_jwt(bearer_token, now);
  if (!claims.ok()) return error_reply(401, kTokenVerifierError, claims.error());
  auto bad = [](const std::string& m) {
    return error_reply(401, kTokenVerifierError, make_error("kbs.token.format", m));
  };
  const auto& c = *claims;
  auto iss = c.find("iss");
  if (iss == c.end() || !iss->is_string() || *iss != settings_.issuer)
    return bad("token issuer is not this KBS");
  Attested who;
  auto pod = c.find("pod");
  auto tee = c.find("tee");
  auto m = c.find("measurement");
  if (tee == c.end() || !tee->is_string()) return bad("token lacks tee");
  auto digest = c.find(*tee == "tdx" ? "mrconfigid" : "host_data");
  auto pk = c.find("tee-pubkey");
  if (pod == c.end() || !pod->is_string() || m == c.end() || !m->is_string() || digest == c.end() ||
      !digest->is_string() || pk == c.end())
    return bad("token lacks pod, tee, measurement, init-data digest or tee-pubkey");
  auto mb = from_hex(m->get<std::string>());
  auto db = from_hex(digest->get<std::string>());
  auto key = parse_tee_key(*pk);
  if (!mb.ok() || !db.ok() || !key.ok()) return bad("token claims are malformed");
  who.pod = pod->get<std::string>();
  who.tee = tee->get<std::string>();
  who.measurement = std::move(mb).value();
  who.init_data_digest = std::move(db).value();
  who.key = std::make_shared<const TeeKey>(std::move(key).value());
  return release(who, path);
}

}  // namespace confpod::kbs
