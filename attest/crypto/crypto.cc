#include "attest/crypto/crypto.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace confpod::crypto {

namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct AsnObjectFree {
  void operator()(ASN1_OBJECT* p) const { ASN1_OBJECT_free(p); }
};
struct AsnTimeFree {
  void operator()(ASN1_TIME* p) const { ASN1_TIME_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using AsnObjectPtr = std::unique_ptr<ASN1_OBJECT, AsnObjectFree>;
using AsnTimePtr = std::unique_ptr<ASN1_TIME, AsnTimeFree>;

// The most recent OpenSSL error as text, and the queue cleared so it cannot leak into
// the next caller's diagnosis.
std::string openssl_error() {
  unsigned long code = ERR_peek_last_error();
  std::string text;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text = buf;
  }
  ERR_clear_error();
  return text.empty() ? "unknown OpenSSL error" : text;
}

const EVP_MD* md_for(Hash hash) {
  switch (hash) {
    case Hash::kSha256:
      return EVP_sha256();
    case Hash::kSha384:
      return EVP_sha384();
    case Hash::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

bool looks_like_pem(ByteView data) {
  static constexpr std::string_view kBegin = "-----BEGIN";
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  return text.find(kBegin) != std::string_view::npos;
}

BioPtr memory_bio(ByteView data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// An unreadable time yields `fallback`, which callers choose so that validity checks fail
// closed (a notBefore in the far future, a notAfter in the far past).
UnixSeconds asn1_to_unix(const ASN1_TIME* t, UnixSeconds fallback) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return fallback;
  return unix_from_utc(static_cast<std::int64_t>(tm.tm_year) + 1900,
                       static_cast<unsigned>(tm.tm_mon) + 1, static_cast<unsigned>(tm.tm_mday),
                       tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string name_to_string(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Bytes der_of(X509* cert) {
  int n = i2d_X509(cert, nullptr);
  if (n <= 0) return {};
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  i2d_X509(cert, &p);
  return out;
}

Bytes spki_der_of(X509* cert) {
  X509_PUBKEY* pub = X509_get_X509_PUBKEY(cert);
  int n = i2d_X509_PUBKEY(pub, nullptr);
  if (n <= 0) return {};
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  i2d_X509_PUBKEY(pub, &p);
  return out;
}

}  // namespace

Bytes digest(Hash hash, ByteView data) {
  const EVP_MD* md = md_for(hash);
  Bytes out(static_cast<std::size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  out.resize(len);
  return out;
}

Result<X509Ptr> parse_certificate(ByteView data) {
  if (data.empty()) return make_error("crypto.certificate", "empty certificate");
  X509Ptr cert;
  if (looks_like_pem(data)) {
    BioPtr bio = memory_bio(data);
    cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const unsigned char* p = data.data();
    cert.reset(d2i_X509(nullptr, &p, static_cast<long>(data.size())));
  }
  if (!cert)
    return make_error("crypto.certificate", "cannot parse certificate: " + openssl_error());
  return cert;
}

Result<std::vector<X509Ptr>> parse_pem_certificates(std::string_view pem) {
  BioPtr bio = memory_bio(as_bytes(pem));
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  // Reaching the end of the bundle leaves a "no start line" error on the queue.
  ERR_clear_error();
  if (certs.empty()) return make_error("crypto.certificate", "no PEM certificate found");
  return certs;
}

X509Ptr clone(X509* cert) {
  X509_up_ref(cert);
  return X509Ptr(cert);
}

std::string subject_name(X509* cert) { return name_to_string(X509_get_subject_name(cert)); }
std::string issuer_name(X509* cert) { return name_to_string(X509_get_issuer_name(cert)); }

std::string serial_hex(X509* cert) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  std::string out(hex ? hex : "");
  OPENSSL_free(hex);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool same_certificate(X509* a, X509* b) { return der_of(a) == der_of(b); }
bool same_public_key(X509* a, X509* b) { return spki_der_of(a) == spki_der_of(b); }

Status verify_certificate_signature(X509* cert, X509* issuer) {
  EvpPkeyPtr key(X509_get_pubkey(issuer));
  if (!key)
    return make_error("crypto.cert_signature",
                      "issuer '" + subject_name(issuer) + "' has no usable public key");
  if (X509_verify(cert, key.get()) != 1)
    return make_error("crypto.cert_signature", "certificate '" + subject_name(cert) +
                                                   "' is not signed by '" + subject_name(issuer) +
                                                   "': " + openssl_error());
  return ok_status();
}

constexpr UnixSeconds kNever = std::numeric_limits<UnixSeconds>::max();
constexpr UnixSeconds kAlways = std::numeric_limits<UnixSeconds>::min();

UnixSeconds not_before(X509* cert) { return asn1_to_unix(X509_get0_notBefore(cert), kNever); }
UnixSeconds not_after(X509* cert) { return asn1_to_unix(X509_get0_notAfter(cert), kAlways); }

Status check_validity(X509* cert, UnixSeconds at) {
  UnixSeconds from = not_before(cert), until = not_after(cert);
  // An unreadable bound is a sentinel that fails closed; say so rather than print its value.
  auto bound = [](UnixSeconds t) {
    return t == kNever || t == kAlways ? std::string("(unreadable time)") : format_rfc3339(t);
  };
  if (at < from || at > until)
    return make_error("crypto.cert_validity", "certificate '" + subject_name(cert) + "' is valid " +
                                                  bound(from) + " .. " + bound(until) +
                                                  ", not at " + format_rfc3339(at));
  return ok_status();
}

Result<Bytes> extension_value(X509* cert, std::string_view oid) {
  AsnObjectPtr obj(OBJ_txt2obj(std::string(oid).c_str(), /*no_name=*/1));
  if (!obj) {
    ERR_clear_error();
    return make_error("crypto.extension_missing", "invalid OID " + std::string(oid));
  }
  int index = X509_get_ext_by_OBJ(cert, obj.get(), -1);
  if (index < 0)
    return make_error("crypto.extension_missing", "certificate '" + subject_name(cert) +
                                                      "' has no extension " + std::string(oid));
  X509_EXTENSION* ext = X509_get_ext(cert, index);
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  const unsigned char* p = ASN1_STRING_get0_data(value);
  return Bytes(p, p + ASN1_STRING_length(value));
}

EvpPkeyPtr public_key(X509* cert) { return EvpPkeyPtr(X509_get_pubkey(cert)); }

Result<X509CrlPtr> parse_crl(ByteView data) {
  if (data.empty()) return make_error("crypto.crl", "empty CRL");
  X509CrlPtr crl;
  if (looks_like_pem(data)) {
    BioPtr bio = memory_bio(data);
    crl.reset(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const unsigned char* p = data.data();
    crl.reset(d2i_X509_CRL(nullptr, &p, static_cast<long>(data.size())));
  }
  if (!crl) return make_error("crypto.crl", "cannot parse CRL: " + openssl_error());
  return crl;
}

Status verify_crl_signature(X509_CRL* crl, X509* issuer) {
  EvpPkeyPtr key(X509_get_pubkey(issuer));
  if (!key || X509_CRL_verify(crl, key.get()) != 1)
    return make_error("crypto.crl_signature", "CRL issued by '" + crl_issuer_name(crl) +
                                                  "' is not signed by '" + subject_name(issuer) +
                                                  "': " + openssl_error());
  return ok_status();
}

UnixSeconds crl_next_update(X509_CRL* crl) {
  return asn1_to_unix(X509_CRL_get0_nextUpdate(crl), kAlways);
}

Status check_crl_validity(X509_CRL* crl, UnixSeconds at) {
  UnixSeconds from = asn1_to_unix(X509_CRL_get0_lastUpdate(crl), kNever);
  UnixSeconds until = crl_next_update(crl);
  if (at < from || at > until)
    return make_error("crypto.crl_validity",
                      "CRL of '" + crl_issuer_name(crl) + "' is valid " + format_rfc3339(from) +
                          " .. " + format_rfc3339(until) + ", not at " + format_rfc3339(at));
  return ok_status();
}

std::string crl_issuer_name(X509_CRL* crl) { return name_to_string(X509_CRL_get_issuer(crl)); }

bool is_revoked(X509_CRL* crl, X509* cert) {
  X509_REVOKED* entry = nullptr;
  return X509_CRL_get0_by_cert(crl, &entry, cert) == 1;
}

namespace {

// The domain parameters of P-256 or P-384, built once per process (nullptr when OpenSSL could
// not: a broken installation, reported by the callers). OpenSSL 3 rebuilds a curve's group
// from its name for every key made by name (a quarter of an import's time); copying it from
// here does not. Only ever used read-only, as the source of EVP_PKEY_copy_parameters and as
// a keygen template, which OpenSSL allows from many threads at once: a constant, not state.
// Deliberately never freed, so any thread may use it until the process ends.
const EVP_PKEY* curve_parameters(int curve_nid) {
  auto build = [](const char* group) -> const EVP_PKEY* {
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
        EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* params = nullptr;
    if (!ctx || EVP_PKEY_paramgen_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_group_name(ctx.get(), group) != 1 ||
        EVP_PKEY_paramgen(ctx.get(), &params) != 1) {
      ERR_clear_error();  // not left for an unrelated later failure to report
      return nullptr;
    }
    return params;
  };
  if (curve_nid == NID_X9_62_prime256v1) {
    static const EVP_PKEY* const p256 = build("P-256");
    return p256;
  }
  static const EVP_PKEY* const p384 = build("P-384");
  return p384;
}

bool supported_curve(int curve_nid) {
  return curve_nid == NID_X9_62_prime256v1 || curve_nid == NID_secp384r1;
}

}  // namespace

Result<EvpPkeyPtr> ec_generate(int curve_nid) {
  if (!supported_curve(curve_nid)) return make_error("crypto.keygen", "unsupported curve");
  const EVP_PKEY* params = curve_parameters(curve_nid);
  if (params == nullptr)
    return make_error("crypto.keygen", "OpenSSL cannot build the curve's parameters");
  // OpenSSL only takes a reference to the template (a const-less API).
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(
      EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(params), nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return make_error("crypto.keygen", openssl_error());
  return EvpPkeyPtr(raw);
}

Result<EvpPkeyPtr> ec_public_key_from_xy(int curve_nid, ByteView xy) {
  if (!supported_curve(curve_nid)) return make_error("crypto.public_key", "unsupported curve");
  const std::size_t field = curve_nid == NID_secp384r1 ? 48 : 32;
  if (xy.size() != 2 * field)
    return make_error("crypto.public_key", "raw EC public key must be " +
                                               std::to_string(2 * field) + " bytes, got " +
                                               std::to_string(xy.size()));
  const EVP_PKEY* params = curve_parameters(curve_nid);
  if (params == nullptr)
    return make_error("crypto.public_key", "OpenSSL cannot build the curve's parameters");
  Bytes point(1 + xy.size());
  point[0] = 0x04;  // uncompressed SEC1 point
  std::copy(xy.begin(), xy.end(), point.begin() + 1);

  EvpPkeyPtr key(EVP_PKEY_new());
  if (!key || EVP_PKEY_copy_parameters(key.get(), params) != 1)
    return make_error("crypto.public_key", "cannot set the curve: " + openssl_error());
  // Decoding already refuses coordinates out of range and points off the curve.
  if (EVP_PKEY_set1_encoded_public_key(key.get(), point.data(), point.size()) != 1)
    return make_error("crypto.public_key", "not a point on the curve: " + openssl_error());
  // Checked again here, by name, so a bogus key fails at import whatever the OpenSSL version's
  // decoder does.
  CONFPOD_TRY(check_ec_public_key(key.get()));
  return key;
}

Status check_ec_public_key(EVP_PKEY* key) {
  // The quick check (coordinates in range, on the curve, not the point at infinity) is the
  // whole check on P-256 and P-384: their cofactor is 1, so every point on the curve is in the
  // prime-order group, and the full check's extra "order x point = infinity" (a scalar
  // multiplication, two thirds of an import's time) proves nothing more.
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!check || EVP_PKEY_public_check_quick(check.get()) != 1)
    return make_error("crypto.public_key", "not a point on the curve: " + openssl_error());
  return ok_status();
}

Status verify_ecdsa(EVP_PKEY* key, Hash hash, ByteView message, ByteView r_be, ByteView s_be) {
  EcdsaSigPtr sig(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(r_be.data(), static_cast<int>(r_be.size()), nullptr));
  BnPtr s(BN_bin2bn(s_be.data(), static_cast<int>(s_be.size()), nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
    return make_error("crypto.signature", "cannot build ECDSA signature: " + openssl_error());
  r.release();  // owned by sig now
  s.release();
  int der_len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (der_len <= 0) return make_error("crypto.signature", "cannot encode ECDSA signature");
  Bytes der(static_cast<std::size_t>(der_len));
  unsigned char* p = der.data();
  i2d_ECDSA_SIG(sig.get(), &p);

  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md_for(hash), nullptr, key) != 1)
    return make_error("crypto.signature", "cannot set up verification: " + openssl_error());
  int rc = EVP_DigestVerify(ctx.get(), der.data(), der.size(), message.data(), message.size());
  if (rc != 1) {
    ERR_clear_error();
    return make_error("crypto.signature", "ECDSA signature does not verify");
  }
  return ok_status();
}

Status verify_ecdsa_concat(EVP_PKEY* key, Hash hash, ByteView message, ByteView r_concat_s) {
  if (r_concat_s.empty() || r_concat_s.size() % 2 != 0)
    return make_error("crypto.signature",
                      "r||s signature has odd length " + std::to_string(r_concat_s.size()));
  std::size_t half = r_concat_s.size() / 2;
  return verify_ecdsa(key, hash, message, r_concat_s.first(half), r_concat_s.subspan(half));
}

Bytes reversed(ByteView bytes) { return Bytes(bytes.rbegin(), bytes.rend()); }

}  // namespace confpod::crypto
