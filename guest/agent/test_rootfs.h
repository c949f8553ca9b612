// Test helpers: a temporary directory and a minimal busybox rootfs inside it.
#pragma once

#include <string>

namespace confpod::guest::agent::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Fills `dir` (created if missing) with bin/busybox (busybox-static) and applet symlinks,
// plus empty etc/, tmp/ and a work/ directory. Returns false when /bin/busybox is missing.
bool make_busybox_rootfs(const std::string& dir);

}  // namespace confpod::guest::agent::testing
