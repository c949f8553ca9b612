// Verification of one Attestation message's primary evidence, separate from the RCAR session
// logic in kbs.h: the evidence shapes Trustee's attesters send (snp: `attestation_report` as
// the sev crate's object or raw bytes, `cert_chain`; tdx: base64 `quote`, `cc_eventlog`;
// sample: `svn`, `report_data`), the certificate chain to the pinned roots, the binding of
// the report data to the runtime-data digest, and the TEE's own appraisal policy. What the
// evidence proves comes back as EvidenceFacts; which pod that is, is the caller's question.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/snp/report.h"
#include "attest/snp/verify.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/signature_cache.h"

namespace confpod::kbs {

// Bounds on the evidence's parts (all of it arrives in one bounded request body as well).
inline constexpr std::size_t kMaxQuoteSize = 128u << 10;
inline constexpr std::size_t kMaxEventLogSize = 2u << 20;
inline constexpr std::size_t kMaxCertSize = 16u << 10;
inline constexpr std::size_t kMaxCertEntries = 8;

// Verified TDX collateral for a quote (fetched from Intel PCS or a cache by the caller).
using TdxCollateralProvider = std::function<Result<std::shared_ptr<const tdx::VerifiedCollateral>>(
    const tdx::Quote& quote, UnixSeconds now)>;
// The DER VCEK/VLEK for an SNP report whose evidence carries no cert_chain.
using SnpVekProvider = std::function<Result<Bytes>(const snp::Report& report)>;
// Revocation of a verified SNP chain (AMD's CRL); an error refuses the evidence.
using SnpRevocationCheck = std::function<Status(const snp::VerifiedChain& chain, UnixSeconds now)>;

// What evidence must meet, whichever pod it turns out to be.
struct EvidencePolicy {
  bool allow_insecure = false;  // accept tee "sample" (no hardware); tokens say "insecure"
  bool allow_debug = false;     // accept debuggable SNP guests / TDs
  std::optional<snp::TcbVersion> snp_min_tcb;
  std::vector<std::string> tdx_accepted_tcb_statuses = {"UpToDate", "SWHardeningNeeded"};
  TdxCollateralProvider tdx_collateral;
  SnpVekProvider snp_vek;
  SnpRevocationCheck snp_revocation;  // unset: no revocation check
};

// What verified evidence says.
struct EvidenceFacts {
  std::string tee;
  Bytes measurement;       // snp MEASUREMENT, tdx MRTD (48 bytes); empty for sample
  Bytes init_data_digest;  // snp HOST_DATA, tdx MRCONFIGID, sample SHA-256 of the body
  bool insecure = false;
  nlohmann::json claims;  // tcb and other claims for the token
};

class EvidenceVerifier {
 public:
  explicit EvidenceVerifier(EvidencePolicy policy) : policy_(std::move(policy)) {}

  // `evidence` is tee-evidence.primary_evidence; `expected_report_data` what its report data
  // must be (expected_report_data() below); `init_data_body` the Attestation message's init-data
  // body, if any (only the sample TEE hashes it: hardware TEEs carry the digest in signed fields).
  // Errors: "kbs.evidence*", "kbs.binding", "kbs.tee.unsupported" and the snp./tdx. verification
  // codes. Thread-safe.
  Result<EvidenceFacts> verify(std::string_view tee, const nlohmann::json& evidence,
                               const Bytes& expected_report_data,
                               const std::optional<std::string>& init_data_body,
                               UnixSeconds now) const;

  const EvidencePolicy& policy() const { return policy_; }

 private:
  Result<EvidenceFacts> verify_snp(const nlohmann::json& evidence, const Bytes& expected,
                                   UnixSeconds now) const;
  Result<EvidenceFacts> verify_tdx(const nlohmann::json& evidence, const Bytes& expected,
                                   UnixSeconds now) const;
  Result<EvidenceFacts> verify_sample(const nlohmann::json& evidence, const Bytes& expected,
                                      const std::optional<std::string>& init_data_body) const;

  EvidencePolicy policy_;
  // Verified PCK chains and QE reports of the platforms that sent quotes (thread-safe).
  mutable tdx::SignatureCache tdx_signatures_;
};

// The report data a TEE carries for a runtime-data digest (runtime_data_digest in kbs.h):
// hardware TEEs (snp, tdx) zero-pad it to their 64-byte field, the sample TEE carries it as is.
Bytes expected_report_data(std::string_view tee, const Bytes& runtime_digest);

}  // namespace confpod::kbs
