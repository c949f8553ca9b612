#include "attest/kbs/jose.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <array>
#include <memory>

namespace confpod::kbs {
namespace {

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// Wipes a buffer holding key material when it goes out of scope.
struct Secret {
  Bytes bytes;
  explicit Secret(std::size_t n) : bytes(n) {}
  ~Secret() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
};

std::string ssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Error jwe_error(const std::string& what) { return make_error("kbs.jwe", what); }

Status random_bytes(Bytes& out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1)
    return jwe_error("RAND_bytes failed: " + ssl_error());
  return ok_status();
}

Result<Bytes> bn_bytes(const BIGNUM* bn, std::size_t width) {
  Bytes out(width);
  if (BN_bn2binpad(bn, out.data(), static_cast<int>(width)) < 0)
    return make_error("kbs.jwe", "number does not fit " + std::to_string(width) + " bytes");
  return out;
}

// x and y (32 bytes each) of a P-256 key.
Result<std::pair<Bytes, Bytes>> p256_xy(EVP_PKEY* key) {
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1) {
    BN_free(x);
    BN_free(y);
    return make_error("kbs.jwe", "cannot read EC public key: " + ssl_error());
  }
  BnPtr xp(x), yp(y);
  CONFPOD_ASSIGN_OR_RETURN(Bytes xb, bn_bytes(x, 32));
  CONFPOD_ASSIGN_OR_RETURN(Bytes yb, bn_bytes(y, 32));
  return std::make_pair(std::move(xb), std::move(yb));
}

Result<crypto::EvpPkeyPtr> generate_p256() {
  auto key = crypto::ec_generate(NID_X9_62_prime256v1);
  if (!key.ok())
    return make_error("kbs.jwe", "cannot generate a P-256 key: " + key.error().message);
  return key;
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
      1)
    return false;
  return std::string_view(group, len) == "prime256v1" || std::string_view(group, len) == "P-256";
}

Result<crypto::EvpPkeyPtr> rsa_public_key(ByteView n, ByteView e) {
  BnPtr bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  BnPtr bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()))
    return make_error("kbs.tee_pubkey", "cannot build RSA key: " + ssl_error());
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return make_error("kbs.tee_pubkey", "cannot build RSA key: " + ssl_error());
  return crypto::EvpPkeyPtr(raw);
}

Result<std::string> string_member(const nlohmann::json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string())
    return make_error("kbs.tee_pubkey", std::string("member '") + name + "' must be a string");
  return it->get<std::string>();
}

// AES-256-GCM with a 12-byte IV and a 16-byte tag.
Status aes256gcm_encrypt(ByteView key, ByteView iv, ByteView aad, ByteView plaintext,
                         Bytes& ciphertext, Bytes& tag) {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  ciphertext.assign(plaintext.size(), 0);
  tag.assign(16, 0);
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)
    return jwe_error("AES-GCM init failed: " + ssl_error());
  if (!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), ciphertext.data(), &len, plaintext.data(),
                                              static_cast<int>(plaintext.size())) != 1)
    return jwe_error("AES-GCM encrypt failed: " + ssl_error());
  int fin = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), ciphertext.data() + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag.data()) != 1)
    return jwe_error("AES-GCM finish failed: " + ssl_error());
  return ok_status();
}

Result<Bytes> rsa_oaep256_wrap(EVP_PKEY* key, ByteView cek) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1)
    return jwe_error("RSA-OAEP init failed: " + ssl_error());
  std::size_t out_len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &out_len, cek.data(), cek.size()) != 1)
    return jwe_error("RSA-OAEP size failed: " + ssl_error());
  Bytes out(out_len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &out_len, cek.data(), cek.size()) != 1)
    return jwe_error("RSA-OAEP encrypt failed: " + ssl_error());
  out.resize(out_len);
  return out;
}

// ECDH-ES+A256KW to a P-256 key: returns the wrapped CEK and fills the ephemeral x, y.
Result<Bytes> ecdh_es_a256kw_wrap(EVP_PKEY* peer, ByteView cek, Bytes& epk_x, Bytes& epk_y) {
  CONFPOD_ASSIGN_OR_RETURN(auto eph, generate_p256());
  CONFPOD_ASSIGN_OR_RETURN(Bytes derived, ecdh_es_a256kw_kek(eph.get(), peer));
  Secret kek(0);
  kek.bytes = std::move(derived);

  // AES key wrap (RFC 3394) of the 32-byte CEK: 40 bytes.
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> kw(EVP_CIPHER_CTX_new());
  Bytes wrapped(cek.size() + 8 + 16);
  int len = 0, fin = 0;
  if (!kw) return jwe_error("AES-KW context");
  EVP_CIPHER_CTX_set_flags(kw.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_EncryptInit_ex(kw.get(), EVP_aes_256_wrap(), nullptr, kek.bytes.data(), nullptr) != 1 ||
      EVP_EncryptUpdate(kw.get(), wrapped.data(), &len, cek.data(), static_cast<int>(cek.size())) !=
          1 ||
      EVP_EncryptFinal_ex(kw.get(), wrapped.data() + len, &fin) != 1)
    return jwe_error("AES key wrap failed: " + ssl_error());
  wrapped.resize(static_cast<std::size_t>(len + fin));

  CONFPOD_ASSIGN_OR_RETURN(auto xy, p256_xy(eph.get()));
  epk_x = std::move(xy.first);
  epk_y = std::move(xy.second);
  return wrapped;
}

}  // namespace

Result<Bytes> ecdh_es_a256kw_kek(EVP_PKEY* own, EVP_PKEY* peer) {
  // OpenSSL's default peer validation is the full public-key check, a scalar multiplication
  // as dear as the ECDH itself; on P-256 (cofactor 1) crypto::check_ec_public_key is the whole
  // check.
  // Both keys must be P-256 for that to hold (OpenSSL also refuses a peer on other curve
  // parameters than `own`'s).
  if (!is_p256(own) || !is_p256(peer)) return jwe_error("ECDH needs two P-256 keys");
  if (Status checked = crypto::check_ec_public_key(peer); !checked.ok())
    return jwe_error("ECDH peer: " + checked.error().message);
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  std::size_t z_len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer, /*validate_peer=*/0) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &z_len) != 1 || z_len != 32)
    return jwe_error("ECDH failed: " + ssl_error());
  Secret z(z_len);
  if (EVP_PKEY_derive(ctx.get(), z.bytes.data(), &z_len) != 1)
    return jwe_error("ECDH failed: " + ssl_error());

  // Concat KDF (NIST SP 800-56A, RFC 7518 section 4.6.2), one SHA-256 round for 256 bits:
  // counter || Z || len(alg) || alg || len(apu)=0 || len(apv)=0 || keydatalen in bits.
  static constexpr std::string_view kAlg = "ECDH-ES+A256KW";
  Secret info(0);
  auto be32 = [&info](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) info.bytes.push_back(static_cast<std::uint8_t>(v >> s));
  };
  be32(1);
  info.bytes.insert(info.bytes.end(), z.bytes.begin(), z.bytes.end());
  be32(static_cast<std::uint32_t>(kAlg.size()));
  info.bytes.insert(info.bytes.end(), kAlg.begin(), kAlg.end());
  be32(0);
  be32(0);
  be32(256);
  return crypto::sha256(info.bytes);
}

std::string base64url(ByteView bytes) {
  std::string s = to_base64(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

Result<Bytes> from_base64url(std::string_view text) {
  if (text.size() % 4 == 1) return make_error("kbs.base64url", "impossible base64url length");
  std::string s;
  s.reserve(text.size() + 3);
  for (char c : text) {
    if (c == '-')
      s.push_back('+');
    else if (c == '_')
      s.push_back('/');
    else if (c == '+' || c == '/' || c == '=')
      return make_error("kbs.base64url", "not base64url (found '" + std::string(1, c) + "')");
    else
      s.push_back(c);
  }
  while (s.size() % 4 != 0) s.push_back('=');
  auto decoded = from_base64(s);
  if (!decoded.ok()) return make_error("kbs.base64url", decoded.error().message);
  // Reject non-canonical encodings (non-zero trailing bits) so one value has one spelling.
  if (base64url(*decoded) != text) return make_error("kbs.base64url", "non-canonical base64url");
  return std::move(decoded).value();
}

nlohmann::json TeeKey::to_json() const {
  if (kind == Kind::kRsa) return {{"kty", "RSA"}, {"alg", alg}, {"n", n}, {"e", e}};
  return {{"kty", "EC"}, {"crv", crv}, {"alg", alg}, {"x", x}, {"y", y}};
}

Result<TeeKey> parse_tee_key(const nlohmann::json& jwk) {
  if (!jwk.is_object()) return make_error("kbs.tee_pubkey", "tee-pubkey must be a JSON object");
  CONFPOD_ASSIGN_OR_RETURN(std::string kty, string_member(jwk, "kty"));
  CONFPOD_ASSIGN_OR_RETURN(std::string alg, string_member(jwk, "alg"));
  TeeKey key;
  key.alg = alg;
  if (kty == "RSA") {
    key.kind = TeeKey::Kind::kRsa;
    if (alg != "RSA-OAEP-256")
      return make_error("kbs.tee_pubkey.alg",
                        "RSA key algorithm '" + alg.substr(0, 32) +
                            "' is not accepted (only RSA-OAEP-256; RSA1_5 is refused)");
    CONFPOD_ASSIGN_OR_RETURN(key.n, string_member(jwk, "n"));
    CONFPOD_ASSIGN_OR_RETURN(key.e, string_member(jwk, "e"));
    if (key.n.size() > 1400 || key.e.size() > 12)
      return make_error("kbs.tee_pubkey", "RSA modulus or exponent too long");
    auto n = from_base64url(key.n);
    auto e = from_base64url(key.e);
    if (!n.ok() || !e.ok()) return make_error("kbs.tee_pubkey", "RSA n/e is not base64url");
    if (n->empty() || (*n)[0] == 0 || e->empty() || (*e)[0] == 0)
      return make_error("kbs.tee_pubkey", "RSA n/e must be minimal big-endian integers");
    std::size_t bits = n->size() * 8;
    if (bits < 2048 || bits > 8192)
      return make_error("kbs.tee_pubkey",
                        "RSA modulus must be 2048..8192 bits, got " + std::to_string(bits));
    if ((e->back() & 1) == 0 || (e->size() == 1 && (*e)[0] < 3))
      return make_error("kbs.tee_pubkey", "RSA exponent must be odd and at least 3");
    CONFPOD_ASSIGN_OR_RETURN(key.key, rsa_public_key(*n, *e));
    return key;
  }
  if (kty == "EC") {
    key.kind = TeeKey::Kind::kEc;
    CONFPOD_ASSIGN_OR_RETURN(key.crv, string_member(jwk, "crv"));
    if (alg != "ECDH-ES+A256KW")
      return make_error("kbs.tee_pubkey.alg",
                        "EC key algorithm '" + alg.substr(0, 32) + "' is not accepted");
    if (key.crv != "P-256")
      return make_error("kbs.tee_pubkey.alg",
                        "EC curve '" + key.crv.substr(0, 16) + "' is not accepted (P-256 only)");
    CONFPOD_ASSIGN_OR_RETURN(key.x, string_member(jwk, "x"));
    CONFPOD_ASSIGN_OR_RETURN(key.y, string_member(jwk, "y"));
    if (key.x.size() > 64 || key.y.size() > 64)
      return make_error("kbs.tee_pubkey", "EC coordinates too long");
    auto x = from_base64url(key.x);
    auto y = from_base64url(key.y);
    if (!x.ok() || !y.ok() || x->size() != 32 || y->size() != 32)
      return make_error("kbs.tee_pubkey", "EC x/y must be 32 bytes of base64url");
    Bytes xy = *x;
    xy.insert(xy.end(), y->begin(), y->end());
    auto pk = crypto::ec_public_key_from_xy(NID_X9_62_prime256v1, xy);
    if (!pk.ok()) return make_error("kbs.tee_pubkey", pk.error().message);
    key.key = std::move(pk).value();
    return key;
  }
  return make_error("kbs.tee_pubkey.alg", "key type '" + kty.substr(0, 16) + "' is not accepted");
}

Result<std::string> jwe_encrypt(const TeeKey& key, ByteView plaintext) {
  if (!key.key) return jwe_error("no TEE key");
  Secret cek(32);
  Bytes iv(12);
  CONFPOD_TRY(random_bytes(cek.bytes));
  CONFPOD_TRY(random_bytes(iv));

  // The protected header exactly as Trustee serializes it: alg, enc, then epk (members sorted).
  std::string header;
  Bytes encrypted_key;
  if (key.kind == TeeKey::Kind::kRsa) {
    CONFPOD_ASSIGN_OR_RETURN(encrypted_key, rsa_oaep256_wrap(key.key.get(), cek.bytes));
    header = R"({"alg":"RSA-OAEP-256","enc":"A256GCM"})";
  } else {
    Bytes ex, ey;
    CONFPOD_ASSIGN_OR_RETURN(encrypted_key, ecdh_es_a256kw_wrap(key.key.get(), cek.bytes, ex, ey));
    header = R"({"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":")" +
             base64url(ex) + R"(","y":")" + base64url(ey) + R"("}})";
  }
  std::string protected_b64 = base64url(as_bytes(header));
  Bytes ciphertext, tag;
  CONFPOD_TRY(
      aes256gcm_encrypt(cek.bytes, iv, as_bytes(protected_b64), plaintext, ciphertext, tag));
  nlohmann::json out = {{"protected", protected_b64},
                        {"encrypted_key", base64url(encrypted_key)},
                        {"iv", base64url(iv)},
                        {"ciphertext", base64url(ciphertext)},
                        {"tag", base64url(tag)}};
  return out.dump();
}

// TokenKey ----------------------------------------------------------------------------------

TokenKey::TokenKey(crypto::EvpPkeyPtr key) : key_(std::move(key)) {}

Result<TokenKey> TokenKey::from_key(crypto::EvpPkeyPtr key) {
  TokenKey out(std::move(key));
  auto xy = p256_xy(out.key_.get());
  if (!xy.ok()) return make_error("kbs.token_key", xy.error().message);
  out.x_ = base64url(xy->first);
  out.y_ = base64url(xy->second);
  // RFC 7638 thumbprint: the required members in lexicographic order, no whitespace.
  std::string thumb = R"({"crv":"P-256","kty":"EC","x":")" + out.x_ + R"(","y":")" + out.y_ + "\"}";
  out.kid_ = base64url(crypto::sha256(as_bytes(thumb)));
  return out;
}

Result<TokenKey> TokenKey::generate() {
  auto k = generate_p256();
  if (!k.ok()) return make_error("kbs.token_key", k.error().message);
  return from_key(std::move(k).value());
}

Result<TokenKey> TokenKey::from_pem(std::string_view pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  // A passphrase callback that supplies none: OpenSSL's default would prompt on the terminal.
  auto no_passphrase = [](char*, int, int, void*) -> int { return 0; };
  EVP_PKEY* raw =
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr;
  if (!raw) return make_error("kbs.token_key", "not a PEM private key: " + ssl_error());
  crypto::EvpPkeyPtr key(raw);
  if (!is_p256(key.get())) return make_error("kbs.token_key", "token key must be EC P-256");
  return from_key(std::move(key));
}

std::string TokenKey::private_pem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return {};
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

nlohmann::json TokenKey::public_jwk() const {
  return {{"kty", "EC"},    {"crv", "P-256"}, {"x", x_},    {"y", y_},
          {"alg", "ES256"}, {"use", "sig"},   {"kid", kid_}};
}

nlohmann::json TokenKey::jwks() const { return {{"keys", nlohmann::json::array({public_jwk()})}}; }

Result<std::string> TokenKey::sign_jwt(const nlohmann::json& claims) const {
  nlohmann::json header = {{"alg", "ES256"}, {"typ", "JWT"}, {"kid", kid_}};
  std::string input = base64url(as_bytes(header.dump())) + "." + base64url(as_bytes(claims.dump()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> md(EVP_MD_CTX_new());
  std::size_t der_len = 0;
  if (!md || EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &der_len, as_bytes(input).data(), input.size()) != 1)
    return make_error("kbs.token.sign", "ES256 sign init failed: " + ssl_error());
  Bytes der(der_len);
  if (EVP_DigestSign(md.get(), der.data(), &der_len, as_bytes(input).data(), input.size()) != 1)
    return make_error("kbs.token.sign", "ES256 sign failed: " + ssl_error());
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return make_error("kbs.token.sign", "bad DER signature: " + ssl_error());
  CONFPOD_ASSIGN_OR_RETURN(Bytes r, bn_bytes(ECDSA_SIG_get0_r(sig.get()), 32));
  CONFPOD_ASSIGN_OR_RETURN(Bytes s, bn_bytes(ECDSA_SIG_get0_s(sig.get()), 32));
  r.insert(r.end(), s.begin(), s.end());
  return input + "." + base64url(r);
}

Result<nlohmann::json> TokenKey::verify_jwt(std::string_view jwt, UnixSeconds now) const {
  if (jwt.size() > 64 * 1024) return make_error("kbs.token.format", "token too long");
  auto d1 = jwt.find('.');
  auto d2 = d1 == std::string_view::npos ? d1 : jwt.find('.', d1 + 1);
  if (d2 == std::string_view::npos || jwt.find('.', d2 + 1) != std::string_view::npos)
    return make_error("kbs.token.format", "not a compact JWS (three parts)");
  auto header_raw = from_base64url(jwt.substr(0, d1));
  auto payload_raw = from_base64url(jwt.substr(d1 + 1, d2 - d1 - 1));
  auto sig = from_base64url(jwt.substr(d2 + 1));
  if (!header_raw.ok() || !payload_raw.ok() || !sig.ok())
    return make_error("kbs.token.format", "token part is not base64url");
  auto header = nlohmann::json::parse(header_raw->begin(), header_raw->end(), nullptr, false);
  auto alg = header.is_object() ? header.find("alg") : header.end();
  if (!header.is_object() || alg == header.end() || !alg->is_string() || *alg != "ES256")
    return make_error("kbs.token.format", "token header must name alg ES256");
  if (sig->size() != 64)
    return make_error("kbs.token.signature", "ES256 signature is not 64 bytes");
  std::string_view input = jwt.substr(0, d2);
  auto verified =
      crypto::verify_ecdsa_concat(key_.get(), crypto::Hash::kSha256, as_bytes(input), *sig);
  if (!verified.ok()) return make_error("kbs.token.signature", "token signature does not verify");
  auto claims = nlohmann::json::parse(payload_raw->begin(), payload_raw->end(), nullptr, false);
  if (!claims.is_object()) return make_error("kbs.token.format", "token claims are not an object");
  auto exp = claims.find("exp");
  auto iat = claims.find("iat");
  if (exp == claims.end() || !exp->is_number_integer() || iat == claims.end() ||
      !iat->is_number_integer())
    return make_error("kbs.token.format", "token lacks integer iat/exp");
  if (now >= exp->get<std::int64_t>() || now + 60 < iat->get<std::int64_t>())
    return make_error("kbs.token.expired", "token is outside its validity");
  return claims;
}

}  // namespace confpod::kbs
