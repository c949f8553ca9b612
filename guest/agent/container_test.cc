// Runs real containers (needs root: namespaces, mounts, pivot_root) in a busybox rootfs.
#include "guest/agent/container.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "guest/agent/test_rootfs.h"

namespace confpod::guest::agent {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  std::string out;
  std::string err;
  int status = -1;
};

// Reads both pipes to EOF, then reaps the process.
Outcome collect(Process& p) {
  Outcome o;
  struct pollfd fds[2] = {{p.stdout_fd.get(), POLLIN, 0}, {p.stderr_fd.get(), POLLIN, 0}};
  std::string* sinks[2] = {&o.out, &o.err};
  int open_count = 2;
  while (open_count > 0) {
    if (::poll(fds, 2, 20000) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EAGAIN) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  auto status = wait_for(p.pid);
  o.status = status.ok() ? *status : -1;
  return o;
}

class GuestAgentContainer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces and mounts)";
    rootfs_ = tmp_.path() + "/rootfs";
    if (!testing::make_busybox_rootfs(rootfs_)) GTEST_SKIP() << "no /bin/busybox (busybox-static)";
  }

  ContainerSpec spec(std::vector<std::string> argv) {
    ContainerSpec s;
    s.name = "web";
    s.hostname = "pod-one";
    s.rootfs = rootfs_;
    s.argv = std::move(argv);
    s.env = {"PATH=/bin", "HOME=/"};
    s.confinement.capabilities = default_caps();
    return s;
  }

  static ExecRequest exec_request(std::vector<std::string> argv, std::string workdir = "/",
                                  std::string user = "") {
    ExecRequest r;
    r.argv = std::move(argv);
    r.env = {"PATH=/bin"};
    r.workdir = std::move(workdir);
    r.user = std::move(user);
    r.confinement.capabilities = default_caps();
    return r;
  }

  // The default capability set of docs/containers.md, as numbers.
  static std::vector<int> default_caps() {
    return {0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31};
  }

  // The probe program inside the rootfs.
  void add_probe() {
    fs::copy_file(CONFPOD_PROBE_PATH, rootfs_ + "/bin/confpod-probe",
                  fs::copy_options::overwrite_existing);
    fs::permissions(rootfs_ + "/bin/confpod-probe", fs::perms(0755));
  }

  static std::map<std::string, std::string> fields(const std::string& out) {
    std::map<std::string, std::string> m;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      if (auto eq = line.find('='); eq != std::string::npos)
        m[line.substr(0, eq)] = line.substr(eq + 1);
    return m;
  }

  Outcome run(const ContainerSpec& s) {
    auto p = start_container(s);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().describe());
    if (!p.ok()) return {};
    return collect(*p);
  }

  testing::TempDir tmp_;
  std::string rootfs_;
};

TEST_F(GuestAgentContainer, CapturesStdoutStderrAndExitCode) {
  auto o = run(spec({"/bin/sh", "-c", "echo out; echo err >&2; exit 7"}));
  EXPECT_EQ(o.out, "out\n");
  EXPECT_EQ(o.err, "err\n");
  EXPECT_EQ(o.status, 7);
}

TEST_F(GuestAgentContainer, KilledBySignalIs128PlusSignal) {
  auto p = start_container(spec({"/bin/sleep", "100"}));
  ASSERT_TRUE(p.ok()) << p.error().describe();
  ASSERT_EQ(::kill(p->pid, SIGKILL), 0);
  EXPECT_EQ(collect(*p).status, 128 + SIGKILL);
}

TEST_F(GuestAgentContainer, HostnameIsPodNameAndCommandIsPid1) {
  auto o = run(spec({"/bin/sh", "-c", "hostname; echo $$"}));
  EXPECT_EQ(o.out, "pod-one\n1\n");
  EXPECT_EQ(o.status, 0);
}

TEST_F(GuestAgentContainer, ProcAndDevAreMounted) {
  auto o = run(spec({"/bin/sh", "-c",
                     "test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && "
                     "echo x > /dev/null && cat /proc/1/cmdline | grep -q sh && echo ok"}));
  EXPECT_EQ(o.out, "ok\n") << o.err;
  EXPECT_EQ(o.status, 0);
  // The old root is gone: nothing of the host is reachable.
  EXPECT_FALSE(fs::exists(rootfs_ + "/.confpod-old-root"));
}

TEST_F(GuestAgentContainer, PathLookupUsesContainerPath) {
  auto o = run(spec({"echo", "found"}));
  EXPECT_EQ(o.out, "found\n");
  EXPECT_EQ(o.status, 0);
}

TEST_F(GuestAgentContainer, EnvAndWorkdir) {
  auto s = spec({"/bin/sh", "-c", "echo $GREETING; pwd"});
  s.env.push_back("GREETING=hello there");
  s.workdir = "/work";
  auto o = run(s);
  EXPECT_EQ(o.out, "hello there\n/work\n");
  EXPECT_EQ(o.status, 0);
}

TEST_F(GuestAgentContainer, SecretVisibleInsideOnlyAndNeverOnHost) {
  auto s = spec({"/bin/sh", "-c",
                 "cat /run/secrets/token; echo; stat -c %a /run/secrets/token; "
                 "cat /run/secrets/nested/key; echo; sleep 1"});
  s.secrets.push_back({"/run/secrets/token", SecretBytes(Bytes{'s', '3', 'c', 'r', 'e', 't'})});
  s.secrets.push_back({"/run/secrets/nested/key", SecretBytes(Bytes{'k'})});
  auto p = start_container(s);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  // While it runs, the host's view of the rootfs has no secret file.
  EXPECT_FALSE(fs::exists(rootfs_ + "/run/secrets/token"));
  auto o = collect(*p);
  EXPECT_EQ(o.out, "s3cret\n400\nk\n") << o.err;
  EXPECT_EQ(o.status, 0);
  EXPECT_FALSE(fs::exists(rootfs_ + "/run/secrets/token"));
  EXPECT_FALSE(fs::exists(rootfs_ + "/run/secrets/nested/key"));
  std::ifstream mounts("/proc/self/mounts");
  std::stringstream all;
  all << mounts.rdbuf();
  EXPECT_EQ(all.str().find(rootfs_), std::string::npos) << "a container mount leaked to the host";
}

TEST_F(GuestAgentContainer, NumericUserIsApplied) {
  auto s = spec({"/bin/sh", "-c", "id -u; id -g; cat /run/s/x"});
  s.user = "1000:1001";
  s.secrets.push_back({"/run/s/x", SecretBytes(Bytes{'v'})});
  auto o = run(s);
  EXPECT_EQ(o.out, "1000\n1001\nv") << o.err;
  EXPECT_EQ(o.status, 0);
}

TEST_F(GuestAgentContainer, ExecFailureIsReportedWithMessage) {
  auto p = start_container(spec({"/bin/does-not-exist"}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, "container.start");
  EXPECT_NE(p.error().message.find("exec /bin/does-not-exist: No such file or directory"),
            std::string::npos)
      << p.error().message;

  auto q = start_container(spec({"nothere"}));
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("exec nothere"), std::string::npos) << q.error().message;
}

TEST_F(GuestAgentContainer, SecretDirectlyUnderRootIsRefused) {
  auto s = spec({"/bin/true"});
  s.secrets.push_back({"/token", SecretBytes(Bytes{'x'})});
  auto p = start_container(s);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, "container.start");
}

TEST_F(GuestAgentContainer, BadWorkdirIsReported) {
  auto s = spec({"/bin/true"});
  s.workdir = "/no/such/dir";
  auto p = start_container(s);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("chdir /no/such/dir"), std::string::npos) << p.error().message;
}

TEST_F(GuestAgentContainer, PivotRootFailureIsReported) {
  auto s = spec({"/bin/true"});
  s.rootfs = tmp_.path() + "/missing";
  auto p = start_container(s);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("bind-mount rootfs"), std::string::npos) << p.error().message;
}

TEST_F(GuestAgentContainer, ExecRunsInsideTheContainersNamespaces) {
  auto c = start_container(spec({"/bin/sleep", "30"}));
  ASSERT_TRUE(c.ok()) << c.error().describe();
  auto e = exec_in_container(
      c->pid, exec_request({"/bin/sh", "-c", "hostname; cat /proc/1/cmdline; exit 4"}, "/work"));
  ASSERT_TRUE(e.ok()) << e.error().describe();
  auto o = collect(*e);
  EXPECT_EQ(o.out, std::string("pod-one\n/bin/sleep\0"
                               "30\0",
                               22))
      << o.err;
  EXPECT_EQ(o.status, 4);

  auto as_user = exec_in_container(c->pid, exec_request({"/bin/sh", "-c", "id -u"}, "/", "1234"));
  ASSERT_TRUE(as_user.ok()) << as_user.error().describe();
  EXPECT_EQ(collect(*as_user).out, "1234\n");

  auto bad = exec_in_container(c->pid, exec_request({"nope"}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("exec nope"), std::string::npos) << bad.error().message;

  // Root in the container swaps /etc/passwd for a FIFO nobody writes: the exec's user lookup
  // refuses it at once instead of blocking the agent.
  fs::create_directories(rootfs_ + "/etc");
  fs::remove(rootfs_ + "/etc/passwd");
  ASSERT_EQ(::mkfifo((rootfs_ + "/etc/passwd").c_str(), 0644), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto fifo = exec_in_container(c->pid, exec_request({"/bin/true"}, "/", "app"));
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.error().message.find("user app: not in /etc/passwd"), std::string::npos)
      << fifo.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));

  ::kill(c->pid, SIGKILL);
  EXPECT_EQ(collect(*c).status, 128 + SIGKILL);
}

// The default confinement as a non-root user: the kernel's answer to each privileged call.
TEST_F(GuestAgentContainer, NonRootUserWithDefaultsCannotDoPrivilegedThings) {
  add_probe();
  auto s = spec({"/bin/confpod-probe", "privileges"});
  s.user = "1000:1000";
  auto o = run(s);
  ASSERT_EQ(o.status, 0) << o.err;
  auto f = fields(o.out);
  EXPECT_EQ(f["uid"], "1000");
  EXPECT_EQ(f["write_root"], "EACCES");
  EXPECT_EQ(f["mount"], "EPERM");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["reboot"], "EPERM");
  EXPECT_EQ(f["unshare"], "EPERM");
  EXPECT_EQ(f["clone_newuser"], "EPERM");
  EXPECT_EQ(f["vsock"], "EPERM");
  EXPECT_EQ(f["CapEff"], "0000000000000000");
  EXPECT_EQ(f["NoNewPrivs"], "1");
  EXPECT_EQ(f["Seccomp"], "2");
}

// Root in the container keeps exactly the default set; the filter and the bounding set keep
// it from mounting, loading modules and rebooting; a read-only root refuses even root.
TEST_F(GuestAgentContainer, RootWithDefaultsGetsTheDefaultSetOnly) {
  add_probe();
  auto s = spec({"/bin/confpod-probe", "privileges"});
  s.read_only_rootfs = true;
  s.tmpfs = {"/tmp"};
  auto o = run(s);
  ASSERT_EQ(o.status, 0) << o.err;
  auto f = fields(o.out);
  EXPECT_EQ(f["uid"], "0");
  EXPECT_EQ(f["write_root"], "EROFS");
  // The kernel's knobs are read-only even for root (a test machine's kernel may have no sysrq
  // file at all; e2e_containers_test asserts EROFS in the guest, whose kernel has it).
  EXPECT_TRUE(f["sysrq"] == "EROFS" || f["sysrq"] == "ENOENT") << f["sysrq"];
  EXPECT_EQ(f["mount"], "EPERM");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["reboot"], "EPERM");
  // Bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31.
  EXPECT_EQ(f["CapEff"], "00000000a80425fb");
  // Inheritable empty, as runc and crun since CVE-2022-24769.
  EXPECT_EQ(f["CapInh"], "0000000000000000");
  EXPECT_EQ(f["Seccomp"], "2");
}

// What the spec adds is really there: CAP_SYS_ADMIN without the filter may mount, and the
// reboot call gets past the capability check to the magic (EINVAL), never rebooting.
TEST_F(GuestAgentContainer, AddedCapabilitiesAndUnconfinedReallyAllow) {
  add_probe();
  auto s = spec({"/bin/confpod-probe", "privileges"});
  s.confinement.capabilities.push_back(21);  // CAP_SYS_ADMIN
  s.confinement.capabilities.push_back(22);  // CAP_SYS_BOOT
  s.confinement.seccomp = false;
  s.tmpfs = {"/tmp"};
  auto o = run(s);
  ASSERT_EQ(o.status, 0) << o.err;
  auto f = fields(o.out);
  EXPECT_EQ(f["mount"], "ok");
  EXPECT_EQ(f["reboot"], "EINVAL");
  EXPECT_NE(f["init_module"], "ok");  // CAP_SYS_MODULE was not added
  EXPECT_EQ(f["Seccomp"], "0");
}

// The filter's capability rules follow the set: with CAP_SYS_BOOT added, reboot gets past the
// filter and the kernel's check to the bad magic (EINVAL); mount stays refused.
TEST_F(GuestAgentContainer, FilterFollowsTheCapabilitySet) {
  add_probe();
  auto with_boot = spec({"/bin/confpod-probe", "privileges"});
  with_boot.confinement.capabilities.push_back(22);  // CAP_SYS_BOOT
  with_boot.tmpfs = {"/tmp"};
  auto f = fields(run(with_boot).out);
  EXPECT_EQ(f["reboot"], "EINVAL");
  EXPECT_EQ(f["mount"], "EPERM");
}

TEST_F(GuestAgentContainer, ExecGetsTheContainersConfinementAndAPty) {
  add_probe();
  auto c = start_container(spec({"/bin/sleep", "30"}));
  ASSERT_TRUE(c.ok()) << c.error().describe();
  auto probe = exec_request({"/bin/confpod-probe", "privileges"}, "/", "1000");
  auto e = exec_in_container(c->pid, probe);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  auto f = fields(collect(*e).out);
  EXPECT_EQ(f["uid"], "1000");
  EXPECT_EQ(f["mount"], "EPERM");
  EXPECT_EQ(f["Seccomp"], "2");

  // A pty: the command sees a terminal of the asked size, and what is typed comes back.
  auto tty = exec_request({"/bin/sh", "-c", "stty size; read line; echo got:$line"});
  tty.tty = true;
  tty.rows = 33;
  tty.cols = 101;
  auto t = exec_in_container(c->pid, tty);
  ASSERT_TRUE(t.ok()) << t.error().describe();
  ASSERT_TRUE(t->pty);
  ASSERT_EQ(::write(t->stdin_fd.get(), "hello\n", 6), 6);
  std::string out;
  for (int i = 0; i < 200 && out.find("got:hello") == std::string::npos; ++i) {
    pollfd p{t->stdout_fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(t->stdout_fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_NE(out.find("33 101"), std::string::npos) << out;
  EXPECT_NE(out.find("hello\r\n"), std::string::npos) << "the pty echoes input: " << out;
  EXPECT_NE(out.find("got:hello"), std::string::npos) << out;
  EXPECT_EQ(*wait_for(t->pid), 0);

  // stdin through a pipe, to its end.
  auto cat = exec_request({"/bin/sh", "-c", "cat; echo done"});
  cat.stdin_open = true;
  auto k = exec_in_container(c->pid, cat);
  ASSERT_TRUE(k.ok()) << k.error().describe();
  ASSERT_EQ(::write(k->stdin_fd.get(), "abc", 3), 3);
  k->stdin_fd.reset();
  EXPECT_EQ(collect(*k).out, "abcdone\n");

  ::kill(c->pid, SIGKILL);
  EXPECT_EQ(collect(*c).status, 128 + SIGKILL);
}

}  // namespace
}  // namespace confpod::guest::agent
