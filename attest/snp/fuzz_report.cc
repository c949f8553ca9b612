// libFuzzer entry point: an SEV-SNP report is hostile input until its signature verifies, so
// the parser, the appraisal and the claims must survive any byte string.
#include <cstddef>
#include <cstdint>

#include "attest/snp/appraisal.h"
#include "attest/snp/claims.h"
#include "attest/snp/report.h"

namespace {

void exercise(const confpod::snp::Report& report) {
  using namespace confpod::snp;
  (void)appraise(report, Policy{});
  Policy strict;
  strict.allow_smt = false;
  strict.min_tcb = TcbVersion{1, 1, 1, 1, std::uint8_t{1}};
  strict.allowed_measurements = {confpod::Bytes(48, 0xAA)};
  strict.host_data = confpod::Bytes(32, 0x00);
  strict.report_data = confpod::Bytes{0x01, 0x02, 0x03};
  strict.id_key_digest = confpod::Bytes(49, 0x00);  // longer than the field
  strict.max_vmpl = 0;
  strict.min_guest_svn = 1;
  (void)appraise(report, strict);
  for (Product p : {Product::kMilan, Product::kGenoa, Product::kTurin})
    (void)claims(report, p).dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace confpod::snp;
  confpod::ByteView bytes(data, size);
  auto report = parse_report(bytes);
  if (report.ok()) exercise(*report);
  for (Product p : {Product::kMilan, Product::kGenoa, Product::kTurin}) {
    auto with_product = parse_report(bytes, p);
    if (with_product.ok()) exercise(*with_product);
  }
  return 0;
}
