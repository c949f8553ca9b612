// Thin, RAII-only layer over OpenSSL 3 for what attestation verification needs:
// certificates, CRLs, raw ECDSA signatures as hardware emits them, digests.
// Every OpenSSL handle lives in a unique_ptr with its deleter; nothing here owns state.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/time.h"

namespace confpod::crypto {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509CrlFree {
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509CrlPtr = std::unique_ptr<X509_CRL, X509CrlFree>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

enum class Hash { kSha256, kSha384, kSha512 };

Bytes digest(Hash hash, ByteView data);
inline Bytes sha256(ByteView data) { return digest(Hash::kSha256, data); }
inline Bytes sha384(ByteView data) { return digest(Hash::kSha384, data); }
inline Bytes sha512(ByteView data) { return digest(Hash::kSha512, data); }

// Certificates ------------------------------------------------------------------------------
// Error code "crypto.certificate" for anything unparsable.

// One certificate, PEM or DER (detected). Certificates with non-RFC-5280 quirks that real
// hardware vendors ship (negative serials) are accepted.
Result<X509Ptr> parse_certificate(ByteView pem_or_der);
// Every certificate in a PEM bundle, in file order; at least one.
Result<std::vector<X509Ptr>> parse_pem_certificates(std::string_view pem);
// Duplicate a certificate handle (reference counted).
X509Ptr clone(X509* cert);

std::string subject_name(X509* cert);  // one-line RFC 2253 form
std::string issuer_name(X509* cert);
std::string serial_hex(X509* cert);
// Byte-for-byte equality of the DER encodings.
bool same_certificate(X509* a, X509* b);
// Byte-for-byte equality of the DER SubjectPublicKeyInfo.
bool same_public_key(X509* a, X509* b);

// Check that `cert` is signed by `issuer`'s key (any algorithm OpenSSL supports, including
// RSASSA-PSS with parameters taken from the certificate). Error "crypto.cert_signature".
Status verify_certificate_signature(X509* cert, X509* issuer);
// notBefore <= at <= notAfter. Error "crypto.cert_validity" with the dates in the message.
Status check_validity(X509* cert, UnixSeconds at);
UnixSeconds not_before(X509* cert);
UnixSeconds not_after(X509* cert);

// The contents of the extension's OCTET STRING (i.e. the DER of its value), or an error
// "crypto.extension_missing" when absent. oid in dotted form, e.g. "1.3.6.1.4.1.3704.1.3.1".
Result<Bytes> extension_value(X509* cert, std::string_view oid);

// Public key of a certificate (new reference).
EvpPkeyPtr public_key(X509* cert);

// CRLs -------------------------------------------------------------------------------------
Result<X509CrlPtr> parse_crl(ByteView pem_or_der);         // "crypto.crl"
Status verify_crl_signature(X509_CRL* crl, X509* issuer);  // "crypto.crl_signature"
// thisUpdate <= at <= nextUpdate. Error "crypto.crl_validity".
Status check_crl_validity(X509_CRL* crl, UnixSeconds at);
UnixSeconds crl_next_update(X509_CRL* crl);
std::string crl_issuer_name(X509_CRL* crl);
bool is_revoked(X509_CRL* crl, X509* cert);

// EC keys ----------------------------------------------------------------------------------

// A new EC key pair. curve_nid: NID_X9_62_prime256v1 or NID_secp384r1. Error "crypto.keygen".
Result<EvpPkeyPtr> ec_generate(int curve_nid);

// An EC public key from raw affine coordinates x||y (each the curve's field size,
// big-endian), checked to be a point of the curve's group (on these cofactor-1 curves, any
// point on the curve but infinity). curve_nid: NID_X9_62_prime256v1 or NID_secp384r1.
// Error "crypto.public_key".
Result<EvpPkeyPtr> ec_public_key_from_xy(int curve_nid, ByteView xy);

// That same check of an EC public key of P-256 or P-384 (the kind ec_public_key_from_xy
// makes): a point of the curve's group. Error "crypto.public_key".
Status check_ec_public_key(EVP_PKEY* key);

// Signatures -------------------------------------------------------------------------------

// Verify an ECDSA signature given as raw big-endian integers r and s over `message`
// hashed with `hash`. Error "crypto.signature" when it does not verify.
Status verify_ecdsa(EVP_PKEY* key, Hash hash, ByteView message, ByteView r_be, ByteView s_be);

// Same, for a signature given as r||s with each half half of the buffer (Intel's format).
Status verify_ecdsa_concat(EVP_PKEY* key, Hash hash, ByteView message, ByteView r_concat_s);

// Reverse byte order (for AMD's little-endian r and s).
Bytes reversed(ByteView bytes);

}  // namespace confpod::crypto
