#include "daemon/pods/loop_jobs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;

struct EventUnref {
  void operator()(sd_event* e) const { sd_event_unref(e); }
};

class LoopJobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sd_event* e = nullptr;
    ASSERT_GE(sd_event_new(&e), 0);
    event_.reset(e);
    auto jobs = LoopJobs::create(event_.get());
    ASSERT_TRUE(jobs.ok()) << jobs.error().describe();
    jobs_ = std::move(*jobs);
  }
  // Runs the loop until `done` or 5 s.
  void run_until(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done() && std::chrono::steady_clock::now() < deadline)
      sd_event_run(event_.get(), 100'000);
  }

  std::unique_ptr<sd_event, EventUnref> event_;
  std::unique_ptr<LoopJobs> jobs_;
};

TEST_F(LoopJobsTest, WorkRunsOffTheLoopAndItsCompletionOnIt) {
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id work_thread, completion_thread;
  bool completed = false;
  ASSERT_TRUE(jobs_
                  ->run([&]() -> std::function<void()> {
                    work_thread = std::this_thread::get_id();
                    return [&] {
                      completion_thread = std::this_thread::get_id();
                      completed = true;
                    };
                  })
                  .ok());
  run_until([&] { return completed; });
  ASSERT_TRUE(completed);
  EXPECT_NE(work_thread, loop_thread);
  EXPECT_EQ(completion_thread, loop_thread);
  EXPECT_EQ(jobs_->workers(), 0u) << "the worker was joined when its completion ran";
}

TEST_F(LoopJobsTest, CompletionsRunInTheOrderTheWorkFinished) {
  std::vector<int> order;
  auto job = [&](int n, std::chrono::milliseconds takes) {
    return jobs_->run([&order, n, takes]() -> std::function<void()> {
      std::this_thread::sleep_for(takes);
      return [&order, n] { order.push_back(n); };
    });
  };
  ASSERT_TRUE(job(1, 300ms).ok());
  ASSERT_TRUE(job(2, 10ms).ok());
  run_until([&] { return order.size() == 2; });
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
}

TEST_F(LoopJobsTest, PostFromAnyThreadRunsOnTheLoop) {
  const auto loop_thread = std::this_thread::get_id();
  std::atomic<int> ran{0};
  bool on_loop = true;
  std::vector<std::thread> posters;
  for (int i = 0; i < 4; ++i)
    posters.emplace_back([&] {
      for (int j = 0; j < 25; ++j)
        jobs_->post([&] {
          on_loop = on_loop && std::this_thread::get_id() == loop_thread;
          ++ran;
        });
    });
  for (auto& t : posters) t.join();
  run_until([&] { return ran == 100; });
  EXPECT_EQ(ran, 100);
  EXPECT_TRUE(on_loop);
}

TEST_F(LoopJobsTest, DestructionJoinsRunningWorkAndDropsTheirCompletions) {
  std::atomic<bool> work_done{false};
  bool completed = false;
  ASSERT_TRUE(jobs_
                  ->run([&]() -> std::function<void()> {
                    std::this_thread::sleep_for(200ms);
                    work_done = true;
                    return [&] { completed = true; };
                  })
                  .ok());
  EXPECT_EQ(jobs_->workers(), 1u);
  jobs_.reset();
  EXPECT_TRUE(work_done) << "the destructor waited for the worker";
  sd_event_run(event_.get(), 0);
  EXPECT_FALSE(completed) << "a completion never runs after its LoopJobs is gone";
}

}  // namespace
}  // namespace confpod::pods
