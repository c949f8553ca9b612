#include "guest/kbs_client/jwe.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <memory>

#include "attest/kbs/jose.h"
#include "attest/kbs/kbs.h"

namespace confpod::guest {
namespace {

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// A buffer of key material, wiped when it goes out of scope.
struct Secret {
  Bytes bytes;
  explicit Secret(std::size_t n = 0) : bytes(n) {}
  ~Secret() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
};

constexpr std::size_t kCekSize = 32;  // A256GCM
constexpr std::size_t kIvSize = 12;
constexpr std::size_t kTagSize = 16;

std::string ssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Error jwe_error(const std::string& what) { return make_error("kbs_client.jwe", what); }

Result<std::string> bn_b64url(EVP_PKEY* key, const char* name, std::size_t width) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1)
    return make_error("kbs_client.key", std::string("cannot read ") + name + ": " + ssl_error());
  BnPtr bn(raw);
  std::size_t n = width ? width : static_cast<std::size_t>(BN_num_bytes(bn.get()));
  Bytes out(n);
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(n)) < 0)
    return make_error("kbs_client.key", std::string(name) + " does not fit");
  return kbs::base64url(out);
}

Result<std::string> string_member(const nlohmann::json& obj, const char* name, std::size_t max) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string())
    return jwe_error(std::string("'") + name + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) return jwe_error(std::string("'") + name + "' is too long");
  return s;
}

Result<Bytes> b64url_member(const nlohmann::json& obj, const char* name, std::size_t max) {
  CONFPOD_ASSIGN_OR_RETURN(std::string text, string_member(obj, name, max));
  auto b = kbs::from_base64url(text);
  if (!b.ok()) return jwe_error(std::string("'") + name + "': " + b.error().message);
  return std::move(b).value();
}

Status rsa_oaep256_unwrap(EVP_PKEY* key, ByteView wrapped, Secret& cek) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  std::size_t len = 0;
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &len, wrapped.data(), wrapped.size()) != 1)
    return jwe_error("RSA-OAEP-256 setup failed: " + ssl_error());
  cek.bytes.resize(len);
  if (EVP_PKEY_decrypt(ctx.get(), cek.bytes.data(), &len, wrapped.data(), wrapped.size()) != 1) {
    ERR_clear_error();
    return jwe_error("RSA-OAEP-256 cannot unwrap the content key");
  }
  cek.bytes.resize(len);
  return ok_status();
}

Status ecdh_es_a256kw_unwrap(EVP_PKEY* key, const nlohmann::json& epk, ByteView wrapped,
                             Secret& cek) {
  if (!epk.is_object()) return jwe_error("'epk' must be an object");
  CONFPOD_ASSIGN_OR_RETURN(std::string kty, string_member(epk, "kty", 8));
  CONFPOD_ASSIGN_OR_RETURN(std::string crv, string_member(epk, "crv", 16));
  if (kty != "EC" || crv != "P-256") return jwe_error("'epk' must be an EC P-256 key");
  CONFPOD_ASSIGN_OR_RETURN(Bytes x, b64url_member(epk, "x", 64));
  CONFPOD_ASSIGN_OR_RETURN(Bytes y, b64url_member(epk, "y", 64));
  if (x.size() != 32 || y.size() != 32) return jwe_error("'epk' coordinates must be 32 bytes");
  x.insert(x.end(), y.begin(), y.end());
  // Builds the point through OpenSSL's checks: a point off the curve is refused.
  auto peer = crypto::ec_public_key_from_xy(NID_X9_62_prime256v1, x);
  if (!peer.ok()) return jwe_error("'epk': " + peer.error().message);

  auto derived = kbs::ecdh_es_a256kw_kek(key, peer->get());
  if (!derived.ok()) return jwe_error(derived.error().message);
  Secret kek;
  kek.bytes = std::move(*derived);

  // AES key unwrap (RFC 3394): 40 bytes in, the 32-byte CEK out; the integrity check fails
  // for a wrong KEK.
  if (wrapped.size() != kCekSize + 8) return jwe_error("wrapped content key must be 40 bytes");
  CipherCtxPtr kw(EVP_CIPHER_CTX_new());
  if (!kw) return jwe_error("AES key wrap context");
  EVP_CIPHER_CTX_set_flags(kw.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  cek.bytes.resize(wrapped.size() + 16);
  int len = 0, fin = 0;
  if (EVP_DecryptInit_ex(kw.get(), EVP_aes_256_wrap(), nullptr, kek.bytes.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(kw.get(), cek.bytes.data(), &len, wrapped.data(),
                        static_cast<int>(wrapped.size())) != 1 ||
      EVP_DecryptFinal_ex(kw.get(), cek.bytes.data() + len, &fin) != 1) {
    ERR_clear_error();
    return jwe_error("AES key unwrap failed (not encrypted to this key)");
  }
  cek.bytes.resize(static_cast<std::size_t>(len + fin));
  return ok_status();
}

Result<Bytes> aes256gcm_decrypt(ByteView key, ByteView iv, ByteView aad, ByteView ciphertext,
                                ByteView tag) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(ciphertext.size() + 16);
  int len = 0, fin = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, ciphertext.data(),
                        static_cast<int>(ciphertext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()),
                          const_cast<std::uint8_t*>(tag.data())) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return jwe_error("AES-GCM setup failed: " + ssl_error());
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &fin) != 1) {
    // Nothing of an unauthenticated plaintext is kept.
    OPENSSL_cleanse(out.data(), out.size());
    ERR_clear_error();
    return jwe_error("A256GCM authentication failed (ciphertext, tag, IV or header altered)");
  }
  out.resize(static_cast<std::size_t>(len + fin));
  return out;
}

}  // namespace

Result<TeeKeyPair> generate_tee_key(bool rsa) {
  TeeKeyPair p;
  if (rsa) {
    p.key.reset(EVP_RSA_gen(2048));
    if (!p.key) return make_error("kbs_client.key", "cannot generate an RSA key: " + ssl_error());
    CONFPOD_ASSIGN_OR_RETURN(std::string n, bn_b64url(p.key.get(), OSSL_PKEY_PARAM_RSA_N, 0));
    CONFPOD_ASSIGN_OR_RETURN(std::string e, bn_b64url(p.key.get(), OSSL_PKEY_PARAM_RSA_E, 0));
    p.jwk = {{"kty", "RSA"}, {"alg", "RSA-OAEP-256"}, {"n", n}, {"e", e}};
  } else {
    auto key = crypto::ec_generate(NID_X9_62_prime256v1);
    if (!key.ok())
      return make_error("kbs_client.key", "cannot generate a P-256 key: " + key.error().message);
    p.key = std::move(key).value();
    CONFPOD_ASSIGN_OR_RETURN(std::string x, bn_b64url(p.key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32));
    CONFPOD_ASSIGN_OR_RETURN(std::string y, bn_b64url(p.key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32));
    p.jwk = {{"kty", "EC"}, {"crv", "P-256"}, {"alg", "ECDH-ES+A256KW"}, {"x", x}, {"y", y}};
  }
  return p;
}

Result<Bytes> decrypt_resource_jwe(std::string_view jwe, EVP_PKEY* key) {
  if (!key) return jwe_error("no key");
  auto parsed = kbs::parse_bounded_json(jwe, kMaxJweSize);
  if (!parsed.ok()) return jwe_error("not a JWE: " + parsed.error().describe());
  const auto& obj = *parsed;
  if (!obj.is_object()) return jwe_error("not a JWE: not a JSON object");
  for (const char* m : {"aad", "unprotected", "header"})
    if (obj.contains(m)) return jwe_error(std::string("unsupported JWE member '") + m + "'");

  CONFPOD_ASSIGN_OR_RETURN(std::string protected_b64, string_member(obj, "protected", 8192));
  auto header_bytes = kbs::from_base64url(protected_b64);
  if (!header_bytes.ok()) return jwe_error("'protected': " + header_bytes.error().message);
  auto header = kbs::parse_bounded_json(
      std::string_view(reinterpret_cast<const char*>(header_bytes->data()), header_bytes->size()),
      8192);
  if (!header.ok() || !header->is_object()) return jwe_error("'protected' is not a JSON object");
  for (const char* m : {"zip", "crit"})
    if (header->contains(m)) return jwe_error(std::string("unsupported header '") + m + "'");
  CONFPOD_ASSIGN_OR_RETURN(std::string alg, string_member(*header, "alg", 64));
  CONFPOD_ASSIGN_OR_RETURN(std::string enc, string_member(*header, "enc", 64));
  if (enc != "A256GCM") return jwe_error("enc '" + enc + "' is not A256GCM");

  CONFPOD_ASSIGN_OR_RETURN(Bytes encrypted_key, b64url_member(obj, "encrypted_key", 4096));
  CONFPOD_ASSIGN_OR_RETURN(Bytes iv, b64url_member(obj, "iv", 64));
  CONFPOD_ASSIGN_OR_RETURN(Bytes ciphertext, b64url_member(obj, "ciphertext", kMaxJweSize));
  CONFPOD_ASSIGN_OR_RETURN(Bytes tag, b64url_member(obj, "tag", 64));
  if (iv.size() != kIvSize) return jwe_error("IV must be 12 bytes");
  if (tag.size() != kTagSize) return jwe_error("tag must be 16 bytes");

  // The algorithm must be the one our key was announced with: no downgrade or confusion.
  Secret cek;
  const int type = EVP_PKEY_get_base_id(key);
  if (type == EVP_PKEY_RSA) {
    if (alg != "RSA-OAEP-256") return jwe_error("alg '" + alg + "' for an RSA key");
    CONFPOD_TRY(rsa_oaep256_unwrap(key, encrypted_key, cek));
  } else if (type == EVP_PKEY_EC) {
    if (alg != "ECDH-ES+A256KW") return jwe_error("alg '" + alg + "' for an EC key");
    auto epk = header->find("epk");
    if (epk == header->end()) return jwe_error("ECDH-ES+A256KW header lacks 'epk'");
    CONFPOD_TRY(ecdh_es_a256kw_unwrap(key, *epk, encrypted_key, cek));
  } else {
    return jwe_error("unsupported key type");
  }
  if (cek.bytes.size() != kCekSize) return jwe_error("content key is not 32 bytes");
  return aes256gcm_decrypt(cek.bytes, iv, as_bytes(protected_b64), ciphertext, tag);
}

}  // namespace confpod::guest
