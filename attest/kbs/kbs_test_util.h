// Test helpers: a TEE key pair as the guest would make it, exported as a JWK and as PEM for an
// independent implementation (Python's joserfc) to decrypt with.
#pragma once

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "attest/kbs/jose.h"
#include "attest/snp/report_json.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/roots.h"
#include "attest/tdx/verify.h"
#include "tests/support/fixtures.h"

namespace confpod::kbs::testing {

// The TDX v4 quote fixture's collateral (dcap-qvl), verified against Intel's root at `at`.
inline Result<std::shared_ptr<const tdx::VerifiedCollateral>> verified_tdx_collateral_v4(
    UnixSeconds at) {
  auto collateral = tdx::parse_collateral_json(
      confpod::testing::read_fixture_text("tdx/dcapqvl_collateral_v4.json"));
  if (!collateral.ok()) return collateral.error();
  auto root = tdx::intel_sgx_root_ca();
  CONFPOD_ASSIGN_OR_RETURN(tdx::VerifiedCollateral verified,
                           tdx::verify_collateral(*collateral, root.get(), at));
  return std::make_shared<const tdx::VerifiedCollateral>(std::move(verified));
}

struct TeeKeyPair {
  crypto::EvpPkeyPtr key;
  nlohmann::json jwk;  // public, as runtime-data.tee-pubkey
  std::string private_pem;
};

inline std::string bn_param_b64url(EVP_PKEY* key, const char* name, std::size_t width) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return {};
  std::size_t n = width ? width : static_cast<std::size_t>(BN_num_bytes(bn));
  Bytes out(n);
  BN_bn2binpad(bn, out.data(), static_cast<int>(n));
  BN_free(bn);
  return base64url(out);
}

inline std::string private_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

inline TeeKeyPair make_ec_tee_key() {
  TeeKeyPair p;
  p.key.reset(EVP_EC_gen("P-256"));
  p.jwk = {{"kty", "EC"},
           {"crv", "P-256"},
           {"alg", "ECDH-ES+A256KW"},
           {"x", bn_param_b64url(p.key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)},
           {"y", bn_param_b64url(p.key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)}};
  p.private_pem = private_pem(p.key.get());
  return p;
}

inline TeeKeyPair make_rsa_tee_key() {
  TeeKeyPair p;
  p.key.reset(EVP_RSA_gen(2048));
  p.jwk = {{"kty", "RSA"},
           {"alg", "RSA-OAEP-256"},
           {"n", bn_param_b64url(p.key.get(), OSSL_PKEY_PARAM_RSA_N, 0)},
           {"e", bn_param_b64url(p.key.get(), OSSL_PKEY_PARAM_RSA_E, 0)}};
  p.private_pem = private_pem(p.key.get());
  return p;
}

// A raw SNP report in the `sev` crate's serde form (as Trustee's SNP attester sends it).
inline nlohmann::json sev_report_json(const Bytes& r) { return snp::sev_json_from_raw_report(r); }

}  // namespace confpod::kbs::testing
