// Verification of a TDX quote against verified collateral: PCK chain to the pinned root and
// revocation, QE report signature and binding, quote signature, QE identity, then the TCB
// status as Intel's QVL evaluates it. See docs/attest-tdx.md for the order and the reasons.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/pck.h"
#include "attest/tdx/quote.h"

namespace confpod::tdx {

// What verify_quote() concludes about a quote whose every check passed.
struct Verdict {
  std::string tcb_status;  // Intel's name: "UpToDate", "SWHardeningNeeded", "OutOfDate", ...
  std::vector<std::string> advisory_ids;  // platform, TDX module and QE levels, no duplicates
  std::string tcb_date;                   // tcbDate of the matching platform TCB level
  std::string platform_tcb_status;        // the matching tcbLevel's own status
  std::string module_tcb_status;          // the TDX module identity level's; empty if none
  std::string qe_tcb_status;              // the QE identity level's
  std::array<std::uint8_t, 6> fmspc{};
  std::array<std::uint8_t, 2> pce_id{};
  std::uint16_t pce_svn = 0;
  std::array<std::uint8_t, 16> cpu_svn{};  // the PCK certificate's CPUSVN
  std::uint16_t qe_isvsvn = 0;
  UnixSeconds collateral_expiry = 0;  // earliest end of any collateral item's validity
};

// The result of the signature-level checks: the PCK certificate, its chain verified.
struct VerifiedSignatures {
  PckExtensions pck;
  crypto::X509Ptr pck_leaf;
  crypto::X509Ptr pck_intermediate;  // Intel SGX PCK Platform CA or Processor CA
};

// Every signature in the quote, without collateral (no TCB status, no revocation):
//   "tdx.pck.chain"            the PEM chain is malformed, does not chain leaf ->
//                              intermediate -> trusted_root, or carries another root
//   "tdx.pck.validity"         a certificate is outside its validity at `at`
//   "tdx.pck.extension"        the leaf's SGX extension is missing or malformed
//   "tdx.qe_report.signature"  the QE report is not signed by the PCK leaf key
//   "tdx.qe_report.binding"    QE report_data != SHA-256(attestation key || QE auth data) || 0*32
//   "tdx.quote.attestation_key" the attestation key is not a P-256 point
//   "tdx.quote.signature"      header+body are not signed by the attestation key
Result<VerifiedSignatures> verify_quote_signatures(const Quote& quote, X509* trusted_root,
                                                   UnixSeconds at);

// QE report against the QE identity: MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES under
// their masks. Error "tdx.qe_identity".
Status match_qe_identity(const QeReport& qe_report, const QeIdentity& identity);

// The TCB status of a platform (PCK TCB) running a TD (the TD report's TEE TCB SVNs and
// SEAM identity) with a QE of `qe_isvsvn`, following Intel's QVL:
//   "tdx.tdx_module"         MR_SIGNER_SEAM / SEAM attributes differ from the TDX module
//                            identity, or the module version has no identity ("TDX_%02X")
//   "tdx.tcb.not_supported"  no TCB level matches the platform, the module or the QE
//   "tdx.tcb.revoked"        the converged status is Revoked
// On success Verdict carries the statuses, advisories and tcb_date (other fields unset).
Result<Verdict> evaluate_tcb(const TcbInfo& tcb_info, const PckExtensions& pck, const TdReport& td,
                             const QeIdentity& qe_identity, std::uint16_t qe_isvsvn);

// Full verification at `at` with collateral verified by verify_collateral():
//   "tdx.collateral.expired" / "tdx.collateral.not_yet_valid"  (windows re-checked at `at`)
//   verify_quote_signatures() with the collateral's root, then
//   "tdx.pck.crl_issuer"  the PCK CRL is not issued by the quote's PCK intermediate
//   "tdx.pck.revoked"     leaf in the PCK CRL, or intermediate in the root CA CRL
//   "tdx.qe_identity"     match_qe_identity()
//   "tdx.fmspc" / "tdx.pceid"  the PCK's FMSPC / PCE-ID differ from the TCB info's
//   evaluate_tcb() errors.
// `cache` (optional, signature_cache.h) serves the signature checks of quotes whose PCK chain
// and QE report it has verified before.
class SignatureCache;
Result<Verdict> verify_quote(const Quote& quote, const VerifiedCollateral& collateral,
                             UnixSeconds at, SignatureCache* cache = nullptr);

}  // namespace confpod::tdx
