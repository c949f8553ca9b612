// libFuzzer entry point for the QMP message parser: every line QEMU sends goes through it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "vmm/qmp.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto message = confpod::vmm::parse_qmp_message(line);
  if (message.ok()) {
    // Touch what callers touch: the payload is walked (dump) and the id compared.
    (void)message->payload.dump();
    (void)message->id.is_number_unsigned();
  }
  return 0;
}
