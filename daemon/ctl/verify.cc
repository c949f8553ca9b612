#include "daemon/ctl/verify.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "attest/base/bytes.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"
#include "attest/snp/appraisal.h"
#include "attest/snp/claims.h"
#include "attest/snp/report.h"
#include "attest/snp/report_json.h"
#include "attest/snp/verify.h"
#include "attest/tdx/appraisal.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/roots.h"
#include "attest/tdx/verify.h"

namespace confpod::ctl {

namespace {

// The two ways a verify command ends badly: the input could not be used at all (exit 2), or
// the evidence was examined and rejected (exit 1). Both print exactly one line.
int usage_error(std::ostream& err, const std::string& what) {
  err << "error: " << what << "\n";
  return kExitUsage;
}

int rejected(std::ostream& err, const Error& error) {
  err << "rejected: " << error.describe() << "\n";
  return kExitRejected;
}

int accepted(std::ostream& out, const nlohmann::json& claims) {
  out << claims.dump() << "\n";
  return kExitOk;
}

// Loads one certificate (PEM or DER) from a file named by an option.
Result<crypto::X509Ptr> load_certificate(const std::string& option, const std::string& path) {
  CONFPOD_ASSIGN_OR_RETURN(Bytes bytes, read_file(path, 1u << 20));
  auto cert = crypto::parse_certificate(bytes);
  if (!cert.ok()) return make_error("usage", option + " " + path + ": " + cert.error().message);
  return cert;
}

// The checks of `verify snp` on report bytes and certificates already loaded.
int verify_snp_bytes(ByteView report_bytes, X509* vek, X509* ask, X509* ark,
                     std::optional<snp::Product> product, UnixSeconds at, bool allow_debug,
                     std::ostream& out, std::ostream& err) {
  auto chain = snp::verify_chain(vek, ask, ark, product, at);
  if (!chain.ok()) return rejected(err, chain.error());
  auto report = snp::parse_and_verify(report_bytes, *chain);
  if (!report.ok()) return rejected(err, report.error());
  snp::Policy policy;
  policy.allow_debug = allow_debug;
  if (auto appraisal = snp::appraise(*report, policy); !appraisal.ok())
    return rejected(err, appraisal.error());
  return accepted(out, snp::claims(*report, chain->product));
}

}  // namespace

int verify_snp(const VerifySnpArgs& args, std::ostream& out, std::ostream& err) {
  auto report_bytes = read_file(args.report, 1u << 20);
  if (!report_bytes.ok()) return usage_error(err, report_bytes.error().message);

  auto vek = load_certificate("--vcek", args.vcek);
  if (!vek.ok()) return usage_error(err, vek.error().message);

  // --ask may be a KDS cert_chain bundle (ASK then ARK); then --ark is optional.
  crypto::X509Ptr ask, ark;
  if (!args.ask.empty()) {
    auto text = read_text_file(args.ask, 1u << 20);
    if (!text.ok()) return usage_error(err, text.error().message);
    auto certs = crypto::parse_pem_certificates(*text);
    if (!certs.ok()) return usage_error(err, "--ask " + args.ask + ": " + certs.error().message);
    if (certs->size() > 2)
      return usage_error(err, "--ask " + args.ask + ": expected the ASK, or ASK then ARK");
    ask = std::move((*certs)[0]);
    if (certs->size() == 2) ark = std::move((*certs)[1]);
  }
  if (!args.ark.empty()) {
    auto cert = load_certificate("--ark", args.ark);
    if (!cert.ok()) return usage_error(err, cert.error().message);
    ark = std::move(cert).value();
  }
  if ((ask == nullptr) != (ark == nullptr))
    return usage_error(err, "--ask and --ark go together (or give --ask a KDS cert_chain bundle)");

  std::optional<snp::Product> product;
  if (!args.product.empty()) {
    auto parsed = snp::parse_product(args.product);
    if (!parsed.ok()) return usage_error(err, parsed.error().message);
    product = *parsed;
  }

  return verify_snp_bytes(*report_bytes, vek->get(), ask.get(), ark.get(), product, now_unix(),
                          args.allow_debug, out, err);
}

int verify_snp_evidence(const VerifySnpEvidenceArgs& args, std::ostream& out, std::ostream& err) {
  UnixSeconds at = now_unix();
  if (!args.at.empty()) {
    auto parsed = parse_rfc3339(args.at);
    if (!parsed.ok()) return usage_error(err, "--at: " + parsed.error().message);
    at = *parsed;
  }
  auto text = read_text_file(args.evidence, 1u << 20);
  if (!text.ok()) return usage_error(err, text.error().message);
  auto evidence = nlohmann::json::parse(*text, nullptr, false);
  if (evidence.is_discarded() || !evidence.is_object())
    return usage_error(err, args.evidence + ": not a JSON object");
  // Trustee's shape: {"attestation_report": {sev crate fields}, "cert_chain": [...] | null}.
  // A base64 string for attestation_report is confpod's raw extension (docs/compatibility.md).
  auto rep = evidence.find("attestation_report");
  if (rep == evidence.end())
    return rejected(err, make_error("snp.json", "evidence has no attestation_report"));
  Bytes raw;
  if (rep->is_object()) {
    auto decoded = snp::raw_report_from_sev_json(*rep);
    if (!decoded.ok()) return rejected(err, decoded.error());
    raw = std::move(*decoded);
  } else if (rep->is_string()) {
    auto decoded = from_base64(rep->get<std::string>());
    if (!decoded.ok())
      return rejected(err, make_error("snp.json", "attestation_report: not base64"));
    raw = std::move(*decoded);
  } else {
    return rejected(err, make_error("snp.json", "attestation_report must be an object"));
  }
  crypto::X509Ptr vek, ask, ark;
  if (auto chain = evidence.find("cert_chain"); chain != evidence.end() && !chain->is_null()) {
    if (!chain->is_array() || chain->size() > 8)
      return rejected(err, make_error("snp.json", "cert_chain must be an array of at most 8"));
    for (const auto& entry : *chain) {
      auto type = entry.is_object() ? entry.find("cert_type") : entry.end();
      auto data = entry.is_object() ? entry.find("data") : entry.end();
      if (!entry.is_object() || type == entry.end() || data == entry.end())
        return rejected(err, make_error("snp.json", "cert_chain entries need cert_type and data"));
      if (!type->is_string()) continue;  // OTHER(uuid): nothing to verify with
      const std::string& t = type->get_ref<const std::string&>();
      crypto::X509Ptr* slot = t == "VCEK" || t == "VLEK" ? &vek
                              : t == "ASK"               ? &ask
                              : t == "ARK"               ? &ark
                                                         : nullptr;
      if (slot == nullptr) continue;
      Bytes der;
      if (data->is_array() && data->size() <= (64u << 10)) {
        for (const auto& b : *data) {
          if (!b.is_number_unsigned() || b.get<std::uint64_t>() > 255)
            return rejected(err, make_error("snp.json", "cert_chain " + t + " data: not bytes"));
          der.push_back(static_cast<std::uint8_t>(b.get<std::uint64_t>()));
        }
      } else {
        return rejected(err, make_error("snp.json", "cert_chain " + t + " data: not a byte array"));
      }
      auto cert = crypto::parse_certificate(der);
      if (!cert.ok())
        return rejected(err,
                        make_error("snp.json", "cert_chain " + t + ": " + cert.error().message));
      *slot = std::move(*cert);
    }
  }
  if (!vek) return rejected(err, make_error("snp.json", "cert_chain has no VCEK or VLEK"));
  if ((ask == nullptr) != (ark == nullptr)) ask.reset(), ark.reset();  // use the pinned pair
  return verify_snp_bytes(raw, vek.get(), ask.get(), ark.get(), std::nullopt, at, args.allow_debug,
                          out, err);
}

int verify_tdx(const VerifyTdxArgs& args, std::ostream& out, std::ostream& err) {
  auto at = parse_rfc3339(args.at);
  if (!at.ok()) return usage_error(err, "--at: " + at.error().message);
  auto quote_bytes = read_file(args.quote, 1u << 20);
  if (!quote_bytes.ok()) return usage_error(err, quote_bytes.error().message);
  auto collateral_text = read_text_file(args.collateral, 4u << 20);
  if (!collateral_text.ok()) return usage_error(err, collateral_text.error().message);
  auto collateral = tdx::parse_collateral_json(*collateral_text);
  if (!collateral.ok())
    return usage_error(err,
                       "--collateral " + args.collateral + ": " + collateral.error().describe());

  auto quote = tdx::parse_quote(*quote_bytes);
  if (!quote.ok()) return rejected(err, quote.error());
  auto root = tdx::intel_sgx_root_ca();
  auto verified_collateral = tdx::verify_collateral(*collateral, root.get(), *at);
  if (!verified_collateral.ok()) return rejected(err, verified_collateral.error());
  auto verdict = tdx::verify_quote(*quote, *verified_collateral, *at);
  if (!verdict.ok()) return rejected(err, verdict.error());

  tdx::Policy policy;
  policy.allow_debug = args.allow_debug;
  if (auto appraisal = tdx::appraise(*quote, *verdict, policy); !appraisal.ok())
    return rejected(err, appraisal.error());
  return accepted(out, tdx::claims(*quote, *verdict));
}

}  // namespace confpod::ctl
