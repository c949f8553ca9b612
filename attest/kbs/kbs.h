// The Key Broker Service core: the Trustee KBS protocol (RCAR: Request, Challenge,
// Attestation, Response; protocol version 0.4.0) without a transport. The HTTP server maps
// POST /kbs/v0/auth to handle_auth (setting the kbs-session-id cookie to Reply::session_id),
// POST /kbs/v0/attest to handle_attest (cookie value in), GET /kbs/v0/resource/<path> to
// handle_resource_* (cookie or "Authorization: Bearer"), and serves jwks() at a well-known
// path. Every request body is hostile: sizes and nesting are bounded and every failure is a
// Reply with an HTTP status and Trustee's ErrorInformation JSON. Time is an input. The class
// is thread-safe; evidence verification runs outside its lock. See docs/kbs.md.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/kbs/evidence.h"
#include "attest/kbs/jose.h"
#include "attest/kbs/resources.h"

namespace confpod::kbs {

// The protocol version the current guest-components client sends; Trustee accepts only it
// (0.4.0 changed the Attestation message incompatibly), and so do we.
inline constexpr std::string_view kProtocolVersion = "0.4.0";
inline constexpr std::size_t kMaxAuthBody = 64u << 10;
inline constexpr std::size_t kMaxAttestBody = 4u << 20;
inline constexpr int kMaxJsonDepth = 32;
// Prefix of ErrorInformation.type, as Trustee spells it.
inline constexpr std::string_view kErrorTypePrefix =
    "https://github.com/confidential-containers/kbs/errors/";

// What a handler returns. On failure `body` is {"type": prefix + kind, "detail"} and
// `error_code` the confpod error code ("kbs.nonce", "snp.signature", ...).
struct Reply {
  int status = 200;
  std::string body;        // JSON
  std::string session_id;  // handle_auth: the kbs-session-id cookie value
  std::string error_code;  // empty on success
  bool ok() const { return status == 200; }
};

// What one pod may be: the expected evidence and the resources its spec lists. The daemon
// registers these when it launches a pod; an admin may add more.
struct ReferenceValues {
  std::string pod;
  std::string tee;  // "snp", "tdx" or "sample"
  // snp: launch digests (48 bytes), tdx: MRTDs (48 bytes); at least one. sample: ignored.
  std::vector<Bytes> measurements;
  // The digest of the pod's init-data as the evidence carries it: snp HOST_DATA (SHA-256,
  // 32 bytes), tdx MRCONFIGID (SHA-384, 48 bytes), sample SHA-256 of the init-data body the
  // Attestation message carries (32 bytes).
  Bytes init_data_digest;
  std::vector<std::string> resources;  // "<repository>/<type>/<tag>"
};

// The session and token settings.
struct SessionSettings {
  std::size_t max_sessions = 4096;
  UnixSeconds session_ttl = 300;  // auth -> attest window
  UnixSeconds token_ttl = 600;    // attested session and token lifetime
  std::string issuer = "confpod-kbs";
};

// The evidence policy (evidence.h) and the session and token settings.
struct Options : EvidencePolicy, SessionSettings {};

class Kbs {
 public:
  Kbs(Options options, TokenKey token_key, std::shared_ptr<ResourceStore> store);

  // POST /kbs/v0/auth. Body: {"version","tee","extra-params"}. Reply: {"nonce",
  // "extra-params":""} and a new session id.
  Reply handle_auth(std::string_view body, UnixSeconds now);
  // POST /kbs/v0/attest with the session's cookie. Body: {"init-data"?, "runtime-data":
  // {"nonce","tee-pubkey"}, "tee-evidence": {"primary_evidence","additional_evidence"}}.
  // Reply: {"token": JWT}. A session attests once; its nonce is spent by the first attempt.
  Reply handle_attest(std::string_view session_id, std::string_view body, UnixSeconds now);
  // GET /kbs/v0/resource/<path>: the resource as a JWE to the attested tee-pubkey.
  Reply handle_resource_with_session(std::string_view session_id, std::string_view path,
                                     UnixSeconds now);
  Reply handle_resource_with_token(std::string_view bearer_token, std::string_view path,
                                   UnixSeconds now);

  // The token verification key set ({"keys":[JWK]}).
  nlohmann::json jwks() const { return token_key_.jwks(); }

  // Who set a pod's reference values: the daemon, for the pods it launches (replaced at every
  // change of the pod), or an admin through org.confpod1.Broker (e.g. measurements computed on
  // a trusted machine). The two layers are kept apart, so the daemon's updates never erase an
  // admin's values; evidence that meets either layer is the pod's, and the resources released
  // are the ones the layer it met lists.
  enum class Source { kDaemon = 0, kAdmin = 1 };

  // Replaces the pod's reference values of that source. Error "kbs.reference_values".
  Status set_reference_values(ReferenceValues values, Source source = Source::kDaemon);
  void remove_reference_values(std::string_view pod, Source source = Source::kDaemon);

  std::size_t session_count() const;

  // What attestation established (exposed for the HTTP layer's logs and for tests).
  struct Attested {
    std::string pod;
    std::string tee;
    Bytes measurement;
    Bytes init_data_digest;
    std::shared_ptr<const TeeKey> key;
  };

 private:
  struct Session {
    std::string tee;
    std::string nonce;
    UnixSeconds expires = 0;
    enum class State { kChallenged, kAttesting, kAttested } state = State::kChallenged;
    Attested attested;
  };
  Reply auth_impl(std::string_view body, UnixSeconds now);
  Reply attest_impl(std::string_view session_id, std::string_view body, UnixSeconds now);
  Reply session_resource_impl(std::string_view session_id, std::string_view path, UnixSeconds now);
  Reply token_resource_impl(std::string_view bearer_token, std::string_view path, UnixSeconds now);
  void drop_session(std::string_view session_id);
  Reply release(const Attested& who, std::string_view path);
  void purge_expired_locked(UnixSeconds now);
  // Drops the attested sessions that expire first, max_sessions / 16 of them at once (their
  // clients keep their tokens, which the resource endpoint takes as bearer tokens). False when
  // no session is attested.
  bool evict_oldest_attested_locked();

  SessionSettings settings_;
  EvidenceVerifier verifier_;  // holds the EvidencePolicy
  TokenKey token_key_;
  std::shared_ptr<ResourceStore> store_;
  mutable std::mutex mu_;
  std::map<std::string, Session, std::less<>> sessions_;
  UnixSeconds last_purge_ = 0;  // purge_expired_locked's last run (under mu_)
  // Indexed by Source.
  std::array<std::map<std::string, ReferenceValues, std::less<>>, 2> pods_;
};

// The report_data a TEE must carry for a challenge, as Trustee's client computes it: SHA-384
// of the RFC 8785 (JCS) form of {"additional-evidence", "nonce", "tee-pubkey"} (48 bytes).
// Hardware TEEs carry it zero-padded to 64 bytes; the sample TEE carries the 48 bytes.
Bytes runtime_data_digest(const std::string& nonce, const TeeKey& key,
                          const std::string& additional_evidence);

// Parses untrusted JSON with a size and nesting bound, never throwing. Errors
// "kbs.body.too_large", "kbs.json.depth", "kbs.json.syntax".
Result<nlohmann::json> parse_bounded_json(std::string_view text, std::size_t max_size);

}  // namespace confpod::kbs
