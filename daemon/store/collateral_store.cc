#include "daemon/store/collateral_store.h"

#include <sqlite3.h>

#include <utility>

#include "daemon/store/sqlite_handles.h"
#include "daemon/store/store.h"

namespace confpod::store {
namespace {

using sqlite::bind_text;
using sqlite::DbPtr;
using sqlite::StmtPtr;

constexpr int kBusyTimeoutMs = 5000;
constexpr const char* kColumns = "id, kind, key, subject, not_after, data, source, imported_at";

std::string column_text(sqlite3_stmt* stmt, int i) {
  const unsigned char* text = sqlite3_column_text(stmt, i);
  const int size = sqlite3_column_bytes(stmt, i);
  return text != nullptr
             ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size))
             : std::string();
}

}  // namespace

struct SqliteCollateralStore::Impl {
  DbPtr db;
  std::string path;

  Error error(int rc, const std::string& what) const {
    const char* detail = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    return make_error(sqlite::error_code(rc, "collateral.store"),
                      path + ": " + what + ": " + detail);
  }

  Result<StmtPtr> prepare(const std::string& sql, const std::string& what) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return error(rc, what);
    return stmt;
  }

  Status exec(const char* sql, const std::string& what) {
    const int rc = sqlite3_exec(db.get(), sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return error(rc, what);
    return ok_status();
  }

  // A row of kColumns; nullopt for a kind this version does not know (written by a newer one).
  static std::optional<CollateralEntry> entry_of(sqlite3_stmt* stmt) {
    auto kind = collateral::parse_kind(column_text(stmt, 1));
    if (!kind) return std::nullopt;
    CollateralEntry e;
    e.item.kind = *kind;
    e.item.key = column_text(stmt, 2);
    e.item.subject = column_text(stmt, 3);
    e.item.not_after = sqlite3_column_int64(stmt, 4);
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, 5));
    const int size = sqlite3_column_bytes(stmt, 5);
    if (data != nullptr && size > 0) e.item.data.assign(data, data + size);
    e.source = column_text(stmt, 6);
    e.imported_at = sqlite3_column_int64(stmt, 7);
    return e;
  }

  Result<std::vector<CollateralEntry>> query(const std::string& sql, const std::string& what,
                                             const std::vector<std::string>& args) {
    CONFPOD_ASSIGN_OR_RETURN(StmtPtr stmt, prepare(sql, what));
    for (std::size_t i = 0; i < args.size(); ++i) {
      const int rc = bind_text(stmt.get(), static_cast<int>(i + 1), args[i]);
      if (rc != SQLITE_OK) return error(rc, what);
    }
    std::vector<CollateralEntry> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW)
      if (auto e = entry_of(stmt.get())) out.push_back(std::move(*e));
    if (rc != SQLITE_DONE) return error(rc, what);
    return out;
  }
};

SqliteCollateralStore::SqliteCollateralStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteCollateralStore::~SqliteCollateralStore() = default;

Result<std::unique_ptr<SqliteCollateralStore>> SqliteCollateralStore::open(
    const std::string& path) {
  {
    // Creates the file 0600, sets WAL and migrates to the schema with the collateral table.
    auto pods = Store::open(path);
    if (!pods.ok()) return make_error("collateral.store", pods.error().describe());
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const int rc = sqlite::open_second_connection(path, impl->db, kBusyTimeoutMs);
  if (rc != SQLITE_OK) return impl->error(rc, "open");
  return std::unique_ptr<SqliteCollateralStore>(new SqliteCollateralStore(std::move(impl)));
}

Result<std::vector<bool>> SqliteCollateralStore::add(const std::vector<collateral::Item>& items,
                                                     std::string_view source, UnixSeconds now) {
  std::lock_guard lock(mu_);
  const std::string what = "import collateral from " + std::string(source.substr(0, 200));
  CONFPOD_TRY(impl_->exec("BEGIN IMMEDIATE", what));
  std::vector<bool> added;
  auto body = [&]() -> Status {
    CONFPOD_ASSIGN_OR_RETURN(
        StmtPtr insert,
        impl_->prepare(std::string("INSERT INTO collateral (") + kColumns +
                           ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
                       what));
    for (const collateral::Item& item : items) {
      sqlite3_reset(insert.get());
      sqlite3_clear_bindings(insert.get());
      const std::string id = item.id();
      int rc = bind_text(insert.get(), 1, id);
      if (rc == SQLITE_OK) rc = bind_text(insert.get(), 2, collateral::kind_name(item.kind));
      if (rc == SQLITE_OK) rc = bind_text(insert.get(), 3, item.key);
      if (rc == SQLITE_OK) rc = bind_text(insert.get(), 4, item.subject);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(insert.get(), 5, item.not_after);
      if (rc == SQLITE_OK)
        rc =
            sqlite3_bind_blob64(insert.get(), 6, item.data.data(), item.data.size(), SQLITE_STATIC);
      if (rc == SQLITE_OK) rc = bind_text(insert.get(), 7, source);
      if (rc == SQLITE_OK) rc = sqlite3_bind_int64(insert.get(), 8, now);
      if (rc == SQLITE_OK) rc = sqlite3_step(insert.get());
      if (rc != SQLITE_DONE) return impl_->error(rc, what);
      added.push_back(sqlite3_changes(impl_->db.get()) > 0);
    }
    return impl_->exec("COMMIT", what);
  };
  Status done = body();
  if (!done.ok()) {
    (void)impl_->exec("ROLLBACK", what);
    return done.error();
  }
  for (bool a : added)
    if (a) {
      ++generation_;
      break;
    }
  return added;
}

Result<std::vector<CollateralEntry>> SqliteCollateralStore::list() {
  std::lock_guard lock(mu_);
  return impl_->query(std::string("SELECT ") + kColumns + " FROM collateral ORDER BY kind, key, id",
                      "list collateral", {});
}

Result<std::vector<collateral::Item>> SqliteCollateralStore::find(
    collateral::Kind kind, std::optional<std::string_view> key) {
  std::lock_guard lock(mu_);
  std::vector<std::string> args = {std::string(collateral::kind_name(kind))};
  std::string sql = std::string("SELECT ") + kColumns + " FROM collateral WHERE kind = ?1";
  if (key) {
    sql += " AND key = ?2";
    args.emplace_back(*key);
  }
  sql += " ORDER BY not_after DESC, id";
  CONFPOD_ASSIGN_OR_RETURN(auto entries, impl_->query(sql, "find collateral", args));
  std::vector<collateral::Item> out;
  for (CollateralEntry& e : entries) out.push_back(std::move(e.item));
  return out;
}

Result<CollateralEntry> SqliteCollateralStore::remove(std::string_view id) {
  std::lock_guard lock(mu_);
  const std::string shown(id.substr(0, 32));
  bool hex = id.size() >= 4 && id.size() <= 16;
  for (char c : id) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex)
    return make_error("collateral.not_found",
                      "\"" + shown + "\" is not a collateral id (4 to 16 lower-case hex digits)");
  CONFPOD_ASSIGN_OR_RETURN(auto matches,
                           impl_->query(std::string("SELECT ") + kColumns +
                                            " FROM collateral WHERE substr(id, 1, length(?1)) = ?1",
                                        "find collateral " + shown, {std::string(id)}));
  if (matches.empty()) return make_error("collateral.not_found", "no collateral with id " + shown);
  if (matches.size() > 1)
    return make_error("collateral.not_found", "id " + shown + " is the start of " +
                                                  std::to_string(matches.size()) +
                                                  " ids; give more digits");
  CONFPOD_ASSIGN_OR_RETURN(StmtPtr remove, impl_->prepare("DELETE FROM collateral WHERE id = ?1",
                                                          "remove collateral " + shown));
  const std::string full = matches[0].item.id();
  int rc = bind_text(remove.get(), 1, full);
  if (rc == SQLITE_OK) rc = sqlite3_step(remove.get());
  if (rc != SQLITE_DONE) return impl_->error(rc, "remove collateral " + shown);
  ++generation_;
  return std::move(matches[0]);
}

}  // namespace confpod::store
