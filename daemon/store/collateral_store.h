// Attestation collateral in the daemon's SQLite file (table `collateral`, schema version 4 of
// store.h): what `confpodctl collateral import` brought, as the exact bytes, found again by
// kind and key (attest/collateral/collateral.h). Like the resource store it has its own
// connection (the KBS reads from its HTTP threads) and one mutex around it.
//
// Nothing here is trusted: the store only keeps bytes. Import verifies them for a clear early
// error, and the KBS verifies whatever it takes from here against the pinned roots again.
// Errors: collateral.not_found from remove(), collateral.store for SQLite failures.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/collateral/collateral.h"

namespace confpod::store {

struct CollateralEntry {
  collateral::Item item;
  std::string source;  // the file name it was imported from
  UnixSeconds imported_at = 0;
};

class SqliteCollateralStore {
 public:
  // Opens (creating and migrating if needed, as Store::open does) the database at `path`.
  static Result<std::unique_ptr<SqliteCollateralStore>> open(const std::string& path);
  ~SqliteCollateralStore();
  SqliteCollateralStore(const SqliteCollateralStore&) = delete;
  SqliteCollateralStore& operator=(const SqliteCollateralStore&) = delete;

  // Stores the items in one transaction; an item already there (same bytes) is kept as it
  // was. Returns, per item, whether it was new.
  Result<std::vector<bool>> add(const std::vector<collateral::Item>& items, std::string_view source,
                                UnixSeconds now);
  // Every entry, ordered by kind, key and id.
  Result<std::vector<CollateralEntry>> list();
  // The items of `kind` (with `key`, when given), newest expiry first.
  Result<std::vector<collateral::Item>> find(collateral::Kind kind,
                                             std::optional<std::string_view> key = std::nullopt);
  // By id (or a unique prefix of at least 4 digits); collateral.not_found otherwise.
  Result<CollateralEntry> remove(std::string_view id);
  // Changes with every add() that stored something and every remove(): lets the KBS drop
  // what it verified from older contents.
  std::uint64_t generation() const { return generation_.load(); }

 private:
  struct Impl;
  explicit SqliteCollateralStore(std::unique_ptr<Impl> impl);
  std::mutex mu_;
  std::unique_ptr<Impl> impl_;
  std::atomic<std::uint64_t> generation_{1};
};

}  // namespace confpod::store
