// Blocking work off an sd-event loop: run() puts a job on a short-lived worker thread and runs
// the closure it returns on the loop thread; post() runs a closure on the loop thread from any
// thread. Completion order is the order the work finished. The loop learns of them through an
// eventfd, so nothing but the loop thread ever touches the state the closures change.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"

namespace confpod::pods {

struct EventSourceUnref {
  void operator()(sd_event_source* source) const { sd_event_source_disable_unref(source); }
};
using EventSourcePtr = std::unique_ptr<sd_event_source, EventSourceUnref>;

class LoopJobs {
 public:
  // Error "pods.io" when the eventfd or its event source cannot be made.
  static Result<std::unique_ptr<LoopJobs>> create(sd_event* event);
  // Joins every worker still running (their completions are dropped, never run).
  ~LoopJobs();
  LoopJobs(const LoopJobs&) = delete;
  LoopJobs& operator=(const LoopJobs&) = delete;

  // `work` runs on a new thread; what it returns runs on the loop thread. Error "pods.io"
  // when the system cannot make a thread (nothing runs then).
  Status run(std::function<std::function<void()>()> work);
  // `fn` runs on the loop thread soon. Thread-safe.
  void post(std::function<void()> fn);
  // Workers not yet joined (tests).
  std::size_t workers() const;

 private:
  LoopJobs() = default;
  static int on_wake(sd_event_source*, int fd, std::uint32_t, void* userdata);
  void wake();

  mutable std::mutex mutex_;
  // (job id, completion); job id 0: posted, no thread to join.
  std::vector<std::pair<std::uint64_t, std::function<void()>>> posted_;
  std::map<std::uint64_t, std::thread> threads_;
  std::uint64_t next_job_id_ = 1;
  UniqueFd wake_fd_;
  EventSourcePtr wake_source_;
};

}  // namespace confpod::pods
