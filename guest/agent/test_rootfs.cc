#include "guest/agent/test_rootfs.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace confpod::guest::agent::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/confpod-agent-test.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

bool make_busybox_rootfs(const std::string& dir) {
  const fs::path busybox = "/bin/busybox";
  if (!fs::exists(busybox)) return false;
  fs::create_directories(fs::path(dir) / "bin");
  fs::create_directories(fs::path(dir) / "etc");
  fs::create_directories(fs::path(dir) / "tmp");
  fs::create_directories(fs::path(dir) / "work");
  fs::copy_file(busybox, fs::path(dir) / "bin" / "busybox");
  for (const char* applet : {"sh", "echo", "cat", "hostname", "ls", "pwd", "sleep", "env", "id",
                             "test", "stat", "kill", "true", "false", "mkdir", "grep"}) {
    fs::create_symlink("busybox", fs::path(dir) / "bin" / applet);
  }
  return true;
}

}  // namespace confpod::guest::agent::testing
