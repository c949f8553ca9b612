// Small pieces both strict TOML readers share (the pod spec, daemon/spec/spec.cc, and
// confpod.toml, daemon/config/config.cc); each keeps its own error format.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace confpod::spec::toml_util {

// "prefix.key", or "key" at the top level: the dotted path errors name.
inline std::string join(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// "a string", "an integer", ...: what a value was, for "must be X, got Y".
inline std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

struct UnknownKey {
  std::uint32_t line = 0;
  std::string key;
};

// The first key of `table` not in `allowed`. Unknown keys are errors in both readers: a
// misspelt key must not silently leave its default in place.
inline std::optional<UnknownKey> unknown_key(const toml::table& table,
                                             std::initializer_list<std::string_view> allowed) {
  for (auto&& [key, value] : table) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key.str() == a;
    if (!known) return UnknownKey{key.source().begin.line, std::string(key.str())};
    (void)value;
  }
  return std::nullopt;
}

}  // namespace confpod::spec::toml_util
