// Appraisal of a verified TDX quote against the relying party's policy (which TD, which
// measurements, which TCB statuses), and the claims handed to the CLI and the KBS.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/verify.h"

namespace confpod::tdx {

struct Policy {
  bool allow_debug = false;   // a debug TD's memory and registers are open to the host
  std::optional<Bytes> mrtd;  // 48 bytes
  std::array<std::optional<Bytes>, 4> rtmr;  // 48 bytes each
  std::optional<Bytes> mrconfigid;           // 48 bytes
  std::optional<Bytes> report_data;          // 64 bytes
  // Empty = accept any status verify_quote() returned (it already rejects Revoked and
  // unsupported platforms).
  std::vector<std::string> accepted_tcb_statuses;
};

// Checks, in this order: "tdx.policy.debug" (TD_ATTRIBUTES.DEBUG set and not allowed),
// "tdx.mrtd", "tdx.rtmr0".."tdx.rtmr3", "tdx.mrconfigid", "tdx.report_data" (mismatch,
// message has expected and actual hex), "tdx.tcb.status" (status not accepted).
Status appraise(const Quote& quote, const Verdict& verdict, const Policy& policy);

// Claims about a verified quote: "tee":"tdx", measurements, attributes, TCB status, ...
// (lower-case hex strings).
nlohmann::json claims(const Quote& quote, const Verdict& verdict);

}  // namespace confpod::tdx
