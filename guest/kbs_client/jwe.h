// The guest's half of the KBS resource JWE (docs/kbs.md, "JWE"): the ephemeral TEE key and the
// decryption of the flattened JSON serialization the KBS answers a resource request with.
// Internal to confpod_guest_kbs_client; exposed for its tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/crypto/crypto.h"

namespace confpod::guest {

inline constexpr std::size_t kMaxJweSize = 4u << 20;

struct TeeKeyPair {
  crypto::EvpPkeyPtr key;  // private, never leaves the guest's memory
  nlohmann::json jwk;      // public, as runtime-data.tee-pubkey
};

// A fresh P-256 key for ECDH-ES+A256KW, or an RSA-2048 key for RSA-OAEP-256 (what Trustee's
// client generates). Error "kbs_client.key".
Result<TeeKeyPair> generate_tee_key(bool rsa);

// Decrypts a resource JWE with `key` (the private half of the attested tee-pubkey). The
// protected header's alg must be the key's (RSA-OAEP-256 for RSA, ECDH-ES+A256KW with a P-256
// epk for EC) and enc A256GCM; the AAD is the ASCII of the protected member. Members that
// would change the meaning (aad, unprotected, header, zip, crit) are refused. Error
// "kbs_client.jwe".
Result<Bytes> decrypt_resource_jwe(std::string_view jwe, EVP_PKEY* key);

}  // namespace confpod::guest
