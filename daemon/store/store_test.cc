// Pod store: CRUD and its error codes, persistence across reopen, the pragmas really in effect,
// refusal of too-new, foreign and corrupt files, and durability under SIGKILL at random moments.
#include "daemon/store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "tests/support/process.h"

namespace confpod::store {
namespace {

using confpod::testing::TempDir;

// A second, independent connection, to look at the file the way SQLite sees it.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3* raw = nullptr;
    rc_ = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    db_.reset(raw);
  }
  bool ok() const { return rc_ == SQLITE_OK; }
  // Runs `sql` and returns the first column of the first row ("" when there is none), or
  // "error: ..." so a failure shows up in the assertion that compares it.
  std::string query(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK)
      return std::string("error: ") + sqlite3_errmsg(db_.get());
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
    const int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return "";
    if (rc != SQLITE_ROW) return std::string("error: ") + sqlite3_errmsg(db_.get());
    const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
    return text ? reinterpret_cast<const char*>(text) : "NULL";
  }

 private:
  struct Close {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Close> db_;
  int rc_ = SQLITE_ERROR;
};

PodRecord sample(const std::string& name) {
  PodRecord p;
  p.name = name;
  p.tee = "snp";
  p.spec_toml = "name = \"" + name + "\"\ntee = \"snp\"\n";
  p.state = PodState::kCreated;
  p.created_at_us = 1'700'000'000'000'000;
  p.measurement = std::string(96, 'a');
  return p;
}

Store open_ok(const std::string& path) {
  auto s = Store::open(path);
  if (!s.ok()) ADD_FAILURE() << s.error().describe();
  return std::move(s).value();
}

std::string db_path(const TempDir& dir) { return dir.path() + "/state.db"; }

TEST(PodStateNames, RoundTripAndRejectUnknown) {
  const PodState all[] = {PodState::kCreated,  PodState::kStarting, PodState::kRunning,
                          PodState::kStopping, PodState::kExited,   PodState::kFailed};
  const char* names[] = {"created", "starting", "running", "stopping", "exited", "failed"};
  for (std::size_t i = 0; i < std::size(all); ++i) {
    EXPECT_EQ(to_string(all[i]), names[i]);
    EXPECT_EQ(pod_state_from_string(names[i]), all[i]);
  }
  EXPECT_EQ(pod_state_from_string("Running"), std::nullopt);
  EXPECT_EQ(pod_state_from_string(""), std::nullopt);
}

TEST(Store, FreshDatabaseIsMigratedAndInWalMode) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  EXPECT_EQ(store.schema_version(), kSchemaVersion);
  RawDb raw(db_path(dir));
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw.query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.query("PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw.query("PRAGMA application_id"), std::to_string(0x63706f64));
  EXPECT_EQ(raw.query("SELECT name FROM sqlite_schema WHERE type = 'table'"), "pods");
  EXPECT_TRUE(std::filesystem::exists(db_path(dir) + "-wal"));
}

TEST(Store, InsertThenGetReturnsEveryField) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  PodRecord full = sample("web");
  full.tee = "tdx";
  full.spec_toml =
      "multi\nline \"quoted\" 'single' \\ unicode \xc3\xa9 and a NUL:" + std::string(1, '\0') +
      ":end";
  full.state = PodState::kRunning;
  full.created_at_us = -5;
  full.started_at_us = INT64_MAX;
  full.exit_status = 137;
  full.measurement = "00ff";
  full.vsock_cid = 0xFFFFFFFEu;  // the largest a guest may have
  ASSERT_TRUE(store.insert_pod(full).ok());
  PodRecord bare = sample("db");  // optionals unset stay unset (NULL, not 0)
  ASSERT_TRUE(store.insert_pod(bare).ok());

  auto got = store.get_pod("web");
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, full);
  auto got_bare = store.get_pod("db");
  ASSERT_TRUE(got_bare.ok());
  ASSERT_TRUE(got_bare->has_value());
  EXPECT_EQ(**got_bare, bare);
  EXPECT_FALSE((*got_bare)->started_at_us.has_value());
  EXPECT_FALSE((*got_bare)->exit_status.has_value());
}

TEST(Store, GetMissingIsEmptyNotAnError) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  auto got = store.get_pod("nope");
  ASSERT_TRUE(got.ok()) << got.error().describe();
  EXPECT_FALSE(got->has_value());
}

TEST(Store, DuplicateInsertIsExistsAndKeepsTheOriginal) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  ASSERT_TRUE(store.insert_pod(sample("a")).ok());
  PodRecord other = sample("a");
  other.tee = "none";
  other.spec_toml = "different";
  auto st = store.insert_pod(other);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "store.exists");
  EXPECT_NE(st.error().message.find("\"a\""), std::string::npos) << st.error().message;
  auto got = store.get_pod("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(**got, sample("a"));
  // The failed insert's transaction was rolled back: the connection still writes.
  EXPECT_TRUE(store.insert_pod(sample("b")).ok());
}

TEST(Store, ListIsOrderedByName) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  auto empty = store.list_pods();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  for (const char* n : {"charlie", "alpha", "bravo", "alpha-2"})
    ASSERT_TRUE(store.insert_pod(sample(n)).ok());
  auto pods = store.list_pods();
  ASSERT_TRUE(pods.ok()) << pods.error().describe();
  std::vector<std::string> names;
  for (const PodRecord& p : *pods) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "alpha-2", "bravo", "charlie"}));
  EXPECT_EQ((*pods)[2], sample("bravo"));
}

TEST(Store, UpdateReplacesAllButNameAndCreatedAt) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  ASSERT_TRUE(store.insert_pod(sample("a")).ok());
  PodRecord changed = sample("a");
  changed.tee = "tdx";
  changed.spec_toml = "new spec";
  changed.state = PodState::kExited;
  changed.created_at_us = 42;  // ignored: creation time is fixed at insert
  changed.started_at_us = 7;
  changed.exit_status = 3;
  changed.measurement = "bb";
  ASSERT_TRUE(store.update_pod(changed).ok());
  PodRecord expected = changed;
  expected.created_at_us = sample("a").created_at_us;
  auto got = store.get_pod("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(**got, expected);

  // And back to unset optionals.
  expected.started_at_us.reset();
  expected.exit_status.reset();
  ASSERT_TRUE(store.update_pod(expected).ok());
  got = store.get_pod("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(**got, expected);
}

TEST(Store, UpdateMissingIsNotFound) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  auto st = store.update_pod(sample("ghost"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "store.not_found");
  EXPECT_NE(st.error().message.find("ghost"), std::string::npos);
  auto pods = store.list_pods();
  ASSERT_TRUE(pods.ok());
  EXPECT_TRUE(pods->empty());
}

TEST(Store, RemoveDeletesOnceThenNotFound) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  ASSERT_TRUE(store.insert_pod(sample("a")).ok());
  ASSERT_TRUE(store.insert_pod(sample("b")).ok());
  ASSERT_TRUE(store.remove_pod("a").ok());
  auto got = store.get_pod("a");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  auto again = store.remove_pod("a");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "store.not_found");
  auto pods = store.list_pods();
  ASSERT_TRUE(pods.ok());
  ASSERT_EQ(pods->size(), 1u);
  EXPECT_EQ((*pods)[0].name, "b");
  // The name is re-usable after removal.
  EXPECT_TRUE(store.insert_pod(sample("a")).ok());
}

// A vsock CID belongs to one pod at a time (0, "virtio-serial", to any number of them), and
// is free again once its pod is removed.
TEST(Store, VsockCidsAreHeldByOnePodEach) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  ASSERT_TRUE(store.insert_pod(sample("serial-a")).ok());
  ASSERT_TRUE(store.insert_pod(sample("serial-b")).ok());
  PodRecord first = sample("vsock-a");
  first.vsock_cid = 10000;
  ASSERT_TRUE(store.insert_pod(first).ok());
  PodRecord second = sample("vsock-b");
  second.vsock_cid = 10000;
  Status taken = store.insert_pod(second);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, "store.taken") << "not a name clash";
  EXPECT_EQ(taken.error().message, "vsock CID 10000 is already taken");
  auto absent = store.get_pod("vsock-b");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
  ASSERT_TRUE(store.remove_pod("vsock-a").ok());
  ASSERT_TRUE(store.insert_pod(second).ok());
  auto got = store.get_pod("vsock-b");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->vsock_cid, 10000u);
}

TEST(Store, NamesAreBoundNeverSpliced) {
  TempDir dir;
  Store store = open_ok(db_path(dir));
  const std::string evil = "x'); DROP TABLE pods; --";
  ASSERT_TRUE(store.insert_pod(sample(evil)).ok());
  auto got = store.get_pod(evil);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->name, evil);
  auto miss = store.get_pod("x");
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
  ASSERT_TRUE(store.remove_pod(evil).ok());
}

TEST(Store, ReopenSeesEveryCommittedChange) {
  TempDir dir;
  PodRecord updated = sample("b");
  updated.state = PodState::kFailed;
  updated.exit_status = 1;
  {
    Store store = open_ok(db_path(dir));
    ASSERT_TRUE(store.insert_pod(sample("a")).ok());
    ASSERT_TRUE(store.insert_pod(sample("b")).ok());
    ASSERT_TRUE(store.insert_pod(sample("c")).ok());
    ASSERT_TRUE(store.update_pod(updated).ok());
    ASSERT_TRUE(store.remove_pod("c").ok());
  }
  Store store = open_ok(db_path(dir));
  EXPECT_EQ(store.schema_version(), kSchemaVersion);
  auto pods = store.list_pods();
  ASSERT_TRUE(pods.ok());
  EXPECT_EQ(*pods, (std::vector<PodRecord>{sample("a"), updated}));
}

TEST(Store, TwoConnectionsSeeEachOthersCommits) {
  TempDir dir;
  Store first = open_ok(db_path(dir));
  Store second = open_ok(db_path(dir));
  ASSERT_TRUE(first.insert_pod(sample("a")).ok());
  auto got = second.get_pod("a");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->has_value());
  auto dup = second.insert_pod(sample("a"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "store.exists");
}

// The daemon opens the database several times (pod store, then the KBS's stores, each of
// which opens a Store first). Opening it again must not drop the POSIX locks SQLite holds for
// the first connection: without them, another process closing its connection (here the
// sqlite3 shell an administrator might use) believed it was the last one, checkpointed and
// deleted the WAL that the daemon went on writing to.
TEST(Store, AnotherOpenKeepsTheFirstConnectionsLocks) {
  TempDir dir;
  const std::string path = dir.path() + "/confpod.db";
  auto first = Store::open(path);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  ASSERT_TRUE(first->insert_pod(sample("a")).ok());
  { ASSERT_TRUE(Store::open(path).ok()); }
  struct stat before {};
  ASSERT_EQ(::stat((path + "-wal").c_str(), &before), 0);
  auto shell = testing::run_process({"/usr/bin/sqlite3", path, "SELECT count(*) FROM pods"});
  EXPECT_EQ(shell.out, "1\n") << shell.err;
  struct stat after {};
  ASSERT_EQ(::stat((path + "-wal").c_str(), &after), 0) << "the WAL was deleted under the store";
  EXPECT_EQ(after.st_ino, before.st_ino);
  ASSERT_TRUE(first->insert_pod(sample("b")).ok());
  auto again = Store::open(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->list_pods()->size(), 2u);
}

TEST(Store, MovedStoreKeepsItsConnection) {
  TempDir dir;
  Store original = open_ok(db_path(dir));
  ASSERT_TRUE(original.insert_pod(sample("a")).ok());
  Store moved(std::move(original));
  ASSERT_TRUE(moved.insert_pod(sample("b")).ok());
  Store assigned = open_ok(dir.path() + "/other.db");
  assigned = std::move(moved);
  auto pods = assigned.list_pods();
  ASSERT_TRUE(pods.ok());
  EXPECT_EQ(pods->size(), 2u);
}

TEST(Store, TooNewSchemaIsRefusedAndLeftAlone) {
  TempDir dir;
  { Store store = open_ok(db_path(dir)); }
  {
    RawDb raw(db_path(dir));
    ASSERT_EQ(raw.query("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1)), "");
  }
  auto s = Store::open(db_path(dir));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "store.schema");
  EXPECT_NE(s.error().message.find("schema version " + std::to_string(kSchemaVersion + 1)),
            std::string::npos)
      << s.error().message;
  RawDb raw(db_path(dir));
  EXPECT_EQ(raw.query("PRAGMA user_version"), std::to_string(kSchemaVersion + 1));
}

TEST(Store, ForeignSqliteDatabaseIsRefusedNotMigrated) {
  TempDir dir;
  {
    RawDb raw(db_path(dir));
    ASSERT_EQ(raw.query("CREATE TABLE accounts (id INTEGER)"), "");
  }
  auto s = Store::open(db_path(dir));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "store.schema");
  EXPECT_NE(s.error().message.find("not a confpod database"), std::string::npos)
      << s.error().message;
  RawDb raw(db_path(dir));
  EXPECT_EQ(raw.query("SELECT count(*) FROM sqlite_schema WHERE name = 'pods'"), "0");
}

TEST(Store, EmptyFileIsANewDatabase) {
  TempDir dir;
  const std::string path = dir.write("state.db", "");
  Store store = open_ok(path);
  EXPECT_EQ(store.schema_version(), kSchemaVersion);
  EXPECT_TRUE(store.insert_pod(sample("a")).ok());
}

TEST(Store, TextFileIsNotADatabase) {
  TempDir dir;
  const std::string path =
      dir.write("state.db", std::string(8192, 'x') + "this is a config file, not SQLite\n");
  auto s = Store::open(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "store.schema");
  EXPECT_NE(s.error().message.find(path), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("not a database"), std::string::npos) << s.error().message;
}

TEST(Store, GarbageAfterASqliteHeaderIsRefused) {
  TempDir dir;
  std::string bytes("SQLite format 3\0", 16);
  std::mt19937 rng(7);
  while (bytes.size() < 3 * 4096) bytes.push_back(static_cast<char>(rng()));
  const std::string path = dir.write("state.db", bytes);
  auto s = Store::open(path);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "store.schema") << s.error().describe();
}

TEST(Store, CorruptTablePageIsASchemaErrorNotGarbageData) {
  TempDir dir;
  {
    Store store = open_ok(db_path(dir));
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(store.insert_pod(sample("p" + std::to_string(i))).ok());
  }
  // Closing the last connection checkpointed the WAL: the rows are in the main file now.
  ASSERT_FALSE(std::filesystem::exists(db_path(dir) + "-wal"));
  {
    RawDb raw(db_path(dir));
    ASSERT_EQ(raw.query("PRAGMA page_size"), "4096");
    ASSERT_EQ(raw.query("SELECT rootpage FROM sqlite_schema WHERE name = 'pods'"), "2");
  }
  {
    std::fstream f(db_path(dir), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);  // page 2: the root of the pods table
    const std::string junk(4096, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    ASSERT_TRUE(f.good());
  }
  auto s = Store::open(db_path(dir));
  if (!s.ok()) {
    EXPECT_EQ(s.error().code, "store.schema") << s.error().describe();
    return;
  }
  auto pods = s->list_pods();
  ASSERT_FALSE(pods.ok());
  EXPECT_EQ(pods.error().code, "store.schema") << pods.error().describe();
  EXPECT_NE(pods.error().message.find("malformed"), std::string::npos) << pods.error().message;
}

TEST(Store, UnopenablePathIsAnOpenError) {
  TempDir dir;
  auto missing_dir = Store::open(dir.path() + "/no/such/dir/state.db");
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.error().code, "store.open");
  EXPECT_NE(missing_dir.error().message.find("/no/such/dir/state.db"), std::string::npos)
      << missing_dir.error().message;

  auto directory = Store::open(dir.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().code, "store.open") << directory.error().describe();
}

TEST(Store, SymlinkIsNotFollowed) {
  TempDir dir;
  { Store store = open_ok(db_path(dir)); }
  const std::string link = dir.path() + "/link.db";
  std::filesystem::create_symlink(db_path(dir), link);
  auto s = Store::open(link);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "store.open") << s.error().describe();
}

// --- crash consistency -------------------------------------------------------------------

// Every field of a row is derived from one counter, so a row assembled from two different
// writes (or a torn one) cannot pass `consistent`.
constexpr int kCrashPods = 6;

PodRecord crash_record(int pod, std::int64_t counter, std::int64_t created) {
  static const char* kTees[] = {"none", "snp", "tdx"};
  PodRecord p;
  p.name = "pod-" + std::to_string(pod);
  p.tee = kTees[counter % 3];
  // 100 bytes .. ~12 KiB: small rows and rows spilling over several overflow pages.
  p.spec_toml = "counter = " + std::to_string(counter) + "\n# " +
                std::string(100 + (counter % 5) * 3000, static_cast<char>('a' + counter % 26)) +
                "\n";
  p.state = static_cast<PodState>(counter % 6);
  p.created_at_us = created;
  if (counter % 7 != 0) p.started_at_us = counter * 10;
  p.exit_status = -counter;
  char hex[32];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(counter));
  p.measurement = std::string(hex) + hex + hex + hex + hex + hex;
  return p;
}

bool is_remove(std::int64_t counter) { return counter % 11 == 0; }
int pod_of(std::int64_t counter) { return static_cast<int>(counter % kCrashPods); }

// -1: no row; otherwise the counter the row was written with.
constexpr std::int64_t kAbsent = -1;

struct Shared {
  std::atomic<std::int64_t> ops{0};
  std::atomic<std::int64_t> inflight{0};        // counter of the operation under way
  std::atomic<std::int64_t> acked[kCrashPods];  // state of each pod after its last acked op
};
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

// The writer: runs until killed. Never returns; exit codes name what failed.
[[noreturn]] void crash_writer(const std::string& path, Shared* shared, std::int64_t first) {
  auto opened = Store::open(path);
  if (!opened.ok()) _exit(10);
  Store store = std::move(opened).value();
  for (std::int64_t counter = first;; ++counter) {
    const int pod = pod_of(counter);
    shared->inflight.store(counter);
    if (is_remove(counter)) {
      auto st = store.remove_pod("pod-" + std::to_string(pod));
      if (!st.ok() && st.error().code != "store.not_found") _exit(11);
      shared->acked[pod].store(kAbsent);
    } else {
      auto existing = store.get_pod("pod-" + std::to_string(pod));
      if (!existing.ok()) _exit(12);
      if (existing->has_value()) {
        if (!store.update_pod(crash_record(pod, counter, (*existing)->created_at_us)).ok())
          _exit(13);
      } else if (!store.insert_pod(crash_record(pod, counter, counter)).ok()) {
        _exit(14);
      }
      shared->acked[pod].store(counter);
    }
    shared->ops.fetch_add(1);
  }
}

// The counter a row was written with, or a failure naming what does not add up.
std::int64_t check_consistent(const PodRecord& row, int pod) {
  std::int64_t counter = -1;
  if (std::sscanf(row.spec_toml.c_str(), "counter = %ld", &counter) != 1) {
    ADD_FAILURE() << row.name << ": spec_toml has no counter";
    return -1;
  }
  EXPECT_GT(row.created_at_us, 0) << row.name;
  EXPECT_LE(row.created_at_us, counter) << row.name;
  EXPECT_EQ(row, crash_record(pod, counter, row.created_at_us))
      << row.name << " is not one whole write of counter " << counter;
  return counter;
}

TEST(StoreCrash, SigkillAtRandomMomentsLeavesWholeRowsAndEveryAckedCommit) {
  TempDir dir;
  const std::string path = db_path(dir);
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);

  void* mem =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) Shared;
  struct Unmap {
    void* p;
    ~Unmap() { munmap(p, sizeof(Shared)); }
  } unmap{mem};

  std::int64_t expected[kCrashPods];
  for (auto& e : expected) e = kAbsent;
  std::int64_t total_ops = 0;
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    shared->ops.store(0);
    shared->inflight.store(0);
    for (int p = 0; p < kCrashPods; ++p) shared->acked[p].store(expected[p]);

    // Round 0 may die while creating and migrating the database; later ones mid-write.
    const std::int64_t min_ops = round == 0 ? 0 : std::uniform_int_distribution<int>(1, 150)(rng);
    const int extra_us = std::uniform_int_distribution<int>(0, 3000)(rng);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) crash_writer(path, shared, (round + 1) * 1'000'000LL + 1);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int status = 0;
    bool exited = false;
    while (shared->ops.load() < min_ops && std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (!exited) {
      std::this_thread::sleep_for(std::chrono::microseconds(extra_us));
      kill(pid, SIGKILL);
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
    }
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "writer ended on its own: exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ASSERT_GE(shared->ops.load(), min_ops) << "writer made no progress before the deadline";
    total_ops += shared->ops.load();

    auto reopened = Store::open(path);
    ASSERT_TRUE(reopened.ok()) << reopened.error().describe();
    EXPECT_EQ(reopened->schema_version(), kSchemaVersion);
    {
      RawDb raw(path);
      EXPECT_EQ(raw.query("PRAGMA integrity_check"), "ok");
    }
    auto rows = reopened->list_pods();
    ASSERT_TRUE(rows.ok()) << rows.error().describe();
    std::int64_t found[kCrashPods];
    for (auto& f : found) f = kAbsent;
    for (const PodRecord& row : *rows) {
      int pod = -1;
      ASSERT_EQ(std::sscanf(row.name.c_str(), "pod-%d", &pod), 1) << row.name;
      ASSERT_TRUE(pod >= 0 && pod < kCrashPods) << row.name;
      found[pod] = check_consistent(row, pod);
    }
    // Each pod is what its last acknowledged commit left, or what the one operation under
    // way at the kill would leave: never older, never anything else.
    const std::int64_t inflight = shared->inflight.load();
    for (int p = 0; p < kCrashPods; ++p) {
      const std::int64_t acked = shared->acked[p].load();
      bool allowed = found[p] == acked;
      if (inflight != 0 && pod_of(inflight) == p)
        allowed = allowed || found[p] == (is_remove(inflight) ? kAbsent : inflight);
      EXPECT_TRUE(allowed) << "pod-" << p << ": found " << found[p] << ", acked " << acked
                           << ", in flight " << inflight;
      expected[p] = found[p];
    }
  }
  // The kills must have landed among real writes, or the test proved nothing.
  EXPECT_GT(total_ops, kRounds);
}

}  // namespace
}  // namespace confpod::store
