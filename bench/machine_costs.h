// What this machine charges for the two things every request over a socket pays several
// times: entering the kernel, and waking a thread that sleeps. The benchmarks print them beside
// their ratios so a run on a virtual machine (where both cost many times what they cost on a
// bare-metal server) can be read for what it is. Report only.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

namespace confpod::bench {

struct MachineCosts {
  double syscall_us = 0;     // a system call that does nothing (getppid), mean
  double wake_round_us = 0;  // thread A wakes B, B wakes A (two eventfds), mean round trip;
                             // 0 when the exchange failed
};

inline MachineCosts measure_machine_costs() {
  using Clock = std::chrono::steady_clock;
  MachineCosts costs;
  constexpr int kSyscalls = 200000;
  auto t0 = Clock::now();
  for (int i = 0; i < kSyscalls; ++i) ::syscall(SYS_getppid);
  costs.syscall_us =
      std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kSyscalls;

  constexpr int kRounds = 20000;
  const int ping = ::eventfd(0, EFD_CLOEXEC);
  const int pong = ::eventfd(0, EFD_CLOEXEC);
  // Each side sleeps in poll until the other writes: a round trip is two sleeps and two
  // wake-ups. The timeouts only bound a run on a broken system; a side that gives up stops
  // the other within one of them.
  auto wait_readable = [](int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 1000) == 1;
  };
  int done = 0;
  double elapsed_us = 0;
  if (ping >= 0 && pong >= 0) {
    std::thread echo([&] {
      std::uint64_t v = 0;
      for (int i = 0; i < kRounds; ++i) {
        if (!wait_readable(ping) || ::read(ping, &v, sizeof v) != sizeof v) return;
        if (::write(pong, &v, sizeof v) != sizeof v) return;
      }
    });
    std::uint64_t one = 1, got = 0;
    t0 = Clock::now();
    for (; done < kRounds; ++done) {
      if (::write(ping, &one, sizeof one) != sizeof one) break;
      if (!wait_readable(pong) || ::read(pong, &got, sizeof got) != sizeof got) break;
    }
    elapsed_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    echo.join();
  }
  if (ping >= 0) ::close(ping);
  if (pong >= 0) ::close(pong);
  costs.wake_round_us = done == kRounds ? elapsed_us / done : 0;
  return costs;
}

inline void print_machine_costs(const char* driver) {
  const MachineCosts c = measure_machine_costs();
  std::printf(
      "%s: this machine: a system call %.2f us, a wake-up round trip between two threads "
      "%.1f us   (report only)\n",
      driver, c.syscall_us, c.wake_round_us);
  std::fflush(stdout);
}

}  // namespace confpod::bench
