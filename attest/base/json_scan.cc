#include "attest/base/json_scan.h"

namespace confpod {

JsonScan scan_json(std::string_view text, const JsonLimits& limits) {
  int depth = 0;
  std::size_t values = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (++depth > limits.max_depth) return JsonScan::kTooDeep;
        ++values;
        break;
      case '}':
      case ']':
        if (--depth < 0) return JsonScan::kUnbalanced;
        break;
      case ',':
      case ':':
        ++values;
        break;
      default:
        break;
    }
    if (values > limits.max_values) return JsonScan::kTooManyValues;
  }
  return JsonScan::kWithinLimits;
}

}  // namespace confpod
