#include "attest/base/path.h"

namespace confpod {

std::optional<std::string> normalized_path_problem(std::string_view p, bool allow_root) {
  if (p.empty() || p.front() != '/') return "must be an absolute path";
  if (p == "/") {
    if (allow_root) return std::nullopt;
    return "must not be /";
  }
  if (p.back() == '/') return "must not end in /";
  std::size_t start = 1;
  while (start <= p.size()) {
    std::size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view seg = p.substr(start, end - start);
    if (seg.empty()) return "must not contain //";
    if (seg == "." || seg == "..") return "must be normalized (no . or .. segments)";
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace confpod
