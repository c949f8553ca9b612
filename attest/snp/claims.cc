#include "attest/snp/claims.h"

#include <string>

#include "attest/base/bytes.h"

namespace confpod::snp {

nlohmann::json tcb_json(const RawTcb& raw, Product product) {
  const TcbVersion tcb = decode_tcb(raw, product);
  nlohmann::json out = {
      {"bootloader", tcb.bootloader}, {"tee", tcb.tee},     {"snp", tcb.snp},
      {"microcode", tcb.microcode},   {"raw", to_hex(raw)},
  };
  if (tcb.fmc) out["fmc"] = *tcb.fmc;
  return out;
}

nlohmann::json claims(const Report& report, Product product) {
  return nlohmann::json{
      {"tee", "snp"},
      {"version", report.version},
      {"product", std::string(product_name(product))},
      {"policy", format_hex(report.policy.raw)},
      {"debug", report.policy.debug},
      {"smt_allowed", report.policy.smt},
      {"migrate_ma", report.policy.migrate_ma},
      {"vmpl", report.vmpl},
      {"guest_svn", report.guest_svn},
      {"measurement", to_hex(report.measurement)},
      {"report_data", to_hex(report.report_data)},
      {"host_data", to_hex(report.host_data)},
      {"chip_id", to_hex(report.chip_id)},
      {"id_key_digest", to_hex(report.id_key_digest)},
      {"author_key_digest", to_hex(report.author_key_digest)},
      {"family_id", to_hex(report.family_id)},
      {"image_id", to_hex(report.image_id)},
      {"report_id", to_hex(report.report_id)},
      {"signing_key", std::string(signing_key_name(report.signing_key))},
      {"platform_info", format_hex(report.platform_info.raw)},
      {"current_firmware", to_string(report.current)},
      {"committed_firmware", to_string(report.committed)},
      {"reported_tcb", tcb_json(report.reported_tcb.raw, product)},
      {"current_tcb", tcb_json(report.current_tcb.raw, product)},
      {"committed_tcb", tcb_json(report.committed_tcb.raw, product)},
      {"launch_tcb", tcb_json(report.launch_tcb.raw, product)},
  };
}

}  // namespace confpod::snp
