// Where the KBS keeps the secrets it releases. The daemon backs this with its SQLite file;
// InMemoryResourceStore is a complete implementation for tests and for a KBS whose secrets
// are loaded at start. Values are secrets: implementations never log them.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::kbs {

// Largest resource value the KBS stores or releases.
inline constexpr std::size_t kMaxResourceSize = 1u << 20;

// Checks a resource path "<repository>/<type>/<tag>": exactly three non-empty segments of
// [A-Za-z0-9._-] (no "." or ".." segment), at most 255 bytes. Error "kbs.resource.path".
Status check_resource_path(std::string_view path);

class ResourceStore {
 public:
  virtual ~ResourceStore() = default;
  // nullopt when absent; an error only when the store itself fails ("kbs.store").
  virtual Result<std::optional<Bytes>> get(std::string_view path) = 0;
  virtual Status put(std::string_view path, ByteView value) = 0;
  // Removing an absent path succeeds.
  virtual Status remove(std::string_view path) = 0;
  virtual Result<std::vector<std::string>> list() = 0;
};

// Thread-safe. put() checks the path and the size limit.
class InMemoryResourceStore final : public ResourceStore {
 public:
  Result<std::optional<Bytes>> get(std::string_view path) override;
  Status put(std::string_view path, ByteView value) override;
  Status remove(std::string_view path) override;
  Result<std::vector<std::string>> list() override;

 private:
  std::mutex mu_;
  std::map<std::string, Bytes, std::less<>> values_;
};

}  // namespace confpod::kbs
