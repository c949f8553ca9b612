// Where the embedded KBS finds what evidence does not carry: the VCEK or VLEK of an SNP report
// sent without a cert_chain (a guest with /dev/sev-guest and no extended report), and the DCAP
// collateral of a TDX quote (TCB info, QE identity, CRLs). Both come from the collateral store
// that `confpodctl collateral import` fills (docs/collateral.md); nothing is fetched.
//
// Nothing from the store is trusted: the KBS verifies a returned VCEK's chain to the pinned
// ARK, and the TDX collateral is put through tdx::verify_collateral() to the pinned Intel
// root here, before the quote is checked against it. Verified TDX collateral is kept per
// (FMSPC, PCK CA) until the store changes; verify_quote() re-checks its time windows for every
// quote. Thread-safe: the KBS calls it from its HTTP threads.
//
// Errors: kbs.collateral.missing (names what to import, and where AMD's KDS or Intel's PCS
// serves it), and the verification errors of tdx::verify_collateral.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "attest/base/result.h"
#include "attest/snp/report.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/quote.h"
#include "daemon/store/collateral_store.h"

namespace confpod::kbs_http {

class CollateralSource {
 public:
  // `store` must outlive this object.
  explicit CollateralSource(store::SqliteCollateralStore& store) : store_(store) {}

  // For kbs::Options::snp_vek: the DER VCEK (by CHIP_ID and REPORTED_TCB) or VLEK (by
  // REPORTED_TCB) of `report`.
  Result<Bytes> snp_vek(const snp::Report& report);
  // For kbs::Options::tdx_collateral.
  Result<std::shared_ptr<const tdx::VerifiedCollateral>> tdx_collateral(const tdx::Quote& quote,
                                                                        UnixSeconds now);
  // How many tdx_collateral() calls verified collateral afresh (tests, benchmarks).
  unsigned tdx_verifications() const { return verifications_; }

 private:
  store::SqliteCollateralStore& store_;
  std::mutex mu_;
  struct Cached {
    std::uint64_t generation = 0;
    std::shared_ptr<const tdx::VerifiedCollateral> collateral;
  };
  std::map<std::string, Cached> tdx_cache_;  // "<fmspc>/<platform|processor>"
  unsigned verifications_ = 0;
};

}  // namespace confpod::kbs_http
