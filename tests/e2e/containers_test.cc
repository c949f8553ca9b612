// End to end: what a pod's containers may do, in real QEMU guests (TCG here, KVM where it
// runs), through the real daemon (docs/containers.md). The probe image carries
// tests/support/probe.cc, which reports the kernel's own answers from inside a container.
//
// One daemon, two pods booted side by side (their boots overlap), every assertion on what they
// left in their logs:
//   - "confined": an init container runs first; a container as uid 1000 and one as root with
//     the default capabilities and seccomp filter cannot write /, mount, load a module or
//     reboot; one with CAP_SYS_ADMIN added and seccomp = "unconfined" can mount; a container
//     over its memory limit is killed and reported oom (the pod's ExitStatus 137); a
//     cpu-limited one stays under its limit; two containers talk over localhost; a secret
//     reaches a container as an environment variable.
//   - "initfail": an init container fails, so the pod ends with its status and the main
//     container never starts.
//   - "crash": a guest kernel panic (pvpanic) ends the VM at once; the pod fails with
//     ExitReason "guest kernel panic".
//   - "shell" (allow_exec = true) and "sealed" (allow_exec = false) keep running: confpodctl
//     exec runs `id` with its exit status passed back, a pty echoes, stdin reaches the
//     command, attach follows a container's output; in "sealed" the agent refuses exec and
//     says so in its log (confpodd itself does not look at allow_exec, so the refusal seen is
//     the guest's own).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>

#include "tests/support/bus.h"
#include "tests/support/bus_calls.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> probe_fields(const std::string& log, const std::string& tag) {
  std::map<std::string, std::string> m;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(tag + ".", 0) != 0) continue;
    auto eq = line.find('=');
    if (eq != std::string::npos)
      m[line.substr(tag.size() + 1, eq - tag.size() - 1)] = line.substr(eq + 1);
  }
  return m;
}

class ContainersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bus_ = new testing::PrivateBus();
    testing::DaemonOptions options;
    options.accel = "auto";
    options.kbs_toml = "[kbs]\nenabled = true\nlisten = \"127.0.0.1:" +
                       std::to_string(testing::free_loopback_port()) + "\"\n";
    daemon_ = new testing::DaemonProcess(*bus_, options);
    image_dir_ = new testing::TempDir();
    image_ = new testing::OciImage(testing::probe_image(image_dir_->path() + "/probe.tar"));
    auto bus = testing::open_bus(*bus_);
    const std::string token = "e2e-token-value";
    auto stored = testing::set_resource(bus.get(), "default/e2e/token", token);
    ASSERT_TRUE(stored.ok) << stored.error_message;
    for (const auto& [name, spec] :
         {std::pair{"confined", confined_spec()}, std::pair{"initfail", initfail_spec()},
          std::pair{"shell", serving_spec("shell", true)},
          std::pair{"sealed", serving_spec("sealed", false)}, std::pair{"crash", crash_spec()}}) {
      auto created = testing::call_s(bus.get(), "CreatePod", spec);
      ASSERT_TRUE(created.ok) << created.error_message << "\n" << spec;
      auto started = testing::call_s(bus.get(), "StartPod", name);
      ASSERT_TRUE(started.ok) << started.error_message;
    }
    // Three pods end by themselves (every container exits, or the guest kernel panics), two
    // keep serving.
    ASSERT_TRUE(testing::wait_for(
        [&] {
          int ended = 0;
          for (const auto& pod : testing::list_pods(bus.get()))
            ended += pod.state == "exited" || pod.state == "failed";
          return ended == 3 && testing::guest_ready(*daemon_, "shell") &&
                 testing::guest_ready(*daemon_, "sealed");
        },
        600s))
        << daemon_->log();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete bus_;
    delete image_;
    delete image_dir_;
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "confpodd log:\n" << daemon_->log();
  }

  static std::string image_ref() { return "oci-archive:" + image_->archive + "@" + image_->digest; }

  static std::string container(const std::string& table, const std::string& name,
                               const std::string& command, const std::string& extra = "") {
    return "\n[[" + table + "]]\nname = \"" + name + "\"\nimage = \"" + image_ref() +
           "\"\ncommand = " + command + "\n" + extra;
  }

  static std::string confined_spec() {
    return "name = \"confined\"\ntee = \"none\"\n" +
           container("init_containers", "prep", R"(["/bin/sh", "-c", "echo prep.ran=yes"])") +
           container("containers", "restricted",
                     R"(["/bin/confpod-probe", "-t", "restricted", "privileges"])",
                     "user = \"1000:1000\"\n") +
           container("containers", "rootdefault",
                     R"(["/bin/confpod-probe", "-t", "rootdefault", "privileges"])",
                     "read_only_rootfs = true\ntmpfs = [\"/tmp\"]\n") +
           container("containers", "admin",
                     R"(["/bin/confpod-probe", "-t", "admin", "privileges"])",
                     "cap_add = [\"SYS_ADMIN\", \"sys_boot\"]\nseccomp = \"unconfined\"\n") +
           container("containers", "hog", R"(["/bin/confpod-probe", "-t", "hog", "alloc", "256"])",
                     "memory_mib = 48\n") +
           container("containers", "spin", R"(["/bin/confpod-probe", "-t", "spin", "burn", "3"])",
                     "cpus = 0.2\n") +
           container("containers", "server", R"(["/bin/sh", "-c", "echo pong | nc -l -p 8081"])") +
           container(
               "containers", "client",
               R"(["/bin/sh", "-c", "sleep 2; echo client.got=$(nc 127.0.0.1 8081); echo client.secret=$TOKEN"])") +
           "\n[[secrets]]\nresource = \"default/e2e/token\"\nenv = \"TOKEN\"\n";
  }

  static std::string serving_spec(const std::string& name, bool allow_exec) {
    return "name = \"" + name +
           "\"\ntee = \"none\"\nallow_exec = " + (allow_exec ? "true" : "false") +
           "\n[vm]\nmemory_mib = 256\n" +
           container(
               "containers", "app",
               R"(["/bin/sh", "-c", "trap 'exit 0' TERM; echo ready; while :; do echo tick; sleep 0.5; done"])");
  }

  static testing::ProcessResult ctl(const std::vector<std::string>& args,
                                    const testing::ProcessInput& input = {}) {
    std::vector<std::string> argv = {CONFPODCTL_PATH, "--address", bus_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::run_process(argv, input);
  }

  // A container privileged enough to make /proc/sysrq-trigger writable again crashes the
  // guest kernel: the tenant's own VM, which the tenant may break.
  static std::string crash_spec() {
    return "name = \"crash\"\ntee = \"none\"\n[vm]\nmemory_mib = 256\n" +
           container(
               "containers", "crasher",
               R"(["/bin/sh", "-c", "mount -o remount,bind,rw /proc/sysrq-trigger && echo c > /proc/sysrq-trigger; sleep 100"])",
               "cap_add = [\"SYS_ADMIN\"]\nseccomp = \"unconfined\"\n");
  }

  static std::string initfail_spec() {
    return "name = \"initfail\"\ntee = \"none\"\n[vm]\nmemory_mib = 256\n" +
           container("init_containers", "setup",
                     R"(["/bin/sh", "-c", "echo setup.ran=yes; exit 3"])") +
           container("containers", "main", R"(["/bin/sh", "-c", "echo main.ran=yes"])");
  }

  static std::string log_of(const std::string& pod) {
    auto bus = testing::open_bus(*bus_);
    auto reply =
        testing::call(bus.get(), testing::kManagerPath, testing::kManagerInterface, "GetPodLog",
                      [&](sd_bus_message* m) {
                        return sd_bus_message_append(m, "st", pod.c_str(), std::uint64_t{1} << 20);
                      });
    EXPECT_TRUE(reply.ok) << reply.error_message;
    return reply.ok ? testing::read_string(reply) : "";
  }

  static inline testing::PrivateBus* bus_ = nullptr;
  static inline testing::DaemonProcess* daemon_ = nullptr;
  static inline testing::TempDir* image_dir_ = nullptr;
  static inline testing::OciImage* image_ = nullptr;
};

TEST_F(ContainersTest, NonRootContainerCannotDoPrivilegedThings) {
  auto f = probe_fields(log_of("confined"), "restricted");
  EXPECT_EQ(f["uid"], "1000");
  EXPECT_EQ(f["write_root"], "EACCES");
  EXPECT_EQ(f["mount"], "EPERM");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["reboot"], "EPERM");
  EXPECT_EQ(f["unshare"], "EPERM");
  EXPECT_EQ(f["vsock"], "EPERM");  // no way around the agent to the host
  EXPECT_EQ(f["CapEff"], "0000000000000000");
  EXPECT_EQ(f["NoNewPrivs"], "1");
  EXPECT_EQ(f["Seccomp"], "2");
}

TEST_F(ContainersTest, RootContainerHasTheDefaultSetAndAReadOnlyRoot) {
  auto f = probe_fields(log_of("confined"), "rootdefault");
  EXPECT_EQ(f["uid"], "0");
  EXPECT_EQ(f["write_root"], "EROFS");
  EXPECT_EQ(f["sysrq"], "EROFS");  // root cannot crash the VM through /proc
  EXPECT_EQ(f["mount"], "EPERM");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["reboot"], "EPERM");
  EXPECT_EQ(f["clone_newuser"], "EPERM");
  EXPECT_EQ(f["CapEff"], "00000000a80425fb");
  EXPECT_EQ(f["Seccomp"], "2");
}

// The spec's additions are real: the same probe may mount, and reboot gets past the
// capability check to the bad magic (EINVAL); a module still may not be loaded.
TEST_F(ContainersTest, AddedCapabilitiesWithoutTheFilterAllowWhatTheyName) {
  auto f = probe_fields(log_of("confined"), "admin");
  EXPECT_EQ(f["mount"], "ok");
  EXPECT_EQ(f["reboot"], "EINVAL");
  EXPECT_EQ(f["init_module"], "EPERM");
  EXPECT_EQ(f["Seccomp"], "0");
}

TEST_F(ContainersTest, OverItsMemoryLimitIsKilledAndReportedOom) {
  const std::string log = log_of("confined");
  EXPECT_EQ(log.find("hog.allocated all"), std::string::npos) << log;
  EXPECT_NE(log.find("container hog exited with status 137 (oom"), std::string::npos) << log;
  EXPECT_NE(log.find("pod exited with status 137 (oom)"), std::string::npos) << log;
  auto bus = testing::open_bus(*bus_);
  const std::string path = "/org/confpod1/pod/confined";
  EXPECT_EQ(testing::get_trivial_property<std::int32_t>(bus.get(), path, "ExitStatus", 'i'), 137);
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "ExitReason"), "oom");
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "State"), "failed");
}

TEST_F(ContainersTest, CpuLimitedContainerStaysUnderItsLimit) {
  auto f = probe_fields(log_of("confined"), "spin");
  ASSERT_FALSE(f["cpu_ms"].empty()) << log_of("confined");
  const double cpu = std::stod(f["cpu_ms"]);
  const double wall = std::stod(f["wall_ms"]);
  ASSERT_GT(wall, 2500);
  // cpus = 0.2: a spinning process gets at most a fifth of a CPU (with slack for accounting);
  // unlimited, it would get most of one.
  std::cout << "spin: cpu " << cpu << " ms in " << wall << " ms (" << cpu / wall << ")\n";
  EXPECT_LT(cpu / wall, 0.3);
  EXPECT_GT(cpu / wall, 0.05);
}

TEST_F(ContainersTest, ContainersShareLocalhostAndInitRunsFirst) {
  const std::string log = log_of("confined");
  EXPECT_NE(log.find("client.got=pong"), std::string::npos) << log;
  // The secret for env reached the container's environment.
  EXPECT_NE(log.find("client.secret=e2e-token-value"), std::string::npos) << log;
  const auto prep = log.find("prep.ran=yes");
  ASSERT_NE(prep, std::string::npos) << log;
  for (const char* tag : {"restricted.", "rootdefault.", "client.got"})
    EXPECT_LT(prep, log.find(tag)) << tag << " before the init container's output:\n" << log;
}

TEST_F(ContainersTest, FailedInitContainerStopsThePodBeforeTheOthers) {
  const std::string log = log_of("initfail");
  EXPECT_NE(log.find("setup.ran=yes"), std::string::npos) << log;
  EXPECT_EQ(log.find("main.ran=yes"), std::string::npos) << log;
  auto bus = testing::open_bus(*bus_);
  const std::string path = "/org/confpod1/pod/initfail";
  EXPECT_EQ(testing::get_trivial_property<std::int32_t>(bus.get(), path, "ExitStatus", 'i'), 3);
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "ExitReason"), "");
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "State"), "failed");
}

TEST_F(ContainersTest, ExecRunsACommandAndPassesItsStatusBack) {
  auto id = ctl({"exec", "shell", "--", "id"});
  EXPECT_EQ(id.exit_code, 0) << id.err;
  EXPECT_EQ(id.out.rfind("uid=0(root) gid=0(root)", 0), 0u) << id.out;
  // The container named, and the command's own status as confpodctl's.
  auto status = ctl({"exec", "shell", "app", "--", "sh", "-c", "echo to-stderr >&2; exit 7"});
  EXPECT_EQ(status.exit_code, 7);
  EXPECT_EQ(status.err, "to-stderr\n");
  // As the container's processes are: confined alike.
  auto mount = ctl({"exec", "shell", "--", "sh", "-c", "mount -t tmpfs none /mnt"});
  EXPECT_NE(mount.exit_code, 0);
  EXPECT_NE(mount.err.find("denied"), std::string::npos) << mount.err;
}

TEST_F(ContainersTest, ExecWithStdinAndWithAPty) {
  testing::ProcessInput input;
  input.stdin_text = "typed line\n";
  // The command reads our stdin to its end, then goes on.
  auto cat = ctl({"exec", "-i", "shell", "--", "sh", "-c", "cat; echo end"}, input);
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, "typed line\nend\n");
  // Without -i it gets end of input at once.
  auto no_stdin = ctl({"exec", "shell", "--", "sh", "-c", "cat; echo end"}, input);
  EXPECT_EQ(no_stdin.out, "end\n");
  // -t: the guest's pty echoes what is typed (CR LF line ends) and the command sees a terminal.
  input.stdin_text = "hello\n";
  auto tty =
      ctl({"exec", "-it", "shell", "--", "sh", "-c", "read x; echo got:$x; test -t 0"}, input);
  EXPECT_EQ(tty.exit_code, 0) << tty.out << tty.err;
  EXPECT_NE(tty.out.find("hello\r\n"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("got:hello\r\n"), std::string::npos) << tty.out;
}

TEST_F(ContainersTest, ExecIsRefusedWhenInitDataDoesNotAllowIt) {
  auto refused = ctl({"exec", "sealed", "--", "id"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("org.confpod1.Error.ExecRefused"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("exec is not allowed by init-data"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out, "");
  // The refusal is the agent's, and it says so in the pod's log.
  EXPECT_TRUE(testing::wait_for(
      [] {
        return testing::read_file(daemon_->runtime_dir() + "/pods/sealed/agent.log")
                   .find("refused") != std::string::npos;
      },
      10s));
  auto unknown = ctl({"exec", "shell", "nope", "--", "id"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("org.confpod1.Error.NoSuchContainer"), std::string::npos)
      << unknown.err;
  auto ended = ctl({"exec", "confined", "--", "id"});
  EXPECT_EQ(ended.exit_code, 1);
  EXPECT_NE(ended.err.find("org.confpod1.Error.InvalidState"), std::string::npos) << ended.err;
}

TEST_F(ContainersTest, AttachFollowsAContainersOutput) {
  testing::ProcessInput input;
  input.kill_after = 20s;
  input.stop_when_out_has = "tick\ntick\n";
  auto attach = ctl({"attach", "shell", "app"}, input);
  EXPECT_NE(attach.out.find("tick\ntick\n"), std::string::npos) << attach.out << attach.err;
  // Only what came after the attach: the "ready" line of the container's start is not there.
  EXPECT_EQ(attach.out.find("ready"), std::string::npos) << attach.out;
}

TEST_F(ContainersTest, AGuestKernelPanicEndsThePodAtOnceWithItsReason) {
  auto bus = testing::open_bus(*bus_);
  const std::string path = "/org/confpod1/pod/crash";
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "State"), "failed");
  EXPECT_EQ(testing::get_string_property(bus.get(), path, "ExitReason"), "guest kernel panic");
  // QEMU's GUEST_PANICKED event is in the daemon's log (watched as it comes, or read at the
  // exit when the exit was seen first).
  EXPECT_NE(daemon_->log().find("guest kernel panicked pod=crash"), std::string::npos)
      << daemon_->log();
  // The console shows the panic the pvpanic device reported.
  EXPECT_NE(testing::read_file(daemon_->runtime_dir() + "/pods/crash/vm/serial.log")
                .find("sysrq triggered crash"),
            std::string::npos);
}

}  // namespace
}  // namespace confpod
