// Appraisal: whether a report whose signature has been verified describes a guest we accept.
// The verifier's policy, not the guest's; nothing here checks a signature.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/snp/report.h"

namespace confpod::snp {

struct Policy {
  bool allow_debug = false;            // a debuggable guest's memory is open to the host
  bool allow_smt = true;               // SMT is a side-channel risk some deployments refuse
  bool allow_migration_agent = false;  // a migration agent can export the guest's memory
  // Each component of REPORTED_TCB must be >= the one here (fmc is compared only if set).
  std::optional<TcbVersion> min_tcb;
  // The launch measurement must be one of these (48 bytes each); empty = any.
  std::vector<Bytes> allowed_measurements;
  // Exact values; a value shorter than the field is compared as if zero-padded.
  std::optional<Bytes> host_data;      // 32 bytes
  std::optional<Bytes> report_data;    // 64 bytes (e.g. a nonce and a key hash)
  std::optional<Bytes> id_key_digest;  // 48 bytes
  // The report must come from this VMPL or a more privileged one (lower number).
  std::optional<std::uint32_t> max_vmpl;
  std::optional<std::uint32_t> min_guest_svn;
};

// First failed check, in this order:
//   "snp.policy.debug", "snp.policy.migration_agent", "snp.policy.smt", "snp.vmpl",
//   "snp.tcb.minimum" (names the component), "snp.guest_svn", "snp.measurement",
//   "snp.host_data", "snp.report_data", "snp.id_key_digest".
// The TCB is taken as decoded in `report` (parse v2 reports with the chain's product, e.g.
// through parse_and_verify, so Turin TCBs decode right).
Status appraise(const Report& report, const Policy& policy);

}  // namespace confpod::snp
