// The pod log snapshot (read_pod_log) over files the VM's user may have planted in vm/.
#include "daemon/pods/pod_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/support/process.h"

namespace confpod::pods {
namespace {

namespace fs = std::filesystem;

TEST(ReadPodLog, ShowsEachFileUnderItsHeader) {
  testing::TempDir dir;
  spec::PodPaths paths = spec::pod_paths(dir.path(), "web");
  fs::create_directories(paths.vm_dir);
  std::ofstream(paths.serial_log) << "booting\n";
  std::ofstream(paths.dir + "/qemu.log") << "qemu says\n";
  auto log = read_pod_log(paths, 1 << 20);
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("==> qemu.log <==\nqemu says\n==> serial.log <==\nbooting\n"),
            std::string::npos)
      << *log;
}

// A link planted as serial.log is not followed, nor a hard link read (the log would show root's
// file to whoever may read logs), and a FIFO does not block the daemon's loop: both read as empty.
TEST(ReadPodLog, NeverFollowsALinkNorBlocksOnAFifo) {
  testing::TempDir dir;
  spec::PodPaths paths = spec::pod_paths(dir.path(), "web");
  fs::create_directories(paths.vm_dir);
  const std::string secret = dir.write("secret", "root only\n");
  fs::create_symlink(secret, paths.serial_log);
  auto linked = read_pod_log(paths, 1 << 20);
  ASSERT_TRUE(linked.ok());
  EXPECT_EQ(linked->find("root only"), std::string::npos) << *linked;
  EXPECT_NE(linked->find("==> serial.log <==\n"), std::string::npos);

  // A hard link to it (where the file system allows one) is not shown either.
  fs::remove(paths.serial_log);
  std::error_code ec;
  fs::create_hard_link(secret, paths.serial_log, ec);
  if (!ec) {
    auto hard = read_pod_log(paths, 1 << 20);
    ASSERT_TRUE(hard.ok());
    EXPECT_EQ(hard->find("root only"), std::string::npos) << *hard;
  }

  fs::remove(paths.serial_log);
  ASSERT_EQ(::mkfifo(paths.serial_log.c_str(), 0600), 0);
  auto fifo = read_pod_log(paths, 1 << 20);  // returns: nobody writes the FIFO
  ASSERT_TRUE(fifo.ok());
  EXPECT_NE(fifo->find("==> serial.log <==\n"), std::string::npos);
}

}  // namespace
}  // namespace confpod::pods
