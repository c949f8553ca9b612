// RAII over the SQLite C handles, shared by the pod store and the resource store (internal to
// daemon/store).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>

namespace confpod::store::sqlite {

struct DbClose {
  // close_v2: a connection with a statement still alive is closed when that statement goes,
  // instead of leaking.
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// Resets and unbinds a cached statement when the operation using it ends, however it ends.
class StmtUse {
 public:
  explicit StmtUse(sqlite3_stmt* stmt) : stmt_(stmt) {}
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;
  ~StmtUse() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
};

// A second connection to a database Store::open already created and migrated (the resource
// and collateral stores, read from the KBS's threads): defensive, no trusted schema, a busy
// timeout, and synchronous = FULL (a write that returned is on disk). Returns the SQLite result
// code; `out` holds the connection (for its error message) even when it is not SQLITE_OK.
inline int open_second_connection(const std::string& path, DbPtr& out, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  out.reset(raw);
  if (rc != SQLITE_OK) return rc;
  sqlite3* db = out.get();
  sqlite3_extended_result_codes(db, 1);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return sqlite3_exec(db, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr);
}

// The error code of a failed SQLite call: store.full when the disk (or the file system of the
// state directory) is full, so that callers hear "full", not a generic I/O failure; store.schema
// for a corrupt or foreign file; `fallback` for everything else.
inline std::string error_code(int rc, std::string_view fallback) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return "store.full";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return "store.schema";
    default:
      return std::string(fallback);
  }
}

// SQLITE_STATIC: every bound string outlives the step (StmtUse resets before it goes).
inline int bind_text(sqlite3_stmt* stmt, int index, std::string_view text) {
  return sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

}  // namespace confpod::store::sqlite
