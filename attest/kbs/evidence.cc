#include "attest/kbs/evidence.h"

#include <algorithm>

#include "attest/kbs/json_fields.h"
#include "attest/snp/appraisal.h"
#include "attest/snp/claims.h"
#include "attest/snp/report_json.h"
#include "attest/tdx/appraisal.h"
#include "attest/tdx/verify.h"

namespace confpod::kbs {
Bytes expected_report_data(std::string_view tee, const Bytes& runtime_digest) {
  Bytes out = runtime_digest;
  if (tee == "snp" || tee == "tdx") out.resize(64, 0);
  return out;
}

Result<EvidenceFacts> EvidenceVerifier::verify(std::string_view tee, const nlohmann::json& evidence,
                                               const Bytes& expected,
                                               const std::optional<std::string>& init_data_body,
                                               UnixSeconds now) const {
  if (!evidence.is_object())
    return make_error("kbs.evidence", "primary_evidence must be a JSON object");
  if (tee == "snp") return verify_snp(evidence, expected, now);
  if (tee == "tdx") return verify_tdx(evidence, expected, now);
  if (tee == "sample" && policy_.allow_insecure)
    return verify_sample(evidence, expected, init_data_body);
  return make_error("kbs.tee.unsupported", "tee '" + std::string(tee) + "' is not accepted");
}

Result<EvidenceFacts> EvidenceVerifier::verify_snp(const nlohmann::json& evidence,
                                                   const Bytes& expected, UnixSeconds now) const {
  auto rep = evidence.find("attestation_report");
  if (rep == evidence.end()) return make_error("kbs.evidence.snp", "no 'attestation_report'");
  // Trustee's attester sends the sev crate's field-by-field object; ours may send the raw bytes.
  Bytes raw;
  if (rep->is_object()) {
    auto decoded = snp::raw_report_from_sev_json(*rep);
    if (!decoded.ok()) return make_error("kbs.evidence.snp", decoded.error().message);
    raw = std::move(*decoded);
  } else {
    CONFPOD_ASSIGN_OR_RETURN(
        raw, byte_field(*rep, snp::kReportSize, "kbs.evidence.snp", "attestation_report"));
  }
  CONFPOD_ASSIGN_OR_RETURN(snp::Report unverified, snp::parse_report(raw));

  crypto::X509Ptr vek, ask, ark;
  if (auto chain = evidence.find("cert_chain"); chain != evidence.end() && !chain->is_null()) {
    if (!chain->is_array() || chain->size() > kMaxCertEntries)
      return make_error("kbs.evidence.snp", "cert_chain must be an array of at most 8 entries");
    for (const auto& entry : *chain) {
      if (!entry.is_object()) return make_error("kbs.evidence.snp", "cert_chain entry");
      auto type = entry.find("cert_type");
      auto data = entry.find("data");
      if (type == entry.end() || data == entry.end())
        return make_error("kbs.evidence.snp", "cert_chain entry needs cert_type and data");
      if (!type->is_string()) continue;  // OTHER(uuid) entries carry nothing we use
      const auto& t = type->get_ref<const std::string&>();
      crypto::X509Ptr* slot = t == "VCEK" || t == "VLEK" ? &vek
                              : t == "ASK"               ? &ask
                              : t == "ARK"               ? &ark
                                                         : nullptr;
      if (!slot) continue;
      CONFPOD_ASSIGN_OR_RETURN(Bytes der, byte_field(*data, kMaxCertSize, "kbs.evidence.snp", t));
      CONFPOD_ASSIGN_OR_RETURN(*slot, crypto::parse_certificate(der));
    }
  }
  if (!vek) {
    if (!policy_.snp_vek)
      return make_error("kbs.evidence.snp", "no VCEK/VLEK in cert_chain and no VCEK source");
    CONFPOD_ASSIGN_OR_RETURN(Bytes der, policy_.snp_vek(unverified));
    CONFPOD_ASSIGN_OR_RETURN(vek, crypto::parse_certificate(der));
  }
  CONFPOD_ASSIGN_OR_RETURN(auto chain,
                           snp::verify_chain(vek.get(), ask.get(), ark.get(), std::nullopt, now));
  if (policy_.snp_revocation) CONFPOD_TRY(policy_.snp_revocation(chain, now));
  CONFPOD_ASSIGN_OR_RETURN(snp::Report report, snp::parse_and_verify(raw, chain));
  if (!std::equal(report.report_data.begin(), report.report_data.end(), expected.begin(),
                  expected.end()))
    return make_error("kbs.binding", "REPORT_DATA " + to_hex(report.report_data) +
                                         " is not the runtime-data digest " + to_hex(expected));
  snp::Policy policy;
  policy.allow_debug = policy_.allow_debug;
  policy.min_tcb = policy_.snp_min_tcb;
  CONFPOD_TRY(snp::appraise(report, policy));
  EvidenceFacts f;
  f.tee = "snp";
  f.measurement.assign(report.measurement.begin(), report.measurement.end());
  f.init_data_digest.assign(report.host_data.begin(), report.host_data.end());
  nlohmann::json c = snp::claims(report, chain.product);
  f.claims = {{"tcb_status", policy_.snp_min_tcb ? "meets_minimum" : "not_evaluated"},
              {"snp",
               {{"reported_tcb", c["reported_tcb"]},
                {"policy", c["policy"]},
                {"product", c["product"]},
                {"signing_key", c["signing_key"]},
                {"vmpl", c["vmpl"]},
                {"guest_svn", c["guest_svn"]}}}};
  return f;
}

Result<EvidenceFacts> EvidenceVerifier::verify_tdx(const nlohmann::json& evidence,
                                                   const Bytes& expected, UnixSeconds now) const {
  auto q = evidence.find("quote");
  if (q == evidence.end() || !q->is_string())
    return make_error("kbs.evidence.tdx", "'quote' must be base64 text");
  CONFPOD_ASSIGN_OR_RETURN(Bytes raw, byte_field(*q, kMaxQuoteSize, "kbs.evidence.tdx", "quote"));
  if (auto log = evidence.find("cc_eventlog"); log != evidence.end() && !log->is_null()) {
    // Decoded only to refuse malformed input; reference values do not cover RTMRs yet.
    if (!log->is_string()) return make_error("kbs.evidence.tdx", "'cc_eventlog' must be text");
    CONFPOD_TRY(byte_field(*log, kMaxEventLogSize, "kbs.evidence.tdx", "cc_eventlog"));
  }
  CONFPOD_ASSIGN_OR_RETURN(tdx::Quote quote, tdx::parse_quote(raw));
  if (!policy_.tdx_collateral)
    return make_error("kbs.evidence.tdx", "no TDX collateral source is configured");
  CONFPOD_ASSIGN_OR_RETURN(auto collateral, policy_.tdx_collateral(quote, now));
  if (!collateral) return make_error("kbs.evidence.tdx", "no collateral for this quote");
  CONFPOD_ASSIGN_OR_RETURN(tdx::Verdict verdict,
                           tdx::verify_quote(quote, *collateral, now, &tdx_signatures_));
  const auto& rd = quote.body.report_data;
  if (!std::equal(rd.begin(), rd.end(), expected.begin(), expected.end()))
    return make_error("kbs.binding", "REPORTDATA " + to_hex(rd) +
                                         " is not the runtime-data digest " + to_hex(expected));
  tdx::Policy policy;
  policy.allow_debug = policy_.allow_debug;
  policy.accepted_tcb_statuses = policy_.tdx_accepted_tcb_statuses;
  CONFPOD_TRY(tdx::appraise(quote, verdict, policy));
  EvidenceFacts f;
  f.tee = "tdx";
  f.measurement.assign(quote.body.mr_td.begin(), quote.body.mr_td.end());
  f.init_data_digest.assign(quote.body.mr_config_id.begin(), quote.body.mr_config_id.end());
  f.claims = {{"tcb_status", verdict.tcb_status},
              {"tdx", {{"advisory_ids", verdict.advisory_ids}, {"tcb_date", verdict.tcb_date}}}};
  return f;
}

Result<EvidenceFacts> EvidenceVerifier::verify_sample(
    const nlohmann::json& evidence, const Bytes& expected,
    const std::optional<std::string>& init_data_body) const {
  CONFPOD_ASSIGN_OR_RETURN(std::string svn,
                           string_field(evidence, "svn", "kbs.evidence.sample", 32));
  auto rd = evidence.find("report_data");
  if (rd == evidence.end() || !rd->is_string())
    return make_error("kbs.evidence.sample", "'report_data' must be base64 text");
  CONFPOD_ASSIGN_OR_RETURN(Bytes data, byte_field(*rd, 64, "kbs.evidence.sample", "report_data"));
  if (data != expected)
    return make_error("kbs.binding", "sample report_data " + to_hex(data) +
                                         " is not the runtime-data digest " + to_hex(expected));
  EvidenceFacts f;
  f.tee = "sample";
  f.insecure = true;
  if (init_data_body) f.init_data_digest = crypto::sha256(as_bytes(*init_data_body));
  f.claims = {{"tcb_status", "insecure"}, {"sample", {{"svn", svn}}}};
  return f;
}

}  // namespace confpod::kbs
