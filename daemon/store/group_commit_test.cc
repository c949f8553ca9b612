// GroupCommit: commits on an attached connection stop syncing on the committing thread, the
// flusher makes them durable and covers many with one flush, after_flush() answers in order
// and only once a flush began after the call, and checkpoints still happen (on the flusher).
//
// Who syncs is observed through a VFS that forwards every call to SQLite's own "unix" VFS and
// counts xSync per thread: the real SQLite, the real file, only watched.
#include "daemon/store/group_commit.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/store/store.h"
#include "tests/support/process.h"

namespace confpod::store {
namespace {

using namespace std::chrono_literals;
using confpod::testing::TempDir;

// --- the counting VFS ---
thread_local int syncs_on_this_thread = 0;
std::atomic<int> syncs_anywhere{0};

struct CountingFile {
  sqlite3_file base;
  sqlite3_file* real;  // points just past this struct
};
sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<CountingFile*>(f)->real; }

int c_close(sqlite3_file* f) {
  int rc = real_of(f)->pMethods ? real_of(f)->pMethods->xClose(real_of(f)) : SQLITE_OK;
  return rc;
}
int c_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xRead(real_of(f), b, n, o);
}
int c_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xWrite(real_of(f), b, n, o);
}
int c_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}
int c_sync(sqlite3_file* f, int flags) {
  ++syncs_on_this_thread;
  ++syncs_anywhere;
  return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int c_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}
int c_lock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); }
int c_unlock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
int c_check(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int c_fcntl(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int c_sector(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int c_device(sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); }
int c_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return real_of(f)->pMethods->xShmMap(real_of(f), region, size, extend, out);
}
int c_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void c_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int c_shm_unmap(sqlite3_file* f, int del) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}
int c_fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** out) {
  return real_of(f)->pMethods->xFetch(real_of(f), o, n, out);
}
int c_unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
  return real_of(f)->pMethods->xUnfetch(real_of(f), o, p);
}

const sqlite3_io_methods kCountingMethods = {
    3,          c_close,       c_read,      c_write, c_truncate, c_sync,   c_size,
    c_lock,     c_unlock,      c_check,     c_fcntl, c_sector,   c_device, c_shm_map,
    c_shm_lock, c_shm_barrier, c_shm_unmap, c_fetch, c_unfetch};

sqlite3_vfs* unix_vfs() { return sqlite3_vfs_find("unix"); }

int c_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* file = reinterpret_cast<CountingFile*>(f);
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  file->base.pMethods = nullptr;
  int rc = unix_vfs()->xOpen(unix_vfs(), name, file->real, flags, out_flags);
  if (file->real->pMethods) file->base.pMethods = &kCountingMethods;
  return rc;
}

// Registered once, as the default: Store::open and GroupCommit's connection both use it.
void install_counting_vfs() {
  static sqlite3_vfs vfs = [] {
    sqlite3_vfs v = *unix_vfs();
    v.zName = "confpod-counting";
    v.szOsFile = static_cast<int>(sizeof(CountingFile)) + unix_vfs()->szOsFile;
    v.xOpen = c_open;
    v.pNext = nullptr;
    return v;
  }();
  static const int registered = sqlite3_vfs_register(&vfs, 1);
  ASSERT_EQ(registered, SQLITE_OK);
}

// --- helpers ---
PodRecord pod(const std::string& name) {
  PodRecord p;
  p.name = name;
  p.tee = "none";
  p.spec_toml = "[pod]\nname = \"" + name + "\"\n" + std::string(3000, '#') + "\n";
  p.created_at_us = 1;
  return p;
}

// Runs dispatch() whenever the flusher says so, until `done` or 10 s.
template <typename Pred>
bool pump_until(GroupCommit& gc, Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    pollfd pfd{gc.ready_fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 50) > 0) gc.dispatch();
  }
  return true;
}

// Asks for an acknowledgement of what was committed so far and waits for it: its status, or
// nothing if it did not come within pump_until's deadline.
std::optional<Status> acknowledgement(GroupCommit& gc) {
  std::optional<Status> answer;
  gc.after_flush([&](const Status& s) { answer = s; });
  if (!pump_until(gc, [&] { return answer.has_value(); })) return std::nullopt;
  return answer;
}

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    install_counting_vfs();
    path_ = dir_.path() + "/confpod.db";
  }
  // A flusher, and the pod store's connection handed to it.
  void open_attached() {
    auto gc = GroupCommit::start(path_);
    ASSERT_TRUE(gc.ok()) << gc.error().describe();
    gc_ = std::move(gc).value();
    auto store = Store::open(path_);
    ASSERT_TRUE(store.ok()) << store.error().describe();
    store_.emplace(std::move(store).value());
    ASSERT_TRUE(store_->use_group_commit(*gc_).ok());
  }
  TempDir dir_;
  std::string path_;
  std::unique_ptr<GroupCommit> gc_;  // declared first: outlives the store's connection
  std::optional<Store> store_;
};

TEST_F(GroupCommitTest, CommitsStopSyncingOnTheirThreadAndTheFlusherMakesThemDurable) {
  auto gc = GroupCommit::start(path_);
  ASSERT_TRUE(gc.ok()) << gc.error().describe();
  auto store = Store::open(path_);
  ASSERT_TRUE(store.ok()) << store.error().describe();

  // Before: synchronous=FULL, every commit syncs on the committing thread.
  syncs_on_this_thread = 0;
  ASSERT_TRUE(store->insert_pod(pod("before")).ok());
  EXPECT_GE(syncs_on_this_thread, 1);

  ASSERT_TRUE(store->use_group_commit(**gc).ok());
  syncs_on_this_thread = 0;
  const std::uint64_t flushes_before = (*gc)->flushes();
  constexpr int kCommits = 50;
  for (int i = 0; i < kCommits; ++i)
    ASSERT_TRUE(store->insert_pod(pod("p" + std::to_string(i))).ok());
  EXPECT_EQ(syncs_on_this_thread, 0) << "a commit waited for the disk on the loop thread";

  auto acknowledged = acknowledgement(**gc);
  ASSERT_TRUE(acknowledged.has_value());
  EXPECT_TRUE(acknowledged->ok()) << acknowledged->error().describe();
  const std::uint64_t flushes = (*gc)->flushes() - flushes_before;
  EXPECT_GE(flushes, 1u);
  // Grouped: the flusher never syncs more often than there were commits (on this machine's
  // disk, far less often).
  EXPECT_LE(flushes, static_cast<std::uint64_t>(kCommits));

  // Everything is there for another connection.
  auto again = Store::open(path_);
  ASSERT_TRUE(again.ok());
  auto all = again->list_pods();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), kCommits + 1u);
}

TEST_F(GroupCommitTest, AfterFlushAnswersInOrderAndOnlyAfterAFlushThatBeganLater) {
  ASSERT_NO_FATAL_FAILURE(open_attached());
  auto& gc = gc_;
  auto& store = store_;

  // Nothing committed since the last flush: answered at once.
  bool at_once = false;
  gc->after_flush([&](const Status& s) { at_once = s.ok(); });
  EXPECT_TRUE(at_once);

  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    const std::uint64_t flushes_before_commit = gc->flushes();
    ASSERT_TRUE(store->insert_pod(pod("q" + std::to_string(i))).ok());
    gc->after_flush([&, i, flushes_before_commit](const Status& s) {
      EXPECT_TRUE(s.ok());
      order.push_back(i);
      // A flush covering the commit began after it, so it completed after it too.
      EXPECT_GT(gc->flushes(), flushes_before_commit);
    });
  }
  ASSERT_TRUE(pump_until(*gc, [&] { return order.size() == 5; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(GroupCommitTest, CheckpointsRunOnTheFlusherOnceTheWalIsLarge) {
  ASSERT_NO_FATAL_FAILURE(open_attached());
  auto& gc = gc_;
  auto& store = store_;
  const auto db_size_before = std::filesystem::file_size(path_);
  // ~3 KiB per pod, 4 KiB pages: well past kCheckpointFrames pages of WAL.
  syncs_on_this_thread = 0;
  for (int i = 0; i < 1500; ++i) ASSERT_TRUE(store->insert_pod(pod("c" + std::to_string(i))).ok());
  const int syncs_here = syncs_on_this_thread;
  ASSERT_TRUE(pump_until(*gc, [&] { return gc->checkpoints() >= 1; }));
  // A checkpoint on this thread would sync the WAL and the database, on every commit past
  // the threshold. What may remain here: SQLite syncing the WAL header when a commit restarts
  // the WAL after a complete checkpoint, at most once per checkpoint.
  EXPECT_LE(syncs_here, static_cast<int>(gc->checkpoints()))
      << "a checkpoint ran on the committing thread";
  // The checkpoint copied pages into the database file.
  EXPECT_GT(std::filesystem::file_size(path_), db_size_before);
}

TEST_F(GroupCommitTest, CommitsFromAnotherThreadAreFlushedToo) {
  ASSERT_NO_FATAL_FAILURE(open_attached());
  auto& gc = gc_;
  auto& store = store_;
  const int anywhere_before = syncs_anywhere.load();
  std::thread writer([&] {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->insert_pod(pod("t" + std::to_string(i))).ok());
  });
  writer.join();
  ASSERT_TRUE(acknowledgement(*gc).has_value());
  // The flusher syncs the WAL itself (fdatasync, not through SQLite): the VFS saw no sync.
  EXPECT_EQ(syncs_anywhere.load(), anywhere_before);
  EXPECT_GE(gc->flushes(), 1u);
}

// A flush that fails makes every later acknowledgement the error, even once flushes would
// succeed again. The failure is real: the WAL's name is made a symlink (the flusher opens it
// with O_NOFOLLOW) while SQLite keeps writing through the descriptor it already has.
TEST_F(GroupCommitTest, AFailedFlushIsReportedToEveryLaterAcknowledgement) {
  ASSERT_NO_FATAL_FAILURE(open_attached());
  auto& gc = gc_;
  auto& store = store_;
  ASSERT_TRUE(store->insert_pod(pod("ok")).ok());
  const std::string wal = path_ + "-wal";
  ASSERT_TRUE(std::filesystem::exists(wal));
  std::filesystem::rename(wal, wal + ".aside");
  std::filesystem::create_symlink(wal + ".aside", wal);
  ASSERT_TRUE(store->insert_pod(pod("unflushed")).ok());
  auto first = acknowledgement(*gc);
  ASSERT_TRUE(first.has_value());
  ASSERT_FALSE(first->ok());
  EXPECT_EQ(first->error().code, "store.io");
  EXPECT_NE(first->error().message.find(wal), std::string::npos) << first->error().message;

  // Put right: still an error, committed or not.
  std::filesystem::remove(wal);
  std::filesystem::rename(wal + ".aside", wal);
  ASSERT_TRUE(store->insert_pod(pod("after")).ok());
  auto later = acknowledgement(*gc);
  ASSERT_TRUE(later.has_value());
  EXPECT_FALSE(later->ok());
  std::optional<Status> nothing_new;
  gc->after_flush([&](const Status& s) { nothing_new = s; });
  ASSERT_TRUE(nothing_new.has_value());
  EXPECT_FALSE(nothing_new->ok());
}

}  // namespace
}  // namespace confpod::store
