// The verified facts about a guest as JSON, for the CLI and the key broker. Only call this on
// a report that passed verify_report (and usually appraise).
#pragma once

#include <nlohmann/json.hpp>

#include "attest/snp/report.h"

namespace confpod::snp {

// {"tee":"snp", "version", "product", "policy":"0x30000", "debug", "smt_allowed",
//  "migrate_ma", "vmpl", "guest_svn", "measurement", "report_data", "host_data", "chip_id",
//  "id_key_digest", "author_key_digest", "family_id", "image_id", "report_id",
//  "signing_key":"vcek"|"vlek", "platform_info":"0x..", "current_firmware":"1.55.21",
//  "committed_firmware", "reported_tcb", "current_tcb", "committed_tcb", "launch_tcb"}.
// Each TCB is {"bootloader","tee","snp","microcode",("fmc" on Turin),"raw": 16 hex}, decoded
// for `product`. Byte fields are lower-case hex without "0x"; integer bit fields are "0x" hex.
nlohmann::json claims(const Report& report, Product product);

// One TCB as in claims().
nlohmann::json tcb_json(const RawTcb& raw, Product product);

}  // namespace confpod::snp
