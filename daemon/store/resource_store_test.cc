#include "daemon/store/resource_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "daemon/store/store.h"
#include "tests/support/process.h"

namespace confpod::store {
namespace {

using confpod::testing::TempDir;

std::string db_path(const TempDir& dir) { return dir.path() + "/confpod.db"; }

std::unique_ptr<SqliteResourceStore> open_ok(const std::string& path) {
  auto s = SqliteResourceStore::open(path);
  if (!s.ok()) {
    ADD_FAILURE() << s.error().describe();
    return nullptr;
  }
  return std::move(s).value();
}

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0xffffffffu;
  return st.st_mode & 07777;
}

TEST(SqliteResourceStore, PutGetListRemove) {
  TempDir dir;
  auto store = open_ok(db_path(dir));
  ASSERT_NE(store, nullptr);
  auto missing = store->get("default/key/one");
  ASSERT_TRUE(missing.ok()) << missing.error().describe();
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(store->put("default/key/one", bytes_of("first")).ok());
  ASSERT_TRUE(store->put("default/key/two", bytes_of(std::string("\0\x01\xff", 3))).ok());
  ASSERT_TRUE(store->put("default/key/empty", Bytes{}).ok());
  // Replaces.
  ASSERT_TRUE(store->put("default/key/one", bytes_of("second")).ok());

  auto one = store->get("default/key/one");
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ(**one, bytes_of("second"));
  auto two = store->get("default/key/two");
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_EQ(**two, bytes_of(std::string("\0\x01\xff", 3)));
  auto empty = store->get("default/key/empty");
  ASSERT_TRUE(empty.ok() && empty->has_value());
  EXPECT_TRUE((*empty)->empty());

  auto list = store->list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list,
            (std::vector<std::string>{"default/key/empty", "default/key/one", "default/key/two"}));

  ASSERT_TRUE(store->remove("default/key/one").ok());
  ASSERT_TRUE(store->remove("default/key/one").ok());  // absent: still fine
  auto gone = store->get("default/key/one");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  list = store->list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

TEST(SqliteResourceStore, RejectsBadPathsAndOversizeValues) {
  TempDir dir;
  auto store = open_ok(db_path(dir));
  ASSERT_NE(store, nullptr);
  for (const char* bad : {"", "a/b", "a/b/c/d", "a/../c", "a/b c/d", "a//c", "a/b/é"}) {
    Status s = store->put(bad, bytes_of("v"));
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, "kbs.resource.path") << bad;
  }
  Bytes big(kbs::kMaxResourceSize + 1, 0x41);
  Status s = store->put("a/b/c", big);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "kbs.resource.size");
  big.pop_back();
  ASSERT_TRUE(store->put("a/b/c", big).ok());
  auto back = store->get("a/b/c");
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ((*back)->size(), kbs::kMaxResourceSize);
  auto list = store->list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, std::vector<std::string>{"a/b/c"});
}

TEST(SqliteResourceStore, PersistsAcrossReopenBesidePods) {
  TempDir dir;
  {
    auto store = open_ok(db_path(dir));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->put("repo/type/tag", bytes_of("persisted")).ok());
  }
  {
    // The pod store on the same file sees schema 2 and is unaffected.
    auto pods = Store::open(db_path(dir));
    ASSERT_TRUE(pods.ok()) << pods.error().describe();
    EXPECT_EQ(pods->schema_version(), kSchemaVersion);
  }
  auto store = open_ok(db_path(dir));
  ASSERT_NE(store, nullptr);
  auto value = store->get("repo/type/tag");
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, bytes_of("persisted"));
}

// A database written by a build that knew only schema 1 keeps its pods when it meets this one.
TEST(SqliteResourceStore, MigratesVersionOneDatabaseKeepingPods) {
  TempDir dir;
  const std::string path = db_path(dir);
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
    // Schema 1 exactly as migration 1 creates it (the store's own SQL), with a pod in it.
    const std::string v1 =
        "PRAGMA journal_mode = WAL;" + std::string(detail::migration_sql(1)) +
        "INSERT INTO pods VALUES ('web', 'snp', 'name = \"web\"', 'exited', 1700000000000000,"
        "  1700000001000000, 0, 'ab');"
        "PRAGMA application_id = " +
        std::to_string(detail::application_id()) + "; PRAGMA user_version = 1;";
    ASSERT_FALSE(detail::migration_sql(1).empty());
    ASSERT_EQ(sqlite3_exec(db.get(), v1.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db.get());
  }
  ::chmod(path.c_str(), 0644);  // as an older build under umask 022 left it

  auto resources = open_ok(path);
  ASSERT_NE(resources, nullptr);
  ASSERT_TRUE(resources->put("default/key/k", bytes_of("v")).ok());
  EXPECT_EQ(mode_of(path), 0600u);

  auto pods = Store::open(path);
  ASSERT_TRUE(pods.ok()) << pods.error().describe();
  EXPECT_EQ(pods->schema_version(), kSchemaVersion);
  auto web = pods->get_pod("web");
  ASSERT_TRUE(web.ok() && web->has_value()) << (web.ok() ? "absent" : web.error().describe());
  EXPECT_EQ((*web)->state, PodState::kExited);
  EXPECT_EQ((*web)->tee, "snp");
  EXPECT_EQ((*web)->started_at_us, 1700000001000000);
  EXPECT_EQ((*web)->measurement, "ab");
  EXPECT_EQ((*web)->vsock_cid, 0u);  // schema 6: pods from before vsock use virtio-serial
}

TEST(SqliteResourceStore, FilesAreOwnerOnlyWhateverTheUmask) {
  TempDir dir;
  const std::string path = db_path(dir);
  const mode_t old = ::umask(0);
  auto store = SqliteResourceStore::open(path);
  ::umask(old);
  ASSERT_TRUE(store.ok()) << store.error().describe();
  ASSERT_TRUE((*store)->put("default/key/k", bytes_of("v")).ok());
  // The connection is open, so the WAL and its index exist.
  ASSERT_TRUE(std::filesystem::exists(path + "-wal"));
  ASSERT_TRUE(std::filesystem::exists(path + "-shm"));
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(path + "-wal"), 0600u);
  EXPECT_EQ(mode_of(path + "-shm"), 0600u);
}

TEST(SqliteResourceStore, NarrowsExistingWalAndShm) {
  TempDir dir;
  const std::string path = db_path(dir);
  auto first = open_ok(path);
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->put("default/key/k", bytes_of("v")).ok());
  for (const char* suffix : {"", "-wal", "-shm"})
    ASSERT_EQ(::chmod((path + suffix).c_str(), 0644), 0) << suffix;
  auto second = open_ok(path);
  ASSERT_NE(second, nullptr);
  for (const char* suffix : {"", "-wal", "-shm"})
    EXPECT_EQ(mode_of(path + suffix), 0600u) << suffix;
}

TEST(SqliteResourceStore, OpenFailureIsKbsStore) {
  auto s = SqliteResourceStore::open("/no/such/dir/confpod.db");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "kbs.store");
}

}  // namespace
}  // namespace confpod::store
