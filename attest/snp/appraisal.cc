#include "attest/snp/appraisal.h"

#include <algorithm>
#include <string>

namespace confpod::snp {

namespace {

// `expected` zero-padded to the field's size; longer than the field never matches.
bool field_equals(ByteView actual, const Bytes& expected) {
  if (expected.size() > actual.size()) return false;
  return std::equal(expected.begin(), expected.end(), actual.begin()) &&
         is_all_zero(actual.subspan(expected.size()));
}

Status exact_field(std::string_view code, std::string_view field, ByteView actual,
                   const std::optional<Bytes>& expected) {
  if (!expected || field_equals(actual, *expected)) return ok_status();
  return make_error(std::string(code), std::string(field) + " mismatch: expected " +
                                           to_hex(*expected) + ", actual " + to_hex(actual));
}

Status minimum_tcb(const TcbVersion& reported, const TcbVersion& minimum) {
  struct Component {
    const char* name;
    unsigned actual;
    unsigned required;
  };
  std::vector<Component> components = {
      {"bootloader", reported.bootloader, minimum.bootloader},
      {"tee", reported.tee, minimum.tee},
      {"snp", reported.snp, minimum.snp},
      {"microcode", reported.microcode, minimum.microcode},
  };
  if (minimum.fmc) {
    if (!reported.fmc)
      return make_error("snp.tcb.minimum",
                        "reported_tcb has no fmc component (not a Turin TCB), minimum fmc is " +
                            std::to_string(*minimum.fmc));
    components.push_back({"fmc", *reported.fmc, *minimum.fmc});
  }
  for (const Component& c : components)
    if (c.actual < c.required)
      return make_error("snp.tcb.minimum",
                        std::string("reported_tcb ") + c.name + " " + std::to_string(c.actual) +
                            " is below the minimum " + std::to_string(c.required) + " (reported " +
                            to_string(reported) + ", minimum " + to_string(minimum) + ")");
  return ok_status();
}

}  // namespace

Status appraise(const Report& report, const Policy& policy) {
  const GuestPolicy& gp = report.policy;
  if (gp.debug && !policy.allow_debug)
    return make_error("snp.policy.debug", "guest policy " + format_hex(gp.raw) +
                                              " allows debugging (bit 19); expected debug off");
  if (gp.migrate_ma && !policy.allow_migration_agent)
    return make_error(
        "snp.policy.migration_agent",
        "guest policy " + format_hex(gp.raw) + " allows a migration agent (bit 18); expected none");
  if (gp.smt && !policy.allow_smt)
    return make_error("snp.policy.smt", "guest policy " + format_hex(gp.raw) +
                                            " allows SMT (bit 16); expected SMT off");
  if (policy.max_vmpl && report.vmpl > *policy.max_vmpl)
    return make_error("snp.vmpl", "report is from VMPL " + std::to_string(report.vmpl) +
                                      ", expected VMPL " + std::to_string(*policy.max_vmpl) +
                                      " or lower");
  if (policy.min_tcb) CONFPOD_TRY(minimum_tcb(report.reported_tcb.version, *policy.min_tcb));
  if (policy.min_guest_svn && report.guest_svn < *policy.min_guest_svn)
    return make_error("snp.guest_svn", "guest_svn " + std::to_string(report.guest_svn) +
                                           " is below the minimum " +
                                           std::to_string(*policy.min_guest_svn));
  if (!policy.allowed_measurements.empty()) {
    ByteView actual(report.measurement);
    bool allowed =
        std::any_of(policy.allowed_measurements.begin(), policy.allowed_measurements.end(),
                    [&](const Bytes& m) {
                      return std::equal(m.begin(), m.end(), actual.begin(), actual.end());
                    });
    if (!allowed) {
      std::string expected;
      for (const Bytes& m : policy.allowed_measurements)
        expected += (expected.empty() ? "" : " | ") + to_hex(m);
      return make_error("snp.measurement", "measurement mismatch: expected one of [" + expected +
                                               "], actual " + to_hex(actual));
    }
  }
  CONFPOD_TRY(exact_field("snp.host_data", "host_data", report.host_data, policy.host_data));
  CONFPOD_TRY(
      exact_field("snp.report_data", "report_data", report.report_data, policy.report_data));
  CONFPOD_TRY(exact_field("snp.id_key_digest", "id_key_digest", report.id_key_digest,
                          policy.id_key_digest));
  return ok_status();
}

}  // namespace confpod::snp
