#include "attest/kbs/json_fields.h"

namespace confpod::kbs {

Result<std::string> string_field(const nlohmann::json& obj, const char* name,
                                 const std::string& code, std::size_t max) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string())
    return make_error(code, std::string("'") + name + "' must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max)
    return make_error(
        code, std::string("'") + name + "' is longer than " + std::to_string(max) + " bytes");
  return s;
}

Result<Bytes> byte_field(const nlohmann::json& value, std::size_t max, const std::string& code,
                         const std::string& name) {
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    // Checked before decoding so that hostile text is never decoded past the bound.
    if (s.size() > (max / 3 + 1) * 4) return make_error(code, name + " is too long");
    auto b = from_base64(s);
    if (!b.ok()) return make_error(code, name + " is not base64: " + b.error().message);
    if (b->size() > max) return make_error(code, name + " is too long");
    return std::move(b).value();
  }
  if (value.is_array()) {
    if (value.size() > max) return make_error(code, name + " is too long");
    Bytes out;
    out.reserve(value.size());
    for (const auto& e : value) {
      if (!e.is_number_unsigned() || e.get<std::uint64_t>() > 255)
        return make_error(code, name + " array must hold integers 0..255");
      out.push_back(static_cast<std::uint8_t>(e.get<std::uint64_t>()));
    }
    return out;
  }
  return make_error(code, name + " must be base64 text or a byte array");
}

}  // namespace confpod::kbs
