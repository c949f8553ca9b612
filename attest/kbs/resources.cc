#include "attest/kbs/resources.h"

#include <openssl/crypto.h>

namespace confpod::kbs {

Status check_resource_path(std::string_view path) {
  if (path.empty() || path.size() > 255)
    return make_error("kbs.resource.path", "resource path must be 1..255 bytes");
  int segments = 0;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = path.find('/', start);
    std::string_view seg = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    ++segments;
    if (seg.empty() || seg == "." || seg == "..")
      return make_error("kbs.resource.path", "empty or dot segment in resource path");
    for (char c : seg) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
      if (!ok)
        return make_error("kbs.resource.path",
                          "resource path may only contain [A-Za-z0-9._-] and '/'");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (segments != 3)
    return make_error("kbs.resource.path", "resource path must be <repository>/<type>/<tag>, got " +
                                               std::to_string(segments) + " segments");
  return ok_status();
}

Result<std::optional<Bytes>> InMemoryResourceStore::get(std::string_view path) {
  std::lock_guard lock(mu_);
  auto it = values_.find(path);
  if (it == values_.end()) return std::optional<Bytes>();
  return std::optional<Bytes>(it->second);
}

Status InMemoryResourceStore::put(std::string_view path, ByteView value) {
  CONFPOD_TRY(check_resource_path(path));
  if (value.size() > kMaxResourceSize)
    return make_error("kbs.resource.size",
                      "resource value larger than " + std::to_string(kMaxResourceSize) + " bytes");
  std::lock_guard lock(mu_);
  auto& slot = values_[std::string(path)];
  OPENSSL_cleanse(slot.data(), slot.size());
  slot.assign(value.begin(), value.end());
  return ok_status();
}

Status InMemoryResourceStore::remove(std::string_view path) {
  std::lock_guard lock(mu_);
  auto it = values_.find(path);
  if (it != values_.end()) {
    OPENSSL_cleanse(it->second.data(), it->second.size());
    values_.erase(it);
  }
  return ok_status();
}

Result<std::vector<std::string>> InMemoryResourceStore::list() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [path, value] : values_) out.push_back(path);
  return out;
}

}  // namespace confpod::kbs
