#include "daemon/ctl/verify.h"

#include <nlohmann/json.hpp>

#include "attest/base/bytes.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"
#include "attest/snp/appraisal.h"
#include "attest/snp/claims.h"
#include "attest/snp/report.h"
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

  auto chain = snp::verify_chain(vek->get(), ask.get(), ark.get(), product, now_unix());
  if (!chain.ok()) return rejected(err, chain.error());
  auto report = snp::parse_and_verify(*report_bytes, *chain);
  if (!report.ok()) return rejected(err, report.error());

  snp::Policy policy;
  policy.allow_debug = args.allow_debug;
  if (auto appraisal = snp::appraise(*report, policy); !appraisal.ok())
    return rejected(err, appraisal.error());
  return accepted(out, snp::claims(*report, chain->product));
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
