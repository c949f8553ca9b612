#include "guest/protocol/strict_json.h"

#include <exception>
#include <limits>
#include <set>
#include <vector>

#include "attest/base/json_scan.h"

namespace confpod::guest::detail {

Result<nlohmann::json> parse_strict_json(std::string_view text, const std::string& code,
                                         const std::string& what) {
  // Depth and value count before parsing (nlohmann destroys values recursively).
  switch (scan_json(text, JsonLimits{kMaxJsonDepth, kMaxJsonValues})) {
    case JsonScan::kTooDeep:
      return make_error(
          code, what + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    case JsonScan::kTooManyValues:
      return make_error(code,
                        what + ": more than " + std::to_string(kMaxJsonValues) + " JSON values");
    case JsonScan::kUnbalanced:
      return make_error(code, what + ": not valid JSON");
    case JsonScan::kWithinLimits:
      break;
  }

  // Each open object's member names so far; a repeated one is remembered, not kept silently.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto track = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty() && duplicate.empty() &&
               parsed.is_string()) {
      const auto& name = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(name).second) duplicate = name;
    }
    return true;
  };
  try {
    nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), track, false);
    if (value.is_discarded()) return make_error(code, what + ": not valid JSON");
    if (!duplicate.empty())
      return make_error(code, what + ": duplicate member " + quote_value(duplicate));
    return value;
  } catch (const std::exception&) {
    // allow_exceptions=false covers syntax errors; this is for allocation failure and the like.
    return make_error(code, what + ": not valid JSON");
  }
}

std::string quote_value(std::string_view value) {
  constexpr std::size_t kMaxShown = 64;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (value.size() > kMaxShown) out += "...";
  return out;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF.
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += extra + 1;
  }
  return true;
}

std::string member_path(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

std::string element_path(const std::string& prefix, std::size_t index) {
  return prefix + "[" + std::to_string(index) + "]";
}

const char* json_type_name(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
      return "a negative integer";
    case nlohmann::json::value_t::number_unsigned:
      return "an unsigned integer";
    case nlohmann::json::value_t::number_float:
      return "a non-integer number";
    default:
      return "something else";
  }
}

Status Members::only(std::initializer_list<std::string_view> allowed) const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    bool known = false;
    for (std::string_view a : allowed) known = known || it.key() == a;
    if (!known)
      return make_error(code_, (path_.empty() ? std::string() : path_ + ": ") + "unknown member " +
                                   quote_value(it.key()));
  }
  return ok_status();
}

Result<const nlohmann::json*> Members::get(std::string_view name) const {
  auto it = object_.find(std::string(name));
  if (it == object_.end()) return invalid(name, "required");
  return &*it;
}

Result<std::string> Members::string(std::string_view name) const {
  CONFPOD_ASSIGN_OR_RETURN(const nlohmann::json* value, get(name));
  if (!value->is_string())
    return invalid(name, std::string("must be a string, got ") + json_type_name(*value));
  return value->get<std::string>();
}

Result<bool> Members::boolean(std::string_view name) const {
  CONFPOD_ASSIGN_OR_RETURN(const nlohmann::json* value, get(name));
  if (!value->is_boolean())
    return invalid(name, std::string("must be a boolean, got ") + json_type_name(*value));
  return value->get<bool>();
}

Result<std::uint64_t> Members::unsigned_integer(std::string_view name) const {
  CONFPOD_ASSIGN_OR_RETURN(const nlohmann::json* value, get(name));
  if (!value->is_number_unsigned())
    return invalid(name, std::string("must be an unsigned integer, got ") + json_type_name(*value));
  return value->get<std::uint64_t>();
}

Result<std::int64_t> Members::signed_integer(std::string_view name) const {
  CONFPOD_ASSIGN_OR_RETURN(const nlohmann::json* value, get(name));
  if (value->is_number_unsigned()) {
    const auto u = value->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return invalid(name, "out of the 64-bit signed range");
    return static_cast<std::int64_t>(u);
  }
  if (!value->is_number_integer())
    return invalid(name, std::string("must be an integer, got ") + json_type_name(*value));
  return value->get<std::int64_t>();
}

Result<const nlohmann::json*> Members::array(std::string_view name, std::size_t max_items) const {
  CONFPOD_ASSIGN_OR_RETURN(const nlohmann::json* value, get(name));
  if (!value->is_array())
    return invalid(name, std::string("must be an array, got ") + json_type_name(*value));
  if (value->size() > max_items)
    return invalid(name, "more than " + std::to_string(max_items) + " elements");
  return value;
}

Result<const nlohmann::json*> Members::object(std::string_view name,
                                              std::size_t max_members) const {
  CONFPOD_ASSIGN_OR_RETURN(const nlohmann::json* value, get(name));
  if (!value->is_object())
    return invalid(name, std::string("must be an object, got ") + json_type_name(*value));
  if (value->size() > max_members)
    return invalid(name, "more than " + std::to_string(max_members) + " members");
  return value;
}

}  // namespace confpod::guest::detail
