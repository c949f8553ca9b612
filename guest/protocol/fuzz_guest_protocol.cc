// libFuzzer entry point: channel frames and init-data are hostile input (host -> agent, and
// guest -> daemon). The same bytes go to the frame decoder (whole and in pieces), to both
// message parsers and to the init-data parser. Whatever parses must serialize to something
// that parses back equal, and init-data's canonical form must be a fixed point; a violation
// aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "guest/protocol/init_data.h"
#include "guest/protocol/messages.h"

namespace {

using namespace confpod::guest;

void check(bool condition) {
  if (!condition) std::abort();
}

void round_trip_messages(std::string_view payload) {
  if (auto host = parse_host_message(payload); host.ok()) {
    auto again = parse_host_message(to_payload(*host));
    check(again.ok() && *again == *host);
    if (host->kind == HostMessage::Kind::kInitData) (void)parse_init_data(host->init_data);
  }
  if (auto guest = parse_guest_message(payload); guest.ok()) {
    auto again = parse_guest_message(to_payload(*guest));
    check(again.ok() && *again == *guest);
  }
}

void round_trip_init_data(std::string_view text) {
  auto data = parse_init_data(text);
  if (!data.ok()) return;
  check(validate_init_data(*data).ok());
  const std::string canonical = to_json(*data);
  auto again = parse_init_data(canonical);
  check(again.ok() && *again == *data && to_json(*again) == canonical);
}

// The input as a byte stream, fed in pieces whose sizes come from the input itself.
void decode_stream(std::string_view bytes, std::size_t max_payload) {
  FrameDecoder decoder(max_payload);
  std::size_t pos = 0;
  bool failed = false;
  while (pos < bytes.size() && !failed) {
    const std::size_t piece = 1 + static_cast<unsigned char>(bytes[pos]) % 64;
    decoder.feed(bytes.substr(pos, piece));
    pos += piece;
    while (true) {
      auto next = decoder.next();
      if (!next.ok()) {
        failed = true;
        check(!decoder.next().ok());  // stays failed
        break;
      }
      if (!next->has_value()) break;
      check((*next)->size() <= max_payload);
      round_trip_messages(**next);
    }
  }
  if (failed) check(!decoder.finish().ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  round_trip_messages(bytes);
  round_trip_init_data(bytes);
  decode_stream(bytes, kMaxFramePayload);
  decode_stream(bytes, 64);

  // The input as one payload: encoded and decoded in one piece, it comes back unchanged.
  FrameDecoder decoder;
  decoder.feed(encode_frame(bytes));
  auto payload = decoder.next();
  check(payload.ok() && payload->has_value() && **payload == bytes);
  check(decoder.finish().ok());
  return 0;
}
