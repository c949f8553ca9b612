// Trustee's SNP attester sends the report as the `sev` crate serializes its AttestationReport:
// one JSON member per field (integers, byte arrays, TCBs as {"fmc","bootloader","tee","snp",
// "microcode"}, firmware versions as {"major","minor","build"}, the signature as {"r","s"}).
// The signature covers the raw report, so the KBS re-assembles those bytes, with every
// reserved byte zero as the firmware writes them, and lets the signature check decide: a
// report that does not round-trip exactly simply fails "snp.signature".
#pragma once

#include <nlohmann/json.hpp>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::snp {

// The kReportSize bytes of a report given in the sev crate's serde form. Error "snp.json"
// naming the member that is missing, of the wrong type or out of range.
Result<Bytes> raw_report_from_sev_json(const nlohmann::json& report);

// The report (kReportSize bytes) in the sev crate's serde form, as Trustee's SNP attester
// sends it: what confpod's agent sends too (docs/compatibility.md). TCBs use the Turin layout
// (with "fmc") for reports of version 3 or later whose CPUID family is 0x1A, the Milan/Genoa
// one ("fmc": null) otherwise. Reserved bytes are not carried (raw_report_from_sev_json
// writes them as zero, as the firmware does).
nlohmann::json sev_json_from_raw_report(ByteView raw);

}  // namespace confpod::snp
