#include "daemon/pods/loop_jobs.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace confpod::pods {

Result<std::unique_ptr<LoopJobs>> LoopJobs::create(sd_event* event) {
  std::unique_ptr<LoopJobs> jobs(new LoopJobs());
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return make_error("pods.io", std::string("eventfd: ") + std::strerror(errno));
  jobs->wake_fd_.reset(fd);
  sd_event_source* source = nullptr;
  int r = sd_event_add_io(event, &source, fd, EPOLLIN, &LoopJobs::on_wake, jobs.get());
  if (r < 0) return make_error("pods.io", std::string("sd_event_add_io: ") + std::strerror(-r));
  jobs->wake_source_.reset(source);
  return jobs;
}

LoopJobs::~LoopJobs() {
  std::map<std::uint64_t, std::thread> joining;
  {
    std::lock_guard lock(mutex_);
    joining.swap(threads_);
  }
  for (auto& [id, thread] : joining) thread.join();
  wake_source_.reset();
}

void LoopJobs::wake() {
  std::uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

Status LoopJobs::run(std::function<std::function<void()>()> work) {
  std::lock_guard lock(mutex_);
  const std::uint64_t id = next_job_id_++;
  try {
    threads_.emplace(id, std::thread([this, id, work = std::move(work)]() {
                       std::function<void()> completion = work();
                       {
                         std::lock_guard inner(mutex_);
                         posted_.emplace_back(id, std::move(completion));
                       }
                       wake();
                     }));
  } catch (const std::system_error& e) {
    return make_error("pods.io", std::string("cannot start a worker thread: ") + e.what());
  }
  return ok_status();
}

void LoopJobs::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    posted_.emplace_back(0, std::move(fn));
  }
  wake();
}

std::size_t LoopJobs::workers() const {
  std::lock_guard lock(mutex_);
  return threads_.size();
}

int LoopJobs::on_wake(sd_event_source*, int fd, std::uint32_t, void* userdata) {
  auto* self = static_cast<LoopJobs*>(userdata);
  std::uint64_t count = 0;
  (void)!::read(fd, &count, sizeof count);
  std::vector<std::pair<std::uint64_t, std::function<void()>>> ready;
  std::vector<std::thread> finished;
  {
    std::lock_guard lock(self->mutex_);
    ready.swap(self->posted_);
    for (auto& [id, completion] : ready) {
      auto it = self->threads_.find(id);
      if (it != self->threads_.end()) {
        finished.push_back(std::move(it->second));
        self->threads_.erase(it);
      }
    }
  }
  // Each thread posted as its last act: joining returns at once.
  for (auto& thread : finished) thread.join();
  // `ready` is this call's own: a completion may run or post more work.
  for (auto& [id, completion] : ready)
    if (completion) completion();
  return 0;
}

}  // namespace confpod::pods
