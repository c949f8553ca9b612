// A scan of hostile JSON text before it is parsed: nesting depth and the number of values,
// which a parser cannot bound itself (nlohmann's values are destroyed recursively, and a
// small frame can describe millions of nodes). Shared by the KBS (attest/kbs) and the guest's
// channel and init-data readers (guest/protocol).
#pragma once

#include <cstddef>
#include <limits>
#include <string_view>

namespace confpod {

struct JsonLimits {
  int max_depth = 16;
  std::size_t max_values = std::numeric_limits<std::size_t>::max();
};

enum class JsonScan {
  kWithinLimits,
  kTooDeep,        // more than max_depth levels of '{'/'[' open at once
  kTooManyValues,  // more than max_values values (each '{', '[', ',' and ':' opens one)
  kUnbalanced,     // a '}' or ']' with nothing open: not JSON (and it would buy extra depth)
};

// Looks only at structure outside strings; syntax is the parser's business.
JsonScan scan_json(std::string_view text, const JsonLimits& limits);

}  // namespace confpod
