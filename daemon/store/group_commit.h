// Group commit for the pod database (docs/daemon.md, "Durability without stalling the loop").
//
// A connection handed to attach() commits with synchronous=NORMAL: COMMIT returns once the
// transaction is in the write-ahead log (in the page cache), without waiting for the disk. A
// flusher thread then makes the WAL durable (fdatasync) on behalf of every commit made before
// its flush began, so one flush covers all the commits that queued up while the previous one
// ran. What must not be said before the change is on disk (a D-Bus reply acknowledging it)
// waits in after_flush() and runs on the loop thread once a flush covers it.
//
// Checkpoints move to the flusher too: attach() replaces SQLite's auto-checkpoint (a WAL hook)
// with one that asks the flusher, which checkpoints from its own connection once the WAL holds
// kCheckpointFrames or more. (The one sync left on the committing thread: when a writer
// restarts the WAL after a complete checkpoint, SQLite syncs the new WAL header there.)
//
// The WAL is synced through one descriptor kept open from the first flush on: the kernel
// reports a failed writeback to every descriptor open when it happened, while a descriptor
// opened later may never hear of it (another connection's fsync may have taken the report).
// A WAL replaced or removed under an open store is a failure, not "nothing to sync".
//
// A failed flush is sticky: from then on every after_flush() gets the error (store.io). After
// fsync reported a lost write, a later fsync that succeeds proves nothing about it. A failed
// checkpoint is not a durability failure (the frames stay in the WAL, which is still synced):
// it is reported to `warn` and tried again at the next commit.
//
// Threads: attach(), after_flush() and dispatch() on the loop thread; commits on any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"

struct sqlite3;

namespace confpod::store {

class GroupCommit {
 public:
  using Done = std::function<void(const Status&)>;
  // SQLite's own auto-checkpoint threshold (pages in the WAL).
  static constexpr int kCheckpointFrames = 1000;

  // `db_path`: the database whose connections will be attached; its WAL is db_path + "-wal".
  // Error store.io when the eventfd or the thread cannot be made.
  // `warn` (optional) hears of failed flushes and checkpoints, from the flusher thread.
  static Result<std::unique_ptr<GroupCommit>> start(
      const std::string& db_path, std::function<void(const std::string&)> warn = {});
  // Flushes what was committed, then joins the thread. Callbacks not yet dispatched are
  // dropped (the daemon is going away; their callers see the connection end).
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Commits on `db` stop waiting for the disk and are flushed here instead. `db` must be
  // closed before this object is destroyed.
  Status attach(sqlite3* db);

  // `done` runs once every commit made before this call is on disk: at once when that is
  // already so, else from dispatch(). In the order of the calls.
  void after_flush(Done done);

  // Readable when a flush completed: the loop then calls dispatch().
  int ready_fd() const { return ready_fd_.get(); }
  void dispatch();

  // Completed flushes and checkpoints (tests).
  std::uint64_t flushes() const;
  std::uint64_t checkpoints() const;

 private:
  GroupCommit(std::string db_path, std::function<void(const std::string&)> warn);
  static int on_wal_commit(void* self, sqlite3* db, const char* schema, int frames);
  void committed(int frames);
  void run();
  // *complete: every WAL frame was copied into the database.
  Status checkpoint(bool* complete);
  Status sync_wal();

  const std::string db_path_;
  const std::function<void(const std::string&)> warn_;
  UniqueFd ready_fd_;
  UniqueFd wal_fd_;  // flusher thread only: opened at the first flush, kept

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::uint64_t requested_ = 0;  // commits seen (each is a ticket)
  std::uint64_t flushed_ = 0;    // every ticket up to this is on disk
  int wal_frames_ = 0;           // the WAL's size at the last commit
  bool stopping_ = false;
  Status failure_;  // the first failed flush, kept
  std::uint64_t flushes_ = 0, checkpoints_ = 0;

  // (ticket, callback), in call order; touched on the loop thread only, under mutex_ anyway.
  std::deque<std::pair<std::uint64_t, Done>> waiting_;

  // The flusher's own connection, for checkpoints: opened by the thread when first needed.
  struct DbDeleter {
    void operator()(sqlite3* db) const;
  };
  std::unique_ptr<sqlite3, DbDeleter> checkpoint_db_;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace confpod::store
