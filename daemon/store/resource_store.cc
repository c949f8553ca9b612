#include "daemon/store/resource_store.h"

#include <sqlite3.h>

#include <utility>

#include "daemon/store/sqlite_handles.h"
#include "daemon/store/store.h"

namespace confpod::store {
namespace {

using sqlite::bind_text;
using sqlite::DbPtr;
using sqlite::StmtPtr;
using sqlite::StmtUse;

constexpr int kBusyTimeoutMs = 5000;

}  // namespace

struct SqliteResourceStore::Impl {
  DbPtr db;  // first: destroyed after the statements
  std::string path;
  StmtPtr select_one;
  StmtPtr select_all;
  StmtPtr upsert;
  StmtPtr remove;

  // The message names the file, the operation and the resource path, never the value.
  Error error(int rc, const std::string& what) const {
    const char* detail = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    return make_error(sqlite::error_code(rc, "kbs.store"), path + ": " + what + ": " + detail);
  }

  Status prepare(const char* sql, StmtPtr& out) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    out.reset(raw);
    if (rc != SQLITE_OK) return error(rc, "prepare");
    return ok_status();
  }
};

SqliteResourceStore::SqliteResourceStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteResourceStore::~SqliteResourceStore() = default;

Result<std::unique_ptr<SqliteResourceStore>> SqliteResourceStore::open(const std::string& path) {
  {
    // Creates the file 0600, sets WAL and migrates to the schema with the resources table.
    auto pods = Store::open(path);
    if (!pods.ok()) {
      Error e = pods.take_error();
      return make_error("kbs.store", e.describe());
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // Per connection: a put() that returned is on disk (synchronous = FULL).
  const int rc = sqlite::open_second_connection(path, impl->db, kBusyTimeoutMs);
  if (rc != SQLITE_OK) return impl->error(rc, "open");
  // Each statement is one implicit transaction: a crash leaves the old value or the new one.
  CONFPOD_TRY(impl->prepare("SELECT value FROM resources WHERE path = ?1", impl->select_one));
  CONFPOD_TRY(impl->prepare("SELECT path FROM resources ORDER BY path", impl->select_all));
  CONFPOD_TRY(
      impl->prepare("INSERT INTO resources (path, value) VALUES (?1, ?2)"
                    " ON CONFLICT (path) DO UPDATE SET value = excluded.value",
                    impl->upsert));
  CONFPOD_TRY(impl->prepare("DELETE FROM resources WHERE path = ?1", impl->remove));
  return std::unique_ptr<SqliteResourceStore>(new SqliteResourceStore(std::move(impl)));
}

Result<std::optional<Bytes>> SqliteResourceStore::get(std::string_view path) {
  std::lock_guard lock(mu_);
  StmtUse stmt(impl_->select_one.get());
  int rc = bind_text(stmt.get(), 1, path);
  if (rc != SQLITE_OK) return impl_->error(rc, "read resource");
  rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_DONE) return std::optional<Bytes>();
  if (rc != SQLITE_ROW) return impl_->error(rc, "read resource");
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt.get(), 0));
  const int size = sqlite3_column_bytes(stmt.get(), 0);
  Bytes value;
  if (data != nullptr && size > 0) value.assign(data, data + size);
  return std::optional<Bytes>(std::move(value));
}

Status SqliteResourceStore::put(std::string_view path, ByteView value) {
  CONFPOD_TRY(kbs::check_resource_path(path));
  if (value.size() > kbs::kMaxResourceSize)
    return make_error("kbs.resource.size", "resource value larger than " +
                                               std::to_string(kbs::kMaxResourceSize) + " bytes");
  std::lock_guard lock(mu_);
  StmtUse stmt(impl_->upsert.get());
  int rc = bind_text(stmt.get(), 1, path);
  // A zero-length blob (not NULL) for an empty value: the column is NOT NULL.
  if (rc == SQLITE_OK)
    rc = value.empty()
             ? sqlite3_bind_zeroblob(stmt.get(), 2, 0)
             : sqlite3_bind_blob64(stmt.get(), 2, value.data(), value.size(), SQLITE_STATIC);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_DONE) return impl_->error(rc, "write resource");
  return ok_status();
}

Status SqliteResourceStore::remove(std::string_view path) {
  std::lock_guard lock(mu_);
  StmtUse stmt(impl_->remove.get());
  int rc = bind_text(stmt.get(), 1, path);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_DONE) return impl_->error(rc, "remove resource");
  return ok_status();
}

Result<std::vector<std::string>> SqliteResourceStore::list() {
  std::lock_guard lock(mu_);
  StmtUse stmt(impl_->select_all.get());
  std::vector<std::string> out;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
    const int size = sqlite3_column_bytes(stmt.get(), 0);
    out.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "",
                     static_cast<std::size_t>(size));
  }
  if (rc != SQLITE_DONE) return impl_->error(rc, "list resources");
  return out;
}

}  // namespace confpod::store
