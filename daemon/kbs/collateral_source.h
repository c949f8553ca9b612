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

#include <systemd/sd-event.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "attest/snp/report.h"
#include "attest/snp/verify.h"
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
  // For kbs::Options::snp_revocation: the chain's ASK/ASVK and VEK against every AMD CRL of its
  // product in the store, each of which must be signed by the pinned ARK. Without a current one:
  // fine, unless `require_crl` (then kbs.collateral.missing naming KDS's CRL URL).
  Status snp_revocation(const snp::VerifiedChain& chain, UnixSeconds now, bool require_crl);
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

// The entries that have expired or expire within `days` of `now`, soonest first.
std::vector<store::CollateralEntry> expiring_within(std::vector<store::CollateralEntry> entries,
                                                    UnixSeconds now, int days = 30);

struct EventSourceUnref {
  void operator()(sd_event_source* source) const { sd_event_source_unref(source); }
};
using EventSourcePtr = std::unique_ptr<sd_event_source, EventSourceUnref>;

// Logs a warning ("collateral expires soon" / "collateral has expired", with id, kind, subject
// and date) for each such entry of `store` once the loop runs, and every 24 hours after. The
// check ends with the returned source. `on_check`, when set, gets every entry at each check
// (the metrics' expiry gauge). Error kbs.collateral.timer.
using CollateralCheck = std::function<void(const std::vector<store::CollateralEntry>&)>;
Result<EventSourcePtr> watch_collateral_expiry(sd_event* event, store::SqliteCollateralStore& store,
                                               CollateralCheck on_check = {});

}  // namespace confpod::kbs_http
