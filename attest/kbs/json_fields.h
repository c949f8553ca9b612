// Typed reads of fields in untrusted JSON already parsed by parse_bounded_json: each checks
// type and size and names the field in its error, never throwing.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::kbs {

// obj[name] as a string of at most `max` bytes; error `code` otherwise.
Result<std::string> string_field(const nlohmann::json& obj, const char* name,
                                 const std::string& code, std::size_t max);

// A byte field given either as standard base64 text or as a JSON array of 0..255 (the form
// serde gives a Vec<u8>), at most `max` bytes; error `code` naming `name` otherwise.
Result<Bytes> byte_field(const nlohmann::json& value, std::size_t max, const std::string& code,
                         const std::string& name);

}  // namespace confpod::kbs
