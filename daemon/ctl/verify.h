// `confpodctl verify snp|tdx`: offline verification of attestation evidence.
#pragma once

#include <ostream>
#include <string>

namespace confpod::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRejected = 1;
inline constexpr int kExitUsage = 2;

struct VerifySnpArgs {
  std::string report;
  std::string vcek;
  std::string ask;      // optional
  std::string ark;      // optional
  std::string product;  // optional: milan | genoa | turin
  bool allow_debug = false;
};

// `verify snp-evidence FILE [--at RFC3339]`: SNP evidence in Trustee's JSON shape.
struct VerifySnpEvidenceArgs {
  std::string evidence;
  std::string at;  // RFC 3339; empty: now
  bool allow_debug = false;
};

struct VerifyTdxArgs {
  std::string quote;
  std::string collateral;
  std::string at;  // RFC 3339
  bool allow_debug = false;
};

// Each prints one JSON object of claims on `out` and returns kExitOk, or one line on `err`
// naming the failed check and returns kExitRejected / kExitUsage.
int verify_snp(const VerifySnpArgs& args, std::ostream& out, std::ostream& err);
int verify_tdx(const VerifyTdxArgs& args, std::ostream& out, std::ostream& err);
// Re-encodes the report, verifies its signature and the chain (cert_chain's VCEK/VLEK, and its
// ASK/ARK or the pinned ones) to the pinned root at `at`, appraises it; prints the claims as
// verify_snp does, with its exit codes.
int verify_snp_evidence(const VerifySnpEvidenceArgs& args, std::ostream& out, std::ostream& err);

}  // namespace confpod::ctl
