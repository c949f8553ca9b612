// Internal to confpod_guest_protocol: the strict JSON reading that init-data and channel
// messages share. Not part of the public API.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "attest/base/result.h"

namespace confpod::guest::detail {

// Deeper than any document of ours (init-data nests 4 levels, messages 2).
inline constexpr int kMaxJsonDepth = 16;
// More values than the largest legitimate document holds (16 containers x 512 strings), and
// few enough that a hostile frame cannot make the parser build millions of nodes.
inline constexpr std::size_t kMaxJsonValues = 1u << 15;

// Parses hostile text as one JSON value. Nesting depth and the number of values are bounded
// by a scan before parsing; syntax errors and duplicate object members are refused (nlohmann
// would keep the last duplicate silently, and two readers could then disagree). Errors carry
// `code`, and the message starts with `what`.
Result<nlohmann::json> parse_strict_json(std::string_view text, const std::string& code,
                                         const std::string& what);

// A hostile value as it may appear in an error message: quoted, at most 64 bytes, with
// quotes, backslashes, control and non-ASCII bytes escaped.
std::string quote_value(std::string_view value);

bool is_valid_utf8(std::string_view s);

// "a" + "b" -> "a.b"; "" + "b" -> "b".
std::string member_path(const std::string& prefix, std::string_view name);
// "a" + 3 -> "a[3]".
std::string element_path(const std::string& prefix, std::size_t index);

// Typed, strict access to the members of one JSON object, every error naming the member.
class Members {
 public:
  Members(const nlohmann::json& object, std::string path, std::string code)
      : object_(object), path_(std::move(path)), code_(std::move(code)) {}

  // Refuses any member not in `allowed`, naming it.
  Status only(std::initializer_list<std::string_view> allowed) const;
  // The member; "required" when absent.
  Result<const nlohmann::json*> get(std::string_view name) const;
  Result<std::string> string(std::string_view name) const;
  Result<bool> boolean(std::string_view name) const;
  Result<std::uint64_t> unsigned_integer(std::string_view name) const;
  Result<std::int64_t> signed_integer(std::string_view name) const;
  // An array of at most max_items elements.
  Result<const nlohmann::json*> array(std::string_view name, std::size_t max_items) const;
  // An object of at most max_members members.
  Result<const nlohmann::json*> object(std::string_view name, std::size_t max_members) const;

  std::string path(std::string_view name) const { return member_path(path_, name); }
  Error invalid(std::string_view name, const std::string& problem) const {
    return make_error(code_, path(name) + ": " + problem);
  }

 private:
  const nlohmann::json& object_;
  std::string path_;
  std::string code_;
};

// "a string", "an array", ... for "must be X, got Y" messages.
const char* json_type_name(const nlohmann::json& value);

}  // namespace confpod::guest::detail
