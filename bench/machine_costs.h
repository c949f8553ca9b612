// What this machine charges for the two things every request over a socket pays several
// times: entering the kernel, and waking a thread that sleeps. The benchmarks print them beside
// their ratios so a run on a virtual machine (where both cost many times what they cost on a
// bare-metal server) can be read for what it is. Report only.
#pragma once

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
  double wake_round_us = 0;  // thread A wakes B, B wakes A (two eventfds), mean round trip
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
  if (ping < 0 || pong < 0) {
    if (ping >= 0) ::close(ping);
    if (pong >= 0) ::close(pong);
    return costs;
  }
  // Blocking reads on both sides: each round trip is two sleeps and two wake-ups.
  std::thread echo([&] {
    std::uint64_t v = 0;
    for (int i = 0; i < kRounds; ++i) {
      if (::read(ping, &v, sizeof v) != sizeof v) return;
      if (::write(pong, &v, sizeof v) != sizeof v) return;
    }
  });
  std::uint64_t one = 1, got = 0;
  int done = 0;
  t0 = Clock::now();
  for (; done < kRounds; ++done) {
    if (::write(ping, &one, sizeof one) != sizeof one) break;
    if (::read(pong, &got, sizeof got) != sizeof got) break;
  }
  const double elapsed_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  if (done < kRounds) {
    // Unblock the echo thread before joining it.
    for (int i = done; i < kRounds; ++i) (void)!::write(ping, &one, sizeof one);
  }
  echo.join();
  ::close(ping);
  ::close(pong);
  costs.wake_round_us = done > 0 ? elapsed_us / done : 0;
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
