// The guest's KBS client: the Trustee RCAR handshake (protocol 0.4.0, docs/kbs.md) and
// resource retrieval, with an ephemeral TEE key generated per handshake.
//
// auth (Request: version, tee, extra-params) -> Challenge nonce; the evidence provider is
// asked for evidence whose report_data is the runtime-data digest (kbs::runtime_data_digest:
// SHA-384 of the JCS form of nonce + tee-pubkey + additional evidence); attest (with the
// init-data body) -> token; then GET /kbs/v0/resource/<path> for each secret, each answer a
// JWE decrypted with the ephemeral private key (RSA-OAEP-256 or ECDH-ES+A256KW, A256GCM).
//
// The KBS is reached over plain HTTP inside the guest's network (the JWE protects the
// secrets, the evidence binds the key); https URLs are accepted too.
//
// Errors: "kbs_client.url", "kbs_client.http" (transport), "kbs_client.status" (a non-200
// reply; the message carries the method and route, the HTTP status, and the ErrorInformation
// type without its URL prefix and detail: "GET /kbs/v0/resource/a/b/c: HTTP 403 PolicyDeny:
// kbs.policy.resource: ..."), "kbs_client.reply" (malformed or oversized reply),
// "kbs_client.jwe" (decryption), "kbs_client.state" (get_resource without a successful
// attest), "kbs_client.resource" (a malformed resource path), "kbs_client.init_data"
// (init-data that is not UTF-8, which JSON cannot carry), "kbs_client.key" (key generation),
// "kbs_client.internal" (an unexpected exception from a library), and the evidence provider's
// errors.
//
// Every reply is hostile: bodies are read with a bound (64 KiB for auth/attest, 4 MiB for a
// resource), parsed without exceptions, and checked member by member; redirects are not
// followed. The init-data goes out as {"format": "json", "body": <the bytes as given>}. A
// failed attest() forgets the session, token and key; attest() again starts over. A client is
// not thread-safe: one per thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "guest/evidence/evidence.h"

namespace confpod::guest {

struct KbsClientOptions {
  std::string url;  // "http://10.0.2.2:8080"
  std::chrono::seconds timeout{30};
  enum class KeyKind { kEc, kRsa } key_kind = KeyKind::kEc;  // the ephemeral TEE key
  // https only: the PEM file of the CA(s) the KBS certificate must chain to (an on-prem KBS
  // usually has its own); empty: the system's trust store. The certificate is always verified.
  std::string ca_cert_file{};
};

class KbsClient {
 public:
  // `evidence` must outlive the client.
  KbsClient(KbsClientOptions options, EvidenceProvider& evidence);
  ~KbsClient();

  // auth + attest. `init_data` is the init-data body sent in the Attestation message; the
  // KBS matches its digest (sample) or the evidence's (snp/tdx) against its reference values.
  Status attest(const std::string& init_data);
  // One resource ("<repository>/<type>/<tag>"), decrypted. Requires attest() first.
  Result<Bytes> get_resource(const std::string& path);
  // The attestation token (an ES256 JWT) of the last successful attest(), else empty.
  const std::string& token() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace confpod::guest
