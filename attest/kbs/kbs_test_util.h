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

namespace confpod::kbs::testing {

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

// A raw SNP report in the `sev` crate's serde form (as Trustee's SNP attester sends it), read
// straight from the ABI offsets. `turin` selects the TCB layout with an FMC SVN.
inline nlohmann::json sev_report_json(const Bytes& r, bool turin = false) {
  auto le = [&](std::size_t off, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{r[off + i]} << (8 * i);
    return v;
  };
  auto arr = [&](std::size_t off, std::size_t n) {
    return nlohmann::json(Bytes(r.begin() + off, r.begin() + off + n));
  };
  auto tcb = [&](std::size_t off) {
    if (turin)
      return nlohmann::json{{"fmc", r[off]},
                            {"bootloader", r[off + 1]},
                            {"tee", r[off + 2]},
                            {"snp", r[off + 3]},
                            {"microcode", r[off + 7]}};
    return nlohmann::json{{"fmc", nullptr},
                          {"bootloader", r[off]},
                          {"tee", r[off + 1]},
                          {"snp", r[off + 6]},
                          {"microcode", r[off + 7]}};
  };
  auto version = [&](std::size_t off) {
    return nlohmann::json{{"major", r[off + 2]}, {"minor", r[off + 1]}, {"build", r[off]}};
  };
  std::uint64_t v = le(0, 4);
  nlohmann::json j = {
      {"version", v},
      {"guest_svn", le(0x04, 4)},
      {"policy", le(0x08, 8)},
      {"family_id", arr(0x10, 16)},
      {"image_id", arr(0x20, 16)},
      {"vmpl", le(0x30, 4)},
      {"sig_algo", le(0x34, 4)},
      {"current_tcb", tcb(0x38)},
      {"plat_info", le(0x40, 8)},
      {"key_info", le(0x48, 4)},
      {"report_data", arr(0x50, 64)},
      {"measurement", arr(0x90, 48)},
      {"host_data", arr(0xC0, 32)},
      {"id_key_digest", arr(0xE0, 48)},
      {"author_key_digest", arr(0x110, 48)},
      {"report_id", arr(0x140, 32)},
      {"report_id_ma", arr(0x160, 32)},
      {"reported_tcb", tcb(0x180)},
      {"cpuid_fam_id", v >= 3 ? nlohmann::json(r[0x188]) : nlohmann::json()},
      {"cpuid_mod_id", v >= 3 ? nlohmann::json(r[0x189]) : nlohmann::json()},
      {"cpuid_step", v >= 3 ? nlohmann::json(r[0x18A]) : nlohmann::json()},
      {"chip_id", arr(0x1A0, 64)},
      {"committed_tcb", tcb(0x1E0)},
      {"current", version(0x1E8)},
      {"committed", version(0x1EC)},
      {"launch_tcb", tcb(0x1F0)},
      {"launch_mit_vector", v >= 5 ? nlohmann::json(le(0x1F8, 8)) : nlohmann::json()},
      {"current_mit_vector", v >= 5 ? nlohmann::json(le(0x200, 8)) : nlohmann::json()},
      {"signature", {{"r", arr(0x2A0, 72)}, {"s", arr(0x2E8, 72)}}}};
  return j;
}

}  // namespace confpod::kbs::testing
