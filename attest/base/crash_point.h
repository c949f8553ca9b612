// Named crash points for the fault campaign (tests/integration/faults_test.cc,
// docs/testing.md): when the environment variable CONFPOD_TEST_CRASH_AT equals `step`, the
// process kills itself with SIGKILL right there, exactly as `kill -9` at that moment would.
// Tests use it to stop confpodd deterministically between two steps of a lifecycle (the store
// written, QEMU not yet started, ...) and check that a restart finds every pod in a true state.
//
// Only whoever sets confpodd's environment (root, the unit file) can arm it, and all it can do
// is what kill -9 does. It reads the environment on each call and keeps no state.
#pragma once

#include <csignal>
#include <cstdlib>
#include <string_view>

namespace confpod {

inline constexpr const char* kCrashPointVariable = "CONFPOD_TEST_CRASH_AT";

inline void crash_point(std::string_view step) {
  const char* armed = std::getenv(kCrashPointVariable);
  if (armed != nullptr && step == armed) std::raise(SIGKILL);
}

}  // namespace confpod
