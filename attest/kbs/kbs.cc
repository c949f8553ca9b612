#include "attest/kbs/kbs.h"

#include <openssl/rand.h>

#include <algorithm>
#include <set>

#include "attest/base/json_scan.h"
#include "attest/snp/appraisal.h"
#include "attest/snp/claims.h"
#include "attest/snp/report_json.h"
#include "attest/snp/verify.h"
#include "attest/tdx/appraisal.h"
#include "attest/tdx/verify.h"

namespace confpod::kbs {
namespace {

constexpr std::size_t kMaxQuoteSize = 128u << 10;
constexpr std::size_t kMaxEventLogSize = 2u << 20;
constexpr std::size_t kMaxCertSize = 16u << 10;
constexpr std::size_t kMaxCertEntries = 8;
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

Result<std::string> get_string(const nlohmann::json& obj, const char* name, std::string code,
                               std::size_t max) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string())
    return make_error(std::move(code), std::string("'") + name + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max)
    return make_error(std::move(code), std::string("'") + name + "' is longer than " +
                                           std::to_string(max) + " bytes");
  return s;
}

// A byte field given either as standard base64 text or as a JSON array of 0..255 (the form
// serde gives a Vec<u8>).
Result<Bytes> byte_field(const nlohmann::json& v, std::size_t max, const std::string& code,
                         const std::string& name) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > (max / 3 + 1) * 4) return make_error(code, name + " is too long");
    auto b = from_base64(s);
    if (!b.ok()) return make_error(code, name + " is not base64: " + b.error().message);
    return std::move(b).value();
  }
  if (v.is_array()) {
    if (v.size() > max) return make_error(code, name + " is too long");
    Bytes out;
    out.reserve(v.size());
    for (const auto& e : v) {
      if (!e.is_number_unsigned() || e.get<std::uint64_t>() > 255)
        return make_error(code, name + " array must hold integers 0..255");
      out.push_back(static_cast<std::uint8_t>(e.get<std::uint64_t>()));
    }
    return out;
  }
  return make_error(code, name + " must be base64 text or a byte array");
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

Bytes pad64(const Bytes& digest) {
  Bytes out = digest;
  out.resize(64, 0);
  return out;
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
    : options_(std::move(options)), token_key_(std::move(token_key)), store_(std::move(store)) {}

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
      std::min(attested.size(), std::max<std::size_t>(1, options_.max_sessions / 16));
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
  auto version = get_string(req, "version", "kbs.request", 80);
  auto tee = get_string(req, "tee", "kbs.request", 32);
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
  if (*tee == "sample" && !options_.allow_insecure)
    return error_reply(401, kAttestationError,
                       make_error("kbs.tee.insecure",
                                  "tee 'sample' has no hardware evidence and insecure pods are "
                                  "not allowed"));

  Session s;
  s.tee = *tee;
  s.nonce = random_text(32, false);
  s.expires = now + options_.session_ttl;
  std::string id = random_text(16, true);
  if (s.nonce.empty() || id.empty())
    return error_reply(500, kAttestationError, make_error("kbs.random", "no randomness"));
  std::lock_guard lock(mu_);
  if (sessions_.size() >= options_.max_sessions) purge_expired_locked(now);
  // Full of live sessions: an attested one can go (its client has a token); a table full of
  // unfinished challenges is a flood, and new clients wait for those to expire.
  if (sessions_.size() >= options_.max_sessions && !evict_oldest_attested_locked())
    return error_reply(503, kAttestationError,
                       make_error("kbs.session.limit", "too many open sessions (" +
                                                           std::to_string(options_.max_sessions) +
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
  auto got_nonce = get_string(*rt, "nonce", "kbs.attestation", 256);
  if (!got_nonce.ok()) return fail(401, kSerdeError, got_nonce.error());
  auto pk = rt->find("tee-pubkey");
  if (pk == rt->end()) return shape("'runtime-data' lacks 'tee-pubkey'");
  auto primary = ev->find("primary_evidence");
  if (primary == ev->end()) return shape("'tee-evidence' lacks 'primary_evidence'");
  auto additional = get_string(*ev, "additional_evidence", "kbs.attestation", 1u << 20);
  if (!additional.ok()) return fail(401, kSerdeError, additional.error());
  std::optional<std::string> init_body;
  if (auto id = att.find("init-data"); id != att.end() && !id->is_null()) {
    if (!id->is_object()) return shape("'init-data' must be an object");
    auto body_text = get_string(*id, "body", "kbs.attestation", kMaxInitDataSize);
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
  auto facts = verify_evidence(tee, *primary, expected, init_body, now);
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
      {"iss", options_.issuer},
      {"iat", now},
      {"exp", now + options_.token_ttl},
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
  it->second.expires = now + options_.token_ttl;
  it->second.attested = std::move(who);
  Reply r;
  r.body = nlohmann::json{{"token", *token}}.dump();
  r.session_id = std::string(session_id);
  return r;
}

Result<Kbs::Facts> Kbs::verify_evidence(const std::string& tee, const nlohmann::json& evidence,
                                        const Bytes& expected,
                                        const std::optional<std::string>& init_data_body,
                                        UnixSeconds now) const {
  if (!evidence.is_object())
    return make_error("kbs.evidence", "primary_evidence must be a JSON object");
  if (tee == "snp") return verify_snp(evidence, pad64(expected), now);
  if (tee == "tdx") return verify_tdx(evidence, pad64(expected), now);
  if (tee == "sample" && options_.allow_insecure)
    return verify_sample(evidence, expected, init_data_body);
  return make_error("kbs.tee.unsupported", "tee '" + tee + "' is not accepted");
}

Result<Kbs::Facts> Kbs::verify_snp(const nlohmann::json& evidence, const Bytes& expected,
                                   UnixSeconds now) const {
  auto rep = evidence.find("attestation_report");
  if (rep == evidence.end()) return make_error("kbs.evidence.snp", "no 'attestation_report'");
  // Trustee's attester sends the sev crate's field-by-field object; ours may send the raw bytes.
  Bytes raw;
  if (rep->is_object()) {
    auto decoded = snp::raw_report_from_sev_json(*rep);
    if (!decoded.ok()) return make_error("kbs.evidence.snp", decoded.error().message);
    raw = std::move(*decoded);
  } else {
    CONFPOD_ASSIGN_OR_RETURN(
        raw, byte_field(*rep, snp::kReportSize, "kbs.evidence.snp", "attestation_report"));
  }
  CONFPOD_ASSIGN_OR_RETURN(snp::Report unverified, snp::parse_report(raw));

  crypto::X509Ptr vek, ask, ark;
  if (auto chain = evidence.find("cert_chain"); chain != evidence.end() && !chain->is_null()) {
    if (!chain->is_array() || chain->size() > kMaxCertEntries)
      return make_error("kbs.evidence.snp", "cert_chain must be an array of at most 8 entries");
    for (const auto& entry : *chain) {
      if (!entry.is_object()) return make_error("kbs.evidence.snp", "cert_chain entry");
      auto type = entry.find("cert_type");
      auto data = entry.find("data");
      if (type == entry.end() || data == entry.end())
        return make_error("kbs.evidence.snp", "cert_chain entry needs cert_type and data");
      if (!type->is_string()) continue;  // OTHER(uuid) entries carry nothing we use
      const auto& t = type->get_ref<const std::string&>();
      crypto::X509Ptr* slot = t == "VCEK" || t == "VLEK" ? &vek
                              : t == "ASK"               ? &ask
                              : t == "ARK"               ? &ark
                                                         : nullptr;
      if (!slot) continue;
      CONFPOD_ASSIGN_OR_RETURN(Bytes der, byte_field(*data, kMaxCertSize, "kbs.evidence.snp", t));
      CONFPOD_ASSIGN_OR_RETURN(*slot, crypto::parse_certificate(der));
    }
  }
  if (!vek) {
    if (!options_.snp_vek)
      return make_error("kbs.evidence.snp", "no VCEK/VLEK in cert_chain and no VCEK source");
    CONFPOD_ASSIGN_OR_RETURN(Bytes der, options_.snp_vek(unverified));
    CONFPOD_ASSIGN_OR_RETURN(vek, crypto::parse_certificate(der));
  }
  CONFPOD_ASSIGN_OR_RETURN(auto chain,
                           snp::verify_chain(vek.get(), ask.get(), ark.get(), std::nullopt, now));
  if (options_.snp_revocation) CONFPOD_TRY(options_.snp_revocation(chain, now));
  CONFPOD_ASSIGN_OR_RETURN(snp::Report report, snp::parse_and_verify(raw, chain));
  if (!std::equal(report.report_data.begin(), report.report_data.end(), expected.begin(),
                  expected.end()))
    return make_error("kbs.binding", "REPORT_DATA " + to_hex(report.report_data) +
                                         " is not the runtime-data digest " + to_hex(expected));
  snp::Policy policy;
  policy.allow_debug = options_.allow_debug;
  policy.min_tcb = options_.snp_min_tcb;
  CONFPOD_TRY(snp::appraise(report, policy));
  Facts f;
  f.tee = "snp";
  f.measurement.assign(report.measurement.begin(), report.measurement.end());
  f.init_data_digest.assign(report.host_data.begin(), report.host_data.end());
  nlohmann::json c = snp::claims(report, chain.product);
  f.claims = {{"tcb_status", options_.snp_min_tcb ? "meets_minimum" : "not_evaluated"},
              {"snp",
               {{"reported_tcb", c["reported_tcb"]},
                {"policy", c["policy"]},
                {"product", c["product"]},
                {"signing_key", c["signing_key"]},
                {"vmpl", c["vmpl"]},
                {"guest_svn", c["guest_svn"]}}}};
  return f;
}

Result<Kbs::Facts> Kbs::verify_tdx(const nlohmann::json& evidence, const Bytes& expected,
                                   UnixSeconds now) const {
  auto q = evidence.find("quote");
  if (q == evidence.end() || !q->is_string())
    return make_error("kbs.evidence.tdx", "'quote' must be base64 text");
  CONFPOD_ASSIGN_OR_RETURN(Bytes raw, byte_field(*q, kMaxQuoteSize, "kbs.evidence.tdx", "quote"));
  if (auto log = evidence.find("cc_eventlog"); log != evidence.end() && !log->is_null()) {
    // Decoded only to refuse malformed input; reference values do not cover RTMRs yet.
    if (!log->is_string()) return make_error("kbs.evidence.tdx", "'cc_eventlog' must be text");
    CONFPOD_TRY(byte_field(*log, kMaxEventLogSize, "kbs.evidence.tdx", "cc_eventlog"));
  }
  CONFPOD_ASSIGN_OR_RETURN(tdx::Quote quote, tdx::parse_quote(raw));
  if (!options_.tdx_collateral)
    return make_error("kbs.evidence.tdx", "no TDX collateral source is configured");
  CONFPOD_ASSIGN_OR_RETURN(auto collateral, options_.tdx_collateral(quote, now));
  if (!collateral) return make_error("kbs.evidence.tdx", "no collateral for this quote");
  CONFPOD_ASSIGN_OR_RETURN(tdx::Verdict verdict,
                           tdx::verify_quote(quote, *collateral, now, &tdx_signatures_));
  const auto& rd = quote.body.report_data;
  if (!std::equal(rd.begin(), rd.end(), expected.begin(), expected.end()))
    return make_error("kbs.binding", "REPORTDATA " + to_hex(rd) +
                                         " is not the runtime-data digest " + to_hex(expected));
  tdx::Policy policy;
  policy.allow_debug = options_.allow_debug;
  policy.accepted_tcb_statuses = options_.tdx_accepted_tcb_statuses;
  CONFPOD_TRY(tdx::appraise(quote, verdict, policy));
  Facts f;
  f.tee = "tdx";
  f.measurement.assign(quote.body.mr_td.begin(), quote.body.mr_td.end());
  f.init_data_digest.assign(quote.body.mr_config_id.begin(), quote.body.mr_config_id.end());
  f.claims = {{"tcb_status", verdict.tcb_status},
              {"tdx", {{"advisory_ids", verdict.advisory_ids}, {"tcb_date", verdict.tcb_date}}}};
  return f;
}

Result<Kbs::Facts> Kbs::verify_sample(const nlohmann::json& evidence, const Bytes& expected,
                                      const std::optional<std::string>& init_data_body) const {
  CONFPOD_ASSIGN_OR_RETURN(std::string svn, get_string(evidence, "svn", "kbs.evidence.sample", 32));
  auto rd = evidence.find("report_data");
  if (rd == evidence.end() || !rd->is_string())
    return make_error("kbs.evidence.sample", "'report_data' must be base64 text");
  CONFPOD_ASSIGN_OR_RETURN(Bytes data, byte_field(*rd, 64, "kbs.evidence.sample", "report_data"));
  if (data != expected)
    return make_error("kbs.binding", "sample report_data " + to_hex(data) +
                                         " is not the runtime-data digest " + to_hex(expected));
  Facts f;
  f.tee = "sample";
  f.insecure = true;
  if (init_data_body) f.init_data_digest = crypto::sha256(as_bytes(*init_data_body));
  f.claims = {{"tcb_status", "insecure"}, {"sample", {{"svn", svn}}}};
  return f;
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
  if (iss == c.end() || !iss->is_string() || *iss != options_.issuer)
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
