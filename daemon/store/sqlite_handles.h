// RAII over the SQLite C handles, shared by the pod store and the resource store (internal to
// daemon/store).
#pragma once

#include <sqlite3.h>

#include <memory>
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

// SQLITE_STATIC: every bound string outlives the step (StmtUse resets before it goes).
inline int bind_text(sqlite3_stmt* stmt, int index, std::string_view text) {
  return sqlite3_bind_text64(stmt, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

}  // namespace confpod::store::sqlite
