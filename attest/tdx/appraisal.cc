#include "attest/tdx/appraisal.h"

#include <algorithm>

namespace confpod::tdx {

namespace {

Status expect_equal(const std::optional<Bytes>& expected, ByteView actual, const char* code,
                    const char* field) {
  if (!expected) return ok_status();
  if (!std::equal(expected->begin(), expected->end(), actual.begin(), actual.end()))
    return make_error(code, std::string(field) + " mismatch: expected " + to_hex(*expected) +
                                ", actual " + to_hex(actual));
  return ok_status();
}

}  // namespace

Status appraise(const Quote& quote, const Verdict& verdict, const Policy& policy) {
  const TdReport& td = quote.body;
  if (td.debug() && !policy.allow_debug)
    return make_error("tdx.policy.debug", "TD is launched with DEBUG (td_attributes " +
                                              to_hex(td.td_attributes) +
                                              ") and the policy does not allow debug TDs");
  CONFPOD_TRY(expect_equal(policy.mrtd, td.mr_td, "tdx.mrtd", "MRTD"));
  static constexpr const char* kRtmrCodes[] = {"tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2", "tdx.rtmr3"};
  static constexpr const char* kRtmrNames[] = {"RTMR0", "RTMR1", "RTMR2", "RTMR3"};
  for (std::size_t i = 0; i < 4; ++i)
    CONFPOD_TRY(expect_equal(policy.rtmr[i], td.rtmr[i], kRtmrCodes[i], kRtmrNames[i]));
  CONFPOD_TRY(expect_equal(policy.mrconfigid, td.mr_config_id, "tdx.mrconfigid", "MRCONFIGID"));
  CONFPOD_TRY(expect_equal(policy.report_data, td.report_data, "tdx.report_data", "REPORTDATA"));
  const auto& accepted = policy.accepted_tcb_statuses;
  if (!accepted.empty() &&
      std::find(accepted.begin(), accepted.end(), verdict.tcb_status) == accepted.end()) {
    std::string list;
    for (const auto& s : accepted) list += (list.empty() ? "" : ", ") + s;
    return make_error("tdx.tcb.status", "TCB status " + verdict.tcb_status +
                                            " is not accepted (accepted: " + list + ")");
  }
  return ok_status();
}

nlohmann::json claims(const Quote& quote, const Verdict& verdict) {
  const TdReport& td = quote.body;
  nlohmann::json out = {
      {"tee", "tdx"},
      {"quote_version", quote.header.version},
      {"body_type", quote.body_type},
      {"mrtd", to_hex(td.mr_td)},
      {"rtmr0", to_hex(td.rtmr[0])},
      {"rtmr1", to_hex(td.rtmr[1])},
      {"rtmr2", to_hex(td.rtmr[2])},
      {"rtmr3", to_hex(td.rtmr[3])},
      {"report_data", to_hex(td.report_data)},
      {"mrconfigid", to_hex(td.mr_config_id)},
      {"mrowner", to_hex(td.mr_owner)},
      {"mrownerconfig", to_hex(td.mr_owner_config)},
      {"mrseam", to_hex(td.mr_seam)},
      {"mrsignerseam", to_hex(td.mr_signer_seam)},
      {"seam_attributes", to_hex(td.seam_attributes)},
      {"td_attributes", to_hex(td.td_attributes)},
      {"xfam", to_hex(td.xfam)},
      {"tee_tcb_svn", to_hex(td.tee_tcb_svn)},
      {"tcb_status", verdict.tcb_status},
      {"advisory_ids", verdict.advisory_ids},
      {"tcb_date", verdict.tcb_date},
      {"fmspc", to_hex(verdict.fmspc)},
      {"pce_svn", verdict.pce_svn},
      {"cpu_svn", to_hex(verdict.cpu_svn)},
      {"qe_isvsvn", verdict.qe_isvsvn},
      {"collateral_expiry", format_rfc3339(verdict.collateral_expiry)},
      {"debug", td.debug()},
  };
  if (td.td15) {
    out["tee_tcb_svn2"] = to_hex(td.tee_tcb_svn2);
    out["mrservicetd"] = to_hex(td.mr_servicetd);
  }
  return out;
}

}  // namespace confpod::tdx
