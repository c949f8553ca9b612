#include "daemon/store/group_commit.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/store/sqlite_handles.h"

namespace confpod::store {

namespace {

Error io_error(const std::string& what) { return make_error("store.io", what); }

// The checkpoint connection waits this long for a lock (opening it reads the schema).
constexpr int kBusyTimeoutMs = 5000;

}  // namespace

void GroupCommit::DbDeleter::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

GroupCommit::GroupCommit(std::string db_path, std::function<void(const std::string&)> warn)
    : db_path_(std::move(db_path)), warn_(std::move(warn)) {}

Result<std::unique_ptr<GroupCommit>> GroupCommit::start(
    const std::string& db_path, std::function<void(const std::string&)> warn) {
  std::unique_ptr<GroupCommit> gc(new GroupCommit(db_path, std::move(warn)));
  gc->ready_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!gc->ready_fd_) return io_error(std::string("eventfd: ") + std::strerror(errno));
  try {
    gc->thread_ = std::thread([raw = gc.get()] { raw->run(); });
  } catch (const std::system_error& e) {
    return io_error(std::string("cannot start the WAL flusher thread: ") + e.what());
  }
  return gc;
}

GroupCommit::~GroupCommit() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

Status GroupCommit::attach(sqlite3* db) {
  char* message = nullptr;
  if (sqlite3_exec(db, "PRAGMA synchronous = NORMAL", nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    return io_error(db_path_ + ": PRAGMA synchronous = NORMAL: " + text);
  }
  // Replaces the auto-checkpoint, which SQLite implements as this same hook.
  sqlite3_wal_hook(db, &GroupCommit::on_wal_commit, this);
  return ok_status();
}

int GroupCommit::on_wal_commit(void* self, sqlite3*, const char*, int frames) {
  static_cast<GroupCommit*>(self)->committed(frames);
  return SQLITE_OK;
}

void GroupCommit::committed(int frames) {
  {
    std::lock_guard lock(mutex_);
    ++requested_;
    wal_frames_ = frames;
  }
  wake_.notify_one();
}

void GroupCommit::after_flush(Done done) {
  std::uint64_t ticket;
  Status failure;
  {
    std::lock_guard lock(mutex_);
    ticket = requested_;
    // Behind others still waiting: answered in order, never overtaking.
    if (ticket > flushed_ || !waiting_.empty()) {
      waiting_.emplace_back(ticket, std::move(done));
      return;
    }
    failure = failure_;
  }
  done(failure);
}

void GroupCommit::dispatch() {
  std::uint64_t drained;
  while (::read(ready_fd_.get(), &drained, sizeof drained) < 0 && errno == EINTR) {
  }
  while (true) {
    Done done;
    Status failure;
    {
      std::lock_guard lock(mutex_);
      if (waiting_.empty() || waiting_.front().first > flushed_) return;
      done = std::move(waiting_.front().second);
      waiting_.pop_front();
      failure = failure_;
    }
    done(failure);  // may call after_flush: no lock held
  }
}

std::uint64_t GroupCommit::flushes() const {
  std::lock_guard lock(mutex_);
  return flushes_;
}

std::uint64_t GroupCommit::checkpoints() const {
  std::lock_guard lock(mutex_);
  return checkpoints_;
}

void GroupCommit::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || requested_ > flushed_; });
    if (requested_ == flushed_) return;  // stopping, and everything committed is flushed
    const std::uint64_t target = requested_;
    const bool want_checkpoint = wal_frames_ >= kCheckpointFrames;
    lock.unlock();
    // Every commit up to `target` finished writing before it was counted: this flush, which
    // begins after, covers them all.
    bool checkpointed = false;
    if (want_checkpoint) {
      Status done = checkpoint(&checkpointed);
      if (!done.ok() && warn_) warn_(done.error().describe());
    }
    // Also after a checkpoint: one that readers kept from copying every frame did not sync
    // the frames it left.
    Status status = sync_wal();
    lock.lock();
    if (!status.ok() && failure_.ok()) {
      failure_ = status;
      if (warn_) warn_(status.error().describe());
    }
    if (checkpointed) {
      ++checkpoints_;
      wal_frames_ = 0;  // the next commit says how large the WAL is again
    }
    flushed_ = target;
    ++flushes_;
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(ready_fd_.get(), &one, sizeof one);
  }
}

Status GroupCommit::checkpoint(bool* complete) {
  if (!checkpoint_db_) {
    // No CREATE: the pod store made the file (mode 0600) and attached its connection first.
    // The same hardening as the store's own connections, and synchronous = FULL: the
    // checkpoint syncs the WAL before copying it and the database after.
    sqlite::DbPtr db;
    const int rc = sqlite::open_second_connection(db_path_, db, kBusyTimeoutMs);
    if (rc != SQLITE_OK)
      return io_error(db_path_ + ": open for checkpoints: " +
                      (db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc)));
    checkpoint_db_.reset(db.release());
  }
  // PASSIVE: copies what no reader still needs, never waits for or blocks a connection.
  int wal_frames = -1, copied = -1;
  const int rc = sqlite3_wal_checkpoint_v2(checkpoint_db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                           &wal_frames, &copied);
  if (rc == SQLITE_BUSY) return ok_status();  // another checkpoint runs: the next commit asks
  if (rc != SQLITE_OK)
    return io_error(db_path_ + ": checkpoint: " + sqlite3_errmsg(checkpoint_db_.get()));
  if (wal_frames < 0)  // the connection is not in WAL mode: nothing was checkpointed
    return io_error(db_path_ + ": checkpoint: the connection does not see a WAL");
  *complete = copied == wal_frames;
  return ok_status();
}

Status GroupCommit::sync_wal() {
  const std::string wal = db_path_ + "-wal";
  if (!wal_fd_) {
    wal_fd_ = UniqueFd(::open(wal.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!wal_fd_) return io_error("open " + wal + ": " + std::strerror(errno));
  }
  // Still the file SQLite writes? (lstat: a symlink put in its place is not.)
  struct stat ours {
  }, named{};
  if (::fstat(wal_fd_.get(), &ours) != 0 || ::lstat(wal.c_str(), &named) != 0 ||
      ours.st_ino != named.st_ino || ours.st_dev != named.st_dev || ours.st_nlink == 0)
    return io_error(wal +
                    " was replaced or removed while the store was open; changes committed "
                    "since may not survive a power loss");
  if (::fdatasync(wal_fd_.get()) != 0)
    return io_error("fdatasync " + wal + ": " + std::strerror(errno) +
                    "; changes committed since may not survive a power loss");
  return ok_status();
}

}  // namespace confpod::store
