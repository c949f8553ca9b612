#include "daemon/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "attest/base/unique_fd.h"
#include "daemon/store/group_commit.h"
#include "daemon/store/sqlite_handles.h"

namespace confpod::store {
namespace {

using sqlite::bind_text;
using sqlite::DbPtr;
using sqlite::StmtPtr;
using sqlite::StmtUse;

// 'cpod': marks the file as ours, so another program's SQLite file is refused, not migrated.
constexpr std::int32_t kApplicationId = 0x63706f64;
constexpr int kBusyTimeoutMs = 5000;

// One forward step of the schema. Applied with PRAGMA user_version = version in one
// transaction, so a crash mid-migration leaves the previous version intact.
struct Migration {
  int version;
  const char* sql;
};

// STRICT: a column holds exactly its declared type, so a decode never meets a surprise.
constexpr Migration kMigrations[] = {
    {1,
     "CREATE TABLE pods ("
     "  name TEXT PRIMARY KEY NOT NULL,"
     "  tee TEXT NOT NULL,"
     "  spec_toml TEXT NOT NULL,"
     "  state TEXT NOT NULL CHECK (state IN"
     "    ('created', 'starting', 'running', 'stopping', 'exited', 'failed')),"
     "  created_at_us INTEGER NOT NULL,"
     "  started_at_us INTEGER,"
     "  exit_status INTEGER,"
     "  measurement TEXT NOT NULL"
     ") STRICT, WITHOUT ROWID;"},
    // The KBS resources (SqliteResourceStore, resource_store.h). A rowid table: values are
    // up to 1 MiB, too large for the b-tree keys of WITHOUT ROWID.
    {2,
     "CREATE TABLE resources ("
     "  path TEXT PRIMARY KEY NOT NULL,"
     "  value BLOB NOT NULL"
     ") STRICT;"},
    // Where each pod sits on the network (its address is its lease: unique, kept until the
    // pod is removed), and the networks created over D-Bus.
    {3,
     "ALTER TABLE pods ADD COLUMN network TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE pods ADD COLUMN address TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE pods ADD COLUMN address6 TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE pods ADD COLUMN mac TEXT NOT NULL DEFAULT '';"
     "CREATE UNIQUE INDEX pods_address ON pods (address) WHERE address != '';"
     "CREATE TABLE networks ("
     "  name TEXT PRIMARY KEY NOT NULL,"
     "  bridge TEXT NOT NULL UNIQUE,"
     "  subnet TEXT NOT NULL,"
     "  subnet6 TEXT NOT NULL,"
     "  masquerade INTEGER NOT NULL CHECK (masquerade IN (0, 1)),"
     "  dns TEXT NOT NULL"
     ") STRICT;"},
    // Attestation collateral imported for hosts without internet (collateral_store.h): rows
    // of the exact served bytes, found by kind and key.
    {4,
     "CREATE TABLE collateral ("
     "  id TEXT PRIMARY KEY NOT NULL,"
     "  kind TEXT NOT NULL,"
     "  key TEXT NOT NULL,"
     "  subject TEXT NOT NULL,"
     "  not_after INTEGER NOT NULL,"
     "  data BLOB NOT NULL,"
     "  source TEXT NOT NULL,"
     "  imported_at INTEGER NOT NULL"
     ") STRICT;"
     "CREATE INDEX collateral_kind_key ON collateral (kind, key);"},
    // Why a pod last ended, beside its status (an OOM kill is 137 like any SIGKILL).
    {5, "ALTER TABLE pods ADD COLUMN exit_reason TEXT NOT NULL DEFAULT '';"},
    {6,
     "ALTER TABLE pods ADD COLUMN vsock_cid INTEGER NOT NULL DEFAULT 0;"
     "CREATE UNIQUE INDEX pods_vsock_cid ON pods (vsock_cid) WHERE vsock_cid != 0;"},
};
static_assert(std::size(kMigrations) == kSchemaVersion, "one migration per schema version");

constexpr std::array<std::pair<PodState, std::string_view>, 6> kStateNames = {{
    {PodState::kCreated, "created"},
    {PodState::kStarting, "starting"},
    {PodState::kRunning, "running"},
    {PodState::kStopping, "stopping"},
    {PodState::kExited, "exited"},
    {PodState::kFailed, "failed"},
}};

// A corrupt or foreign file is store.schema wherever it shows, a full disk store.full;
// anything else is `fallback` (store.open while opening, store.io afterwards).
Error sqlite_error(sqlite3* db, int rc, std::string_view fallback, const std::string& what) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return make_error(sqlite::error_code(rc, fallback),
                    what + ": " + detail + " (" + sqlite3_errstr(rc) + ")");
}

// `tail` set: a one-shot statement of a script; unset: a statement kept for the connection's life.
Result<StmtPtr> prepare(sqlite3* db, std::string_view sql, std::string_view code,
                        const std::string& what, const char** tail = nullptr) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    tail != nullptr ? 0 : SQLITE_PREPARE_PERSISTENT, &raw, tail);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, code, what);
  return stmt;
}

// Runs every statement of a fixed script (no parameters), stepping each to completion.
Status exec_script(sqlite3* db, std::string_view sql, std::string_view code,
                   const std::string& what) {
  while (!sql.empty()) {
    const char* tail = nullptr;
    CONFPOD_ASSIGN_OR_RETURN(StmtPtr stmt, prepare(db, sql, code, what, &tail));
    sql.remove_prefix(static_cast<std::size_t>(tail - sql.data()));
    if (!stmt) continue;  // whitespace or a comment
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return sqlite_error(db, rc, code, what);
  }
  return ok_status();
}

// A single-row, single-integer query (PRAGMA user_version and friends).
// `context` (the file) leads the message, so an error says which database it is about.
Result<std::int64_t> query_int(sqlite3* db, std::string_view sql, std::string_view code,
                               const std::string& context) {
  const std::string what = context + ": " + std::string(sql);
  CONFPOD_ASSIGN_OR_RETURN(StmtPtr stmt, prepare(db, sql, code, what));
  const int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return sqlite_error(db, rc, code, what);
  return sqlite3_column_int64(stmt.get(), 0);
}

Result<std::string> query_text(sqlite3* db, std::string_view sql, std::string_view code,
                               const std::string& context) {
  const std::string what = context + ": " + std::string(sql);
  CONFPOD_ASSIGN_OR_RETURN(StmtPtr stmt, prepare(db, sql, code, what));
  const int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return sqlite_error(db, rc, code, what);
  const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
  return std::string(text != nullptr ? reinterpret_cast<const char*>(text) : "");
}

// Rolls back unless committed: every early return inside a transaction undoes its writes.
class Transaction {
 public:
  static Result<Transaction> begin(sqlite3* db, std::string_view code, const std::string& what) {
    // IMMEDIATE takes the write lock up front, so a later statement cannot fail with BUSY
    // half-way through (the busy timeout applies here instead).
    CONFPOD_TRY(exec_script(db, "BEGIN IMMEDIATE", code, what + ": begin"));
    return Transaction(db);
  }
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    // A failed COMMIT may already have ended the transaction; only roll back a live one.
    if (db_ != nullptr && !sqlite3_get_autocommit(db_))
      (void)exec_script(db_, "ROLLBACK", "store.io", "rollback");
  }
  Status commit(std::string_view code, const std::string& what) {
    CONFPOD_TRY(exec_script(db_, "COMMIT", code, what + ": commit"));
    db_ = nullptr;
    return ok_status();
  }

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

int bind_optional(sqlite3_stmt* stmt, int index, const std::optional<std::int64_t>& value) {
  return value ? sqlite3_bind_int64(stmt, index, *value) : sqlite3_bind_null(stmt, index);
}

std::string column_text(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

std::optional<std::int64_t> column_optional(sqlite3_stmt* stmt, int column) {
  if (sqlite3_column_type(stmt, column) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(stmt, column);
}

std::string quoted(std::string_view name) { return "pod \"" + std::string(name) + "\""; }

// Refuses files that are not ours before anything is written to them.
Status check_identity(sqlite3* db, const std::string& path) {
  CONFPOD_ASSIGN_OR_RETURN(std::int64_t version,
                           query_int(db, "PRAGMA user_version", "store.open", path));
  CONFPOD_ASSIGN_OR_RETURN(std::int64_t app_id,
                           query_int(db, "PRAGMA application_id", "store.open", path));
  CONFPOD_ASSIGN_OR_RETURN(std::int64_t objects,
                           query_int(db, "SELECT count(*) FROM sqlite_schema", "store.open", path));
  if (version > kSchemaVersion)
    return make_error("store.schema", path + ": schema version " + std::to_string(version) +
                                          " is newer than this confpod understands (" +
                                          std::to_string(kSchemaVersion) + "); refusing to open");
  if (version < 0)
    return make_error("store.schema",
                      path + ": schema version " + std::to_string(version) + " is negative");
  const bool empty = version == 0 && app_id == 0 && objects == 0;
  if (!empty && app_id != kApplicationId)
    return make_error("store.schema", path + ": not a confpod database (application_id " +
                                          std::to_string(app_id) + ", user_version " +
                                          std::to_string(version) + ")");
  return ok_status();
}

// The file holds secrets (the KBS resources): it, and the -wal/-shm files SQLite creates with
// the mode of the database file, are 0600 whatever the umask, and an existing file that is
// readable by others (an older confpod, a copy) is narrowed before anything is read.
Status restrict_mode(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string file = path + suffix;
    const bool main_file = *suffix == '\0';
    // O_PATH: closing a real descriptor of a file drops every POSIX lock this process holds
    // on it, and another connection of this process (the daemon opens several) may hold
    // SQLite's: with them gone, another process closing its connection believed it was the
    // last one and deleted the WAL under confpodd. Closing an O_PATH descriptor drops none.
    UniqueFd fd(::open(file.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd && errno == ENOENT) {
      if (!main_file) continue;
      // First run: made 0600 before SQLite makes it; nothing here has it open yet.
      UniqueFd created(
          ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!created && errno != EEXIST)
        return make_error("store.open", file + ": " + std::strerror(errno));
      fd = UniqueFd(::open(file.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd) return make_error("store.open", file + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
      return make_error("store.open", file + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return make_error("store.open", file + ": not a regular file");
    if ((st.st_mode & 0777) == 0600) continue;
    // chmod through the descriptor (fchmod refuses O_PATH ones): the file checked above.
    const std::string self = "/proc/self/fd/" + std::to_string(fd.get());
    if (::chmod(self.c_str(), 0600) != 0)
      return make_error("store.open", file + ": chmod 0600: " + std::strerror(errno));
  }
  return ok_status();
}

Status migrate(sqlite3* db, const std::string& path) {
  for (const Migration& m : kMigrations) {
    const std::string what = path + ": migration to schema " + std::to_string(m.version);
    CONFPOD_ASSIGN_OR_RETURN(Transaction tx, Transaction::begin(db, "store.open", what));
    // Read under the write lock: another process may have migrated since we looked.
    CONFPOD_ASSIGN_OR_RETURN(std::int64_t current,
                             query_int(db, "PRAGMA user_version", "store.open", path));
    if (current >= m.version) continue;
    if (current != m.version - 1)
      return make_error("store.schema", what + ": database is at version " +
                                            std::to_string(current) + ", expected " +
                                            std::to_string(m.version - 1));
    CONFPOD_TRY(exec_script(db, m.sql, "store.open", what));
    // PRAGMA takes no bound parameters; both values are compile-time integers.
    CONFPOD_TRY(exec_script(db,
                            "PRAGMA application_id = " + std::to_string(kApplicationId) +
                                "; PRAGMA user_version = " + std::to_string(m.version),
                            "store.open", what));
    CONFPOD_TRY(tx.commit("store.open", what));
  }
  return ok_status();
}

}  // namespace

namespace detail {
std::string_view migration_sql(int version) {
  for (const Migration& m : kMigrations)
    if (m.version == version) return m.sql;
  return {};
}
std::int64_t application_id() { return kApplicationId; }
}  // namespace detail

std::string_view to_string(PodState state) {
  for (const auto& [s, name] : kStateNames)
    if (s == state) return name;
  return "failed";
}

std::optional<PodState> pod_state_from_string(std::string_view text) {
  for (const auto& [s, name] : kStateNames)
    if (name == text) return s;
  return std::nullopt;
}

struct Store::Impl {
  // Declared first so it is destroyed last, after every statement prepared on it.
  DbPtr db;
  std::string path;
  int schema_version = 0;
  StmtPtr insert;
  StmtPtr select_one;
  StmtPtr select_all;
  StmtPtr update;
  StmtPtr remove;

  Error io_error(int rc, const std::string& what) const {
    return sqlite_error(db.get(), rc, "store.io", path + ": " + what);
  }

  // Decodes the columns of the SELECTs below (same order as PodRecord).
  Result<PodRecord> read_row(sqlite3_stmt* stmt) const {
    PodRecord pod;
    pod.name = column_text(stmt, 0);
    pod.tee = column_text(stmt, 1);
    pod.spec_toml = column_text(stmt, 2);
    const std::string state = column_text(stmt, 3);
    auto parsed = pod_state_from_string(state);
    if (!parsed)
      return make_error("store.schema",
                        path + ": " + quoted(pod.name) + " has unknown state \"" + state + "\"");
    pod.state = *parsed;
    pod.created_at_us = sqlite3_column_int64(stmt, 4);
    pod.started_at_us = column_optional(stmt, 5);
    pod.exit_status = column_optional(stmt, 6);
    pod.measurement = column_text(stmt, 7);
    pod.network = column_text(stmt, 8);
    pod.address = column_text(stmt, 9);
    pod.address6 = column_text(stmt, 10);
    pod.mac = column_text(stmt, 11);
    pod.exit_reason = column_text(stmt, 12);
    const std::int64_t cid = sqlite3_column_int64(stmt, 13);
    if (cid < 0 || cid > 0xFFFFFFFFll)
      return make_error("store.schema", path + ": " + quoted(pod.name) + " has vsock CID " +
                                            std::to_string(cid) + ", not a 32-bit CID");
    pod.vsock_cid = static_cast<std::uint32_t>(cid);
    return pod;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

Result<Store> Store::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  CONFPOD_TRY(restrict_mode(path));
  sqlite3* raw = nullptr;
  // NOFOLLOW: the state file is never reached through a symlink someone else planted.
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  const int open_rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  impl->db.reset(raw);  // owned before anything can fail, even when open itself failed
  if (open_rc != SQLITE_OK) return sqlite_error(impl->db.get(), open_rc, "store.open", path);
  sqlite3* db = impl->db.get();
  sqlite3_extended_result_codes(db, 1);
  // Hardening against a tampered file: no writable_schema tricks, no schema-defined functions.
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);

  // The first read of the header: a non-SQLite file fails here with NOTADB -> store.schema.
  CONFPOD_TRY(check_identity(db, path));

  CONFPOD_ASSIGN_OR_RETURN(std::string mode,
                           query_text(db, "PRAGMA journal_mode = WAL", "store.open", path));
  if (mode != "wal")
    return make_error("store.open", path + ": cannot enable WAL (journal_mode is " + mode + ")");
  CONFPOD_TRY(exec_script(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "store.open",
                          path + ": pragmas"));

  CONFPOD_TRY(migrate(db, path));
  CONFPOD_ASSIGN_OR_RETURN(std::int64_t version,
                           query_int(db, "PRAGMA user_version", "store.open", path));
  impl->schema_version = static_cast<int>(version);

  const std::string what = path + ": prepare";
  CONFPOD_ASSIGN_OR_RETURN(
      impl->insert,
      prepare(db,
              "INSERT INTO pods (name, tee, spec_toml, state, created_at_us, started_at_us,"
              " exit_status, measurement, network, address, address6, mac, exit_reason,"
              " vsock_cid)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
              "store.open", what));
  CONFPOD_ASSIGN_OR_RETURN(
      impl->select_one,
      prepare(db,
              "SELECT name, tee, spec_toml, state, created_at_us, started_at_us, exit_status,"
              " measurement, network, address, address6, mac, exit_reason, vsock_cid"
              " FROM pods WHERE name = ?1",
              "store.open", what));
  CONFPOD_ASSIGN_OR_RETURN(
      impl->select_all,
      prepare(db,
              "SELECT name, tee, spec_toml, state, created_at_us, started_at_us, exit_status,"
              " measurement, network, address, address6, mac, exit_reason, vsock_cid"
              " FROM pods ORDER BY name",
              "store.open", what));
  CONFPOD_ASSIGN_OR_RETURN(
      impl->update,
      prepare(db,
              "UPDATE pods SET tee = ?2, spec_toml = ?3, state = ?4, started_at_us = ?5,"
              " exit_status = ?6, measurement = ?7, exit_reason = ?8 WHERE name = ?1",
              "store.open", what));
  CONFPOD_ASSIGN_OR_RETURN(impl->remove,
                           prepare(db, "DELETE FROM pods WHERE name = ?1", "store.open", what));
  return Store(std::move(impl));
}

Status Store::use_group_commit(GroupCommit& group_commit) {
  return group_commit.attach(impl_->db.get());
}

Status Store::insert_pod(const PodRecord& pod) {
  const std::string what = "insert " + quoted(pod.name);
  sqlite3* db = impl_->db.get();
  CONFPOD_ASSIGN_OR_RETURN(Transaction tx,
                           Transaction::begin(db, "store.io", impl_->path + ": " + what));
  {
    StmtUse stmt(impl_->insert.get());
    int rc = bind_text(stmt.get(), 1, pod.name);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 2, pod.tee);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 3, pod.spec_toml);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 4, to_string(pod.state));
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt.get(), 5, pod.created_at_us);
    if (rc == SQLITE_OK) rc = bind_optional(stmt.get(), 6, pod.started_at_us);
    if (rc == SQLITE_OK) rc = bind_optional(stmt.get(), 7, pod.exit_status);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 8, pod.measurement);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 9, pod.network);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 10, pod.address);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 11, pod.address6);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 12, pod.mac);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 13, pod.exit_reason);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(stmt.get(), 14, pod.vsock_cid);
    if (rc != SQLITE_OK) return impl_->io_error(rc, what);
    rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
      return make_error("store.exists", quoted(pod.name) + " already exists");
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      // Which unique index: SQLite names the column ("UNIQUE constraint failed: pods.x").
      const std::string_view message = sqlite3_errmsg(db);
      if (message.find("vsock_cid") != std::string_view::npos)
        return make_error("store.taken",
                          "vsock CID " + std::to_string(pod.vsock_cid) + " is already taken");
      return make_error("store.taken", "address " + pod.address + " is already leased");
    }
    if (rc != SQLITE_DONE) return impl_->io_error(rc, what);
  }
  return tx.commit("store.io", impl_->path + ": " + what);
}

Result<std::optional<PodRecord>> Store::get_pod(std::string_view name) {
  const std::string what = "read " + quoted(name);
  StmtUse stmt(impl_->select_one.get());
  int rc = bind_text(stmt.get(), 1, name);
  if (rc != SQLITE_OK) return impl_->io_error(rc, what);
  rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_DONE) return std::optional<PodRecord>();
  if (rc != SQLITE_ROW) return impl_->io_error(rc, what);
  CONFPOD_ASSIGN_OR_RETURN(PodRecord pod, impl_->read_row(stmt.get()));
  return std::optional<PodRecord>(std::move(pod));
}

Result<std::vector<PodRecord>> Store::list_pods() {
  StmtUse stmt(impl_->select_all.get());
  std::vector<PodRecord> pods;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    CONFPOD_ASSIGN_OR_RETURN(PodRecord pod, impl_->read_row(stmt.get()));
    pods.push_back(std::move(pod));
  }
  if (rc != SQLITE_DONE) return impl_->io_error(rc, "list pods");
  return pods;
}

Status Store::update_pod(const PodRecord& pod) {
  const std::string what = "update " + quoted(pod.name);
  sqlite3* db = impl_->db.get();
  CONFPOD_ASSIGN_OR_RETURN(Transaction tx,
                           Transaction::begin(db, "store.io", impl_->path + ": " + what));
  {
    StmtUse stmt(impl_->update.get());
    int rc = bind_text(stmt.get(), 1, pod.name);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 2, pod.tee);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 3, pod.spec_toml);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 4, to_string(pod.state));
    if (rc == SQLITE_OK) rc = bind_optional(stmt.get(), 5, pod.started_at_us);
    if (rc == SQLITE_OK) rc = bind_optional(stmt.get(), 6, pod.exit_status);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 7, pod.measurement);
    if (rc == SQLITE_OK) rc = bind_text(stmt.get(), 8, pod.exit_reason);
    if (rc != SQLITE_OK) return impl_->io_error(rc, what);
    rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_DONE) return impl_->io_error(rc, what);
    if (sqlite3_changes64(db) == 0)
      return make_error("store.not_found", quoted(pod.name) + " does not exist");
  }
  return tx.commit("store.io", impl_->path + ": " + what);
}

Status Store::remove_pod(std::string_view name) {
  const std::string what = "remove " + quoted(name);
  sqlite3* db = impl_->db.get();
  CONFPOD_ASSIGN_OR_RETURN(Transaction tx,
                           Transaction::begin(db, "store.io", impl_->path + ": " + what));
  {
    StmtUse stmt(impl_->remove.get());
    int rc = bind_text(stmt.get(), 1, name);
    if (rc != SQLITE_OK) return impl_->io_error(rc, what);
    rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_DONE) return impl_->io_error(rc, what);
    if (sqlite3_changes64(db) == 0)
      return make_error("store.not_found", quoted(name) + " does not exist");
  }
  return tx.commit("store.io", impl_->path + ": " + what);
}

Status Store::insert_network(const NetworkRecord& network) {
  const std::string what = "insert network " + quoted(network.name);
  sqlite3* db = impl_->db.get();
  CONFPOD_ASSIGN_OR_RETURN(Transaction tx,
                           Transaction::begin(db, "store.io", impl_->path + ": " + what));
  {
    CONFPOD_ASSIGN_OR_RETURN(
        StmtPtr insert,
        prepare(db,
                "INSERT INTO networks (name, bridge, subnet, subnet6, masquerade, dns)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                "store.io", impl_->path + ": " + what));
    int rc = bind_text(insert.get(), 1, network.name);
    if (rc == SQLITE_OK) rc = bind_text(insert.get(), 2, network.bridge);
    if (rc == SQLITE_OK) rc = bind_text(insert.get(), 3, network.subnet);
    if (rc == SQLITE_OK) rc = bind_text(insert.get(), 4, network.subnet6);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int(insert.get(), 5, network.masquerade ? 1 : 0);
    if (rc == SQLITE_OK) rc = bind_text(insert.get(), 6, network.dns);
    if (rc != SQLITE_OK) return impl_->io_error(rc, what);
    rc = sqlite3_step(insert.get());
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
      return make_error("store.exists", "network " + quoted(network.name) + " or bridge " +
                                            quoted(network.bridge) + " already exists");
    if (rc != SQLITE_DONE) return impl_->io_error(rc, what);
  }
  return tx.commit("store.io", impl_->path + ": " + what);
}

Status Store::remove_network(std::string_view name) {
  const std::string what = "remove network " + quoted(name);
  sqlite3* db = impl_->db.get();
  CONFPOD_ASSIGN_OR_RETURN(Transaction tx,
                           Transaction::begin(db, "store.io", impl_->path + ": " + what));
  {
    CONFPOD_ASSIGN_OR_RETURN(StmtPtr remove, prepare(db, "DELETE FROM networks WHERE name = ?1",
                                                     "store.io", impl_->path + ": " + what));
    int rc = bind_text(remove.get(), 1, name);
    if (rc == SQLITE_OK) rc = sqlite3_step(remove.get());
    if (rc != SQLITE_DONE) return impl_->io_error(rc, what);
    if (sqlite3_changes64(db) == 0)
      return make_error("store.not_found", "network " + quoted(name) + " does not exist");
  }
  return tx.commit("store.io", impl_->path + ": " + what);
}

Result<std::vector<NetworkRecord>> Store::list_networks() {
  const std::string what = impl_->path + ": list networks";
  CONFPOD_ASSIGN_OR_RETURN(
      StmtPtr select,
      prepare(impl_->db.get(),
              "SELECT name, bridge, subnet, subnet6, masquerade, dns FROM networks ORDER BY name",
              "store.io", what));
  std::vector<NetworkRecord> out;
  int rc;
  while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
    NetworkRecord n;
    n.name = column_text(select.get(), 0);
    n.bridge = column_text(select.get(), 1);
    n.subnet = column_text(select.get(), 2);
    n.subnet6 = column_text(select.get(), 3);
    n.masquerade = sqlite3_column_int(select.get(), 4) != 0;
    n.dns = column_text(select.get(), 5);
    out.push_back(std::move(n));
  }
  if (rc != SQLITE_DONE) return impl_->io_error(rc, "list networks");
  return out;
}

int Store::schema_version() const { return impl_ ? impl_->schema_version : 0; }

}  // namespace confpod::store
