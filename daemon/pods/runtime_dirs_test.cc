#include "daemon/pods/runtime_dirs.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace confpod::pods {
namespace {

namespace fs = std::filesystem;

struct TempRuntime {
  std::string dir;
  TempRuntime() {
    char tmpl[] = "/tmp/confpod-runtime-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~TempRuntime() { fs::remove_all(dir); }
};

// A process in its own group whose command line names `arg` (as QEMU's names its QMP socket).
pid_t spawn_naming(const std::string& arg) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::execl("/bin/sh", "sh", "-c", "sleep 60", arg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

int wait_signal(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

TEST(KillStrayQemu, OnlyTheProcessOurPidfileAndQmpSocketName) {
  TempRuntime rt;
  spec::PodPaths paths = spec::pod_paths(rt.dir, "web");
  fs::create_directories(paths.dir);
  EXPECT_FALSE(kill_stray_qemu(paths)) << "no pidfile";

  // A recycled pid: the pidfile names a process that is not this pod's QEMU.
  pid_t other = spawn_naming("/somewhere/else.sock");
  std::ofstream(paths.pidfile) << other << "\n";
  EXPECT_FALSE(kill_stray_qemu(paths));
  EXPECT_EQ(::kill(other, 0), 0) << "a stranger is never signalled";
  ::kill(other, SIGKILL);
  wait_signal(other);

  pid_t qemu = spawn_naming(paths.qmp_socket);
  std::ofstream(paths.pidfile, std::ios::trunc) << qemu << "\n";
  // /proc shows the new command line once exec has happened.
  for (int i = 0; i < 100 && !kill_stray_qemu(paths); ++i) ::usleep(10'000);
  EXPECT_EQ(wait_signal(qemu), SIGKILL);
}

TEST(SweepRuntimeDirs, RemovesOnlyWhatNoPodAccountsFor) {
  TempRuntime rt;
  for (const char* name : {"known", "gone"}) {
    fs::create_directories(spec::pod_paths(rt.dir, name).dir);
    std::ofstream(spec::pod_paths(rt.dir, name).dir + "/serial.log") << "x";
  }
  auto swept = sweep_runtime_dirs(rt.dir, [](const std::string& name) { return name == "known"; });
  EXPECT_EQ(swept, (std::vector<std::string>{"gone"}));
  EXPECT_TRUE(fs::exists(spec::pod_paths(rt.dir, "known").dir + "/serial.log"));
  EXPECT_FALSE(fs::exists(spec::pod_paths(rt.dir, "gone").dir));
  EXPECT_TRUE(
      sweep_runtime_dirs(rt.dir + "/absent", [](const std::string&) { return false; }).empty());
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

TEST(PreparePodDirs, RootsDirectoriesAndAVmDirForLibvirtsUser) {
  TempRuntime rt;
  spec::PodPaths paths = spec::pod_paths(rt.dir, "web");
  ASSERT_TRUE(prepare_pod_dirs(paths, std::nullopt).ok());
  EXPECT_EQ(mode_of(paths.dir) & 07777, 0700u);
  EXPECT_TRUE(S_ISDIR(mode_of(paths.vm_dir)));
  EXPECT_EQ(mode_of(paths.vm_dir) & 07777, 0700u);
  if (::geteuid() != 0) GTEST_SKIP() << "handing vm/ to another user needs root";

  auto nobody = lookup_vm_owner("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.error().describe();
  ASSERT_TRUE(prepare_pod_dirs(paths, *nobody).ok());
  struct stat st {};
  ASSERT_EQ(::stat(paths.vm_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody->uid);
  EXPECT_EQ(st.st_gid, nobody->gid);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat(paths.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, nobody->gid);
  EXPECT_EQ(st.st_mode & 07777, 0710u) << "reachable by its group, not listable, not by others";

  // What the VM's user left in vm/ for the next start (a link where the console log goes, a
  // tree with a link to root's directory in it) is gone, and nothing was followed.
  const std::string precious = rt.dir + "/precious";
  fs::create_directories(precious);
  std::ofstream(precious + "/keep") << "x";
  fs::create_symlink(precious + "/keep", paths.serial_log);
  fs::create_directories(paths.vm_dir + "/a/b");
  fs::create_directory_symlink(precious, paths.vm_dir + "/a/b/link");
  ASSERT_TRUE(prepare_pod_dirs(paths, *nobody).ok());
  EXPECT_TRUE(fs::is_empty(paths.vm_dir));
  EXPECT_TRUE(fs::exists(precious + "/keep")) << "a link's target is never removed";

  // The VM's user swapped vm/ for a link to a directory of root's: the link goes, unfollowed.
  const std::string target = rt.dir + "/roots";
  fs::create_directories(target);
  fs::remove_all(paths.vm_dir);
  fs::create_directory_symlink(target, paths.vm_dir);
  ASSERT_TRUE(prepare_pod_dirs(paths, *nobody).ok());
  EXPECT_TRUE(S_ISDIR(mode_of(paths.vm_dir)));
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "the link's target was never handed over";
  // A file in its place goes too; and back on the QEMU backend vm/ is root's again.
  fs::remove_all(paths.vm_dir);
  std::ofstream(paths.vm_dir) << "x";
  ASSERT_TRUE(prepare_pod_dirs(paths, std::nullopt).ok());
  ASSERT_EQ(::stat(paths.vm_dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(mode_of(paths.dir) & 07777, 0700u);
}

TEST(PreparePodDirs, AnUnknownUserIsNamed) {
  auto owner = lookup_vm_owner("no-such-user-here");
  ASSERT_FALSE(owner.ok());
  EXPECT_EQ(owner.error().code, "pods.libvirt_user");
  EXPECT_NE(owner.error().message.find("no-such-user-here"), std::string::npos);
}

}  // namespace
}  // namespace confpod::pods
