// libFuzzer entry point: collateral files come from wherever an operator saved them, so the
// classifier (PEM, DER, PCS JSON, dcap-qvl JSON) and the verification of whatever it finds
// must survive any byte string.
#include <cstddef>
#include <cstdint>

#include "attest/collateral/collateral.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace confpod::collateral;
  auto items = parse_file(confpod::ByteView(data, size), "fuzz");
  if (items.ok()) {
    for (const Item& item : *items) {
      (void)item.id();
      (void)verify_item(item, *items, 1752919234);
    }
  }
  return 0;
}
