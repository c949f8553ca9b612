// libFuzzer entry point: pod specs are tenant input. Parsing must never crash, and whatever
// parses must serialize canonically and parse back to the same spec.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/spec/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace confpod::spec;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = parse_pod_spec(text);
  if (!spec.ok()) return 0;
  const std::string canonical = to_toml(*spec);
  auto again = parse_pod_spec(canonical);
  if (!again.ok() || !(*again == *spec) || to_toml(*again) != canonical) std::abort();
  return 0;
}
