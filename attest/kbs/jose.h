// JOSE pieces the KBS needs, on OpenSSL 3: base64url, the TEE's public key as a JWK, the
// resource JWE (flattened JSON serialization, as Trustee's kbs-types Response), and the KBS's
// own ES256 key that signs attestation tokens. See docs/kbs.md for the algorithms.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"

namespace confpod::kbs {

// RFC 4648 section 5 without padding (what JOSE uses).
std::string base64url(ByteView bytes);
// Accepts unpadded base64url only. Error "kbs.base64url".
Result<Bytes> from_base64url(std::string_view text);

// The TEE-generated public key from runtime-data.tee-pubkey, reduced to the members Trustee's
// typed TeePubKey keeps (kty, alg, n, e for RSA; kty, crv, alg, x, y for EC). Those members,
// and only those, are what the report_data binding hashes.
struct TeeKey {
  enum class Kind { kRsa, kEc };
  Kind kind = Kind::kEc;
  std::string alg;   // "RSA-OAEP-256" | "ECDH-ES+A256KW"
  std::string crv;   // EC: "P-256"
  std::string n, e;  // RSA, base64url as received
  std::string x, y;  // EC, base64url as received
  crypto::EvpPkeyPtr key;

  // The JWK object as Trustee re-serializes it (the typed members only).
  nlohmann::json to_json() const;
};

// Parses and checks a tee-pubkey JWK: string members, supported algorithm, RSA modulus of
// 2048..8192 bits with an odd exponent, EC point on P-256. Errors "kbs.tee_pubkey" (shape,
// values) and "kbs.tee_pubkey.alg" (an algorithm we do not encrypt to, e.g. RSA1_5).
Result<TeeKey> parse_tee_key(const nlohmann::json& jwk);

// Encrypts `plaintext` to `key` with A256GCM; the content key is wrapped with RSA-OAEP-256
// (SHA-256, MGF1-SHA-256) or ECDH-ES+A256KW (Concat KDF SHA-256, AES key wrap). Returns the
// flattened JSON serialization {"protected","encrypted_key","iv","ciphertext","tag"}, every
// value base64url; the AAD is the ASCII of the protected member. Error "kbs.jwe".
Result<std::string> jwe_encrypt(const TeeKey& key, ByteView plaintext);

// The ECDH-ES+A256KW key-encryption key, as both ends derive it: ECDH on P-256 between `own`
// (a private key) and `peer` (a public key; both must be P-256, and `peer` a point of its
// group), then the Concat KDF of RFC 7518 section 4.6.2
// (one SHA-256 round, alg "ECDH-ES+A256KW", empty apu and apv). 32 bytes, which the caller
// wipes. Error "kbs.jwe". The KBS encrypts with it; the guest's KBS client decrypts with it.
Result<Bytes> ecdh_es_a256kw_kek(EVP_PKEY* own, EVP_PKEY* peer);

// The KBS's token signing key (ECDSA P-256, ES256).
class TokenKey {
 public:
  static Result<TokenKey> generate();
  // PKCS#8 or traditional PEM private key; must be P-256. Error "kbs.token_key".
  static Result<TokenKey> from_pem(std::string_view pem);

  std::string private_pem() const;
  // {"kty":"EC","crv":"P-256","x","y","alg":"ES256","use":"sig","kid"}; kid is the RFC 7638
  // thumbprint (SHA-256, base64url).
  nlohmann::json public_jwk() const;
  // {"keys":[public_jwk()]}, for the well-known path.
  nlohmann::json jwks() const;
  const std::string& kid() const { return kid_; }

  // header.payload.signature with header {"alg":"ES256","typ":"JWT","kid"}.
  Result<std::string> sign_jwt(const nlohmann::json& claims) const;
  // Checks the compact JWT is ES256 by this key and inside iat..exp at `now` (60 s skew for
  // iat); returns the claims. Errors "kbs.token.format", "kbs.token.signature",
  // "kbs.token.expired".
  Result<nlohmann::json> verify_jwt(std::string_view jwt, UnixSeconds now) const;

 private:
  explicit TokenKey(crypto::EvpPkeyPtr key);
  static Result<TokenKey> from_key(crypto::EvpPkeyPtr key);
  crypto::EvpPkeyPtr key_;
  std::string x_, y_, kid_;
};

}  // namespace confpod::kbs
