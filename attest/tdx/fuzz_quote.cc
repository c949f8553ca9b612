// libFuzzer entry point: a TDX quote and its collateral come from the untrusted host, so the
// quote parser, the collateral parsers, appraisal and claims must survive any byte string.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "attest/tdx/appraisal.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/roots.h"
#include "attest/tdx/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace confpod::tdx;
  confpod::ByteView bytes(data, size);
  auto quote = parse_quote(bytes);
  if (quote.ok()) {
    // The signature checks parse the embedded PEM chain and the PCK's SGX extension.
    auto root = intel_sgx_root_ca();
    (void)verify_quote_signatures(*quote, root.get(), 1752919234);
    Verdict verdict;
    verdict.tcb_status = "UpToDate";
    (void)appraise(*quote, verdict, Policy{});
    Policy strict;
    strict.mrtd = confpod::Bytes(48, 0xAA);
    strict.rtmr[2] = confpod::Bytes(47, 0x00);  // shorter than the field
    strict.report_data = confpod::Bytes(64, 0x00);
    strict.accepted_tcb_statuses = {"OutOfDate"};
    (void)appraise(*quote, verdict, strict);
    (void)claims(*quote, verdict).dump();
  }
  // The same bytes as collateral text: the container and the signed-object parsers.
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)parse_collateral_json(text);
  (void)parse_tcb_info(text);
  (void)parse_qe_identity(text);
  (void)collateral_from_pcs(text, text, text, bytes, text, bytes);
  return 0;
}
