// Verification of an SEV-SNP report: the endorsement-key certificate chain up to AMD's pinned
// root, then the report's signature, then the binding between the report and the
// certificate (TCB and chip identity). See docs/attest-snp.md for the order and the reasons.
#pragma once

#include <optional>

#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"
#include "attest/snp/report.h"

namespace confpod::snp {

// A VCEK or VLEK whose chain to AMD's pinned ARK has been verified. It does not depend on
// any report, so it can be cached per certificate and reused for every report it signed
// (re-verify it when `verified_at` is too old for the caller).
struct VerifiedChain {
  Product product = Product::kMilan;
  SigningKey key_kind = SigningKey::kVcek;  // kVcek (chains via the ASK) or kVlek (the ASVK)
  crypto::X509Ptr vek;                      // the VCEK or VLEK
  crypto::X509Ptr intermediate;             // ASK or ASVK
  crypto::X509Ptr ark;
  crypto::EvpPkeyPtr vek_public_key;  // P-384
  TcbVersion vek_tcb;                 // from the blSPL/teeSPL/snpSPL/ucodeSPL(/fmcSPL) extensions
  Bytes hwid;                         // VCEK only: 64 bytes (Milan, Genoa) or 8 (Turin)
  UnixSeconds verified_at = 0;
};

// The product a VCEK/VLEK names: its issuer CN ("SEV-Milan", "SEV-VLEK-Genoa", ...), else its
// productName extension (1.3.6.1.4.1.3704.1.2, "Milan-B0"). Error "snp.chain.product".
Result<Product> detect_product(X509* vek);

// What a VCEK or VLEK says about itself, read without verifying anything (for finding the
// certificate of a report in a store; trust comes only from verify_chain()). Errors
// "snp.chain.vek_kind", "snp.chain.product", "snp.vcek.extension".
struct VekIdentity {
  SigningKey kind = SigningKey::kVcek;
  Product product = Product::kMilan;
  TcbVersion tcb;
  Bytes hwid;  // VCEK only
};
Result<VekIdentity> read_vek_identity(X509* vek);

// Verifies vek -> ask -> ark at time `at`.
//  - product: when absent, detected from the VEK (detect_product).
//  - ask: the ASK (for a VCEK) or ASVK (for a VLEK); nullptr = AMD's compiled-in one.
//  - ark: nullptr = the compiled-in ARK; otherwise it must be byte-identical to it.
// Errors: "snp.chain.vek_kind", "snp.chain.product", "snp.chain.ark_pinned",
// "snp.chain.ark_signature", "snp.chain.ask_signature", "snp.chain.vek_signature",
// "snp.chain.validity", "snp.chain.vek_key", "snp.vcek.extension".
Result<VerifiedChain> verify_chain(X509* vek, X509* ask, X509* ark, std::optional<Product> product,
                                   UnixSeconds at);

// Revocation of a verified chain's intermediate (ASK/ASVK) and VCEK/VLEK against an AMD CRL
// (KDS `/vcek/v1/<product>/crl`). The CRL must be signed by `ark` (the pinned ARK of the
// chain's product) else "snp.crl.signature"; with `require_current` it must also be inside
// thisUpdate..nextUpdate at `at` ("snp.crl.expired"); a stale CRL is still read for what it
// revokes. A listed certificate is "snp.chain.revoked", naming it.
Status check_revocation(X509_CRL* crl, X509* ark, const VerifiedChain& chain, UnixSeconds at,
                        bool require_current);

// The report's own checks against a verified chain, in this order:
//   "snp.report.signature_algo"  SIGNATURE_ALGO is not 1 (ECDSA P-384 with SHA-384)
//   "snp.report.signing_key"     SIGNING_KEY does not name the kind of key in the chain
//   "snp.report.product"         a v3+ report's CPUID names another product than the chain
//   "snp.signature"              the ECDSA signature over bytes [0, 0x2A0) does not verify
//   then check_vek_binding().
Status verify_report(const Report& report, const VerifiedChain& chain);

// The report-to-certificate binding, which verify_report() checks after the signature:
//   "snp.vcek.chip_id"  CHIP_ID is not the VCEK's hwID (VCEK only; skipped if MASK_CHIP_KEY)
//   "snp.vcek.tcb"      REPORTED_TCB (decoded for chain.product) is not the VEK's TCB
// Exposed on its own so that callers and tests can diagnose a mismatched certificate.
Status check_vek_binding(const Report& report, const VerifiedChain& chain);

// parse_report() with the chain's product (so v2 TCBs decode right), then verify_report().
Result<Report> parse_and_verify(ByteView data, const VerifiedChain& chain);

}  // namespace confpod::snp
