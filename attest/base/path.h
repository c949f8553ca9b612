// Paths taken from configuration, pod specs and init-data: absolute and already normalized,
// so one file has one spelling (no aliasing between what is checked and what is used).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace confpod {

// Why `p` is not an absolute, normalized path (no empty, "." or ".." segments, no trailing
// slash), or nullopt when it is. "/" itself passes only with allow_root.
std::optional<std::string> normalized_path_problem(std::string_view p, bool allow_root = false);

}  // namespace confpod
