// The KBS resources in the daemon's SQLite file (table `resources`, schema version 2 of
// store.h): an implementation of kbs::ResourceStore that survives restarts.
//
// It opens its own connection to the same file as the pod Store (Store::open runs first, so
// the file is 0600 and migrated), because the KBS reads resources from its HTTP worker
// threads while the pod Store belongs to the event loop; SQLite's WAL lets both connections
// work on the file. Thread-safe (one mutex around the connection). Values are secrets: they
// are stored as BLOBs, never logged and never put into an error message.
// Errors: kbs.resource.path and kbs.resource.size from put(), kbs.store for SQLite failures.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/kbs/resources.h"

namespace confpod::store {

class SqliteResourceStore final : public kbs::ResourceStore {
 public:
  // Opens (creating and migrating if needed, as Store::open does) the database at `path`.
  static Result<std::unique_ptr<SqliteResourceStore>> open(const std::string& path);
  ~SqliteResourceStore() override;
  SqliteResourceStore(const SqliteResourceStore&) = delete;
  SqliteResourceStore& operator=(const SqliteResourceStore&) = delete;

  Result<std::optional<Bytes>> get(std::string_view path) override;
  // Inserts or replaces; checks the path (kbs::check_resource_path) and kbs::kMaxResourceSize.
  Status put(std::string_view path, ByteView value) override;
  // Removing an absent path succeeds.
  Status remove(std::string_view path) override;
  // Ordered by path.
  Result<std::vector<std::string>> list() override;

 private:
  struct Impl;
  explicit SqliteResourceStore(std::unique_ptr<Impl> impl);
  std::mutex mu_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace confpod::store
