// The pod manager against a real store (SQLite in a temp dir) and real QEMU under TCG with
// the test guest (guest/image). Each test drives the sd-event loop itself.
#include "daemon/pods/manager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include "tests/support/bus.h"
#include "tests/support/process.h"
#include "vmm/probe.h"

namespace confpod::pods {
namespace {

using namespace std::chrono_literals;
using store::PodState;

struct EventUnref {
  void operator()(sd_event* e) const { sd_event_unref(e); }
};

const vmm::HostProbe& host_probe() {
  static const vmm::HostProbe probe = [] {
    vmm::ProbeOptions options;
    return vmm::probe_host(options);
  }();
  return probe;
}

class PodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sd_event* e = nullptr;
    ASSERT_GE(sd_event_new(&e), 0);
    event_.reset(e);
    image_path_ = dir_.write("app.tar", std::string(4096, '\0'));
  }

  ManagerOptions options(bool allow_insecure = true) {
    ManagerOptions o;
    o.config.state_dir = dir_.path() + "/state";
    o.config.host.runtime_dir = dir_.path() + "/run";
    o.config.host.accel = "tcg";
    o.config.host.allow_insecure_tee = allow_insecure;
    o.config.stop_timeout_seconds = 2;
    if (with_guest_) {
      testing::GuestImage image = testing::guest_image();
      o.config.host.kernel = image.kernel;
      o.config.host.initrd = image.initrd;
      o.config.host.kernel_cmdline = "console=ttyS0 quiet panic=-1";
    }
    o.probe = host_probe();
    o.restart_delay = 100ms;
    o.restart_delay_max = 400ms;
    return o;
  }

  std::unique_ptr<Manager> make_manager(ManagerOptions o) {
    auto m = Manager::create(event_.get(), std::move(o));
    EXPECT_TRUE(m.ok()) << m.error().describe();
    if (!m.ok()) return nullptr;
    auto manager = std::move(*m);
    Status recovered = manager->recover();
    EXPECT_TRUE(recovered.ok()) << recovered.error().describe();
    return manager;
  }

  std::string spec(const std::string& name, const std::string& restart = "no") {
    return "name = \"" + name + "\"\ntee = \"none\"\nrestart = \"" + restart +
           "\"\n[vm]\nvcpus = 1\nmemory_mib = 256\n[[containers]]\nname = \"app\"\n"
           "image = \"oci-archive:" +
           image_path_ + "@sha256:" + std::string(64, '0') + "\"\n";
  }

  // Runs the loop until `done` or the deadline.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 30s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      sd_event_run(event_.get(), 50000);
    }
    return true;
  }

  // Calls an async Manager operation and runs the loop until it is done.
  Status call(const std::function<void(Manager::Done)>& op) {
    std::optional<Status> result;
    op([&](Status s) { result = std::move(s); });
    EXPECT_TRUE(run_until([&] { return result.has_value(); }, 60s));
    return result.value_or(make_error("test.timeout", "no answer"));
  }

  pid_t qemu_pid(const std::string& name) {
    std::ifstream in(dir_.path() + "/run/pods/" + name + "/qemu.pid");
    long pid = -1;
    in >> pid;
    return static_cast<pid_t>(pid);
  }

  PodState state(Manager& m, const std::string& name) {
    const store::PodRecord* pod = m.find(name);
    return pod == nullptr ? PodState::kCreated : pod->state;
  }

  testing::TempDir dir_;
  std::unique_ptr<sd_event, EventUnref> event_;
  std::string image_path_;
  bool with_guest_ = true;
};

TEST(PodsHelpers, ExitStatusOf) {
  vmm::ExitInfo info;
  EXPECT_EQ(exit_status_of(info), -1);
  info.exit_code = 3;
  EXPECT_EQ(exit_status_of(info), 3);
  info.exit_code.reset();
  info.signal = SIGSEGV;
  EXPECT_EQ(exit_status_of(info), 128 + SIGSEGV);
  info.signal.reset();
  info.cause = vmm::ExitCause::kKilledBySupervisor;
  EXPECT_EQ(exit_status_of(info), 137);
  info.cause = vmm::ExitCause::kGuestShutdown;
  info.shutdown_event_seen = true;
  info.shutdown_reason = "guest-shutdown";
  EXPECT_EQ(exit_status_of(info), 0);
  info.shutdown_reason = "guest-panic";
  EXPECT_EQ(exit_status_of(info), -1);
}

TEST(PodsHelpers, SanitizeUtf8) {
  EXPECT_EQ(sanitize_utf8("plain\n"), "plain\n");
  EXPECT_EQ(sanitize_utf8("\xc3\xa9t\xc3\xa9"), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(sanitize_utf8(std::string("a\0b", 3)),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(sanitize_utf8("\xff"), "\xef\xbf\xbd");
  EXPECT_EQ(sanitize_utf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");                  // overlong '/'
  EXPECT_EQ(sanitize_utf8("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(sanitize_utf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");                  // truncated
  EXPECT_EQ(sanitize_utf8("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
}

TEST_F(PodsTest, CreateValidatesAndPersists) {
  with_guest_ = false;
  auto m = make_manager(options());
  ASSERT_TRUE(m);

  auto bad = m->create_pod("name = \"x\"\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "spec.invalid");

  std::string huge(spec::kMaxSpecBytes + 1, '#');
  auto oversize = m->create_pod(huge);
  ASSERT_FALSE(oversize.ok());
  EXPECT_EQ(oversize.error().code, "spec.invalid");
  EXPECT_NE(oversize.error().message.find(std::to_string(huge.size())), std::string::npos);

  auto created = m->create_pod(spec("web"));
  ASSERT_TRUE(created.ok()) << created.error().describe();
  EXPECT_EQ(created->state, PodState::kCreated);
  EXPECT_EQ(created->tee, "none");
  EXPECT_GT(created->created_at_us, 0);
  EXPECT_EQ(created->spec_toml, spec::to_toml(*spec::parse_pod_spec(spec("web"))));

  auto dup = m->create_pod(spec("web"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "pods.exists");

  // Another manager on the same state dir sees the pod.
  m.reset();
  auto again = make_manager(options());
  ASSERT_TRUE(again);
  ASSERT_NE(again->find("web"), nullptr);
  EXPECT_EQ(*again->find("web"), *created);
  EXPECT_EQ(again->list().size(), 1u);
}

TEST_F(PodsTest, TeeNoneNeedsAllowInsecure) {
  with_guest_ = false;
  auto m = make_manager(options(false));
  ASSERT_TRUE(m);
  auto created = m->create_pod(spec("web"));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().code, "vmm.tee_unavailable") << created.error().describe();
  EXPECT_EQ(m->list().size(), 0u);
}

TEST_F(PodsTest, InvalidStatesAndUnknownNames) {
  with_guest_ = false;
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("web")).ok());
  Status stop = call([&](Manager::Done d) { m->stop_pod("web", d); });
  EXPECT_EQ(stop.error().code, "pods.invalid_state");
  Status kill = call([&](Manager::Done d) { m->kill_pod("web", d); });
  EXPECT_EQ(kill.error().code, "pods.invalid_state");
  std::string hostile = "../../etc\n\x01" + std::string(300, 'x');
  Status start = call([&](Manager::Done d) { m->start_pod(hostile, d); });
  ASSERT_FALSE(start.ok());
  EXPECT_EQ(start.error().code, "pods.not_found");
  EXPECT_LT(start.error().message.size(), 120u);
  EXPECT_EQ(start.error().message.find('\n'), std::string::npos);
  EXPECT_FALSE(m->pod_log(hostile, 100).ok());
}

TEST_F(PodsTest, StartStopRemoveWithQemu) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("web")).ok());
  Status started = call([&](Manager::Done d) { m->start_pod("web", d); });
  ASSERT_TRUE(started.ok()) << started.error().describe() << "\n"
                            << m->pod_log("web", 4096).value();
  EXPECT_EQ(state(*m, "web"), PodState::kRunning);
  EXPECT_GT(m->find("web")->started_at_us.value_or(0), 0);
  EXPECT_EQ(m->running_count(), 1u);

  Status again = call([&](Manager::Done d) { m->start_pod("web", d); });
  EXPECT_EQ(again.error().code, "pods.invalid_state");
  Status remove = call([&](Manager::Done d) { m->remove_pod("web", false, d); });
  EXPECT_EQ(remove.error().code, "pods.invalid_state");

  // Graceful stop (the guest may not be up yet to see the button: then SIGKILL after 2 s).
  Status stopped = call([&](Manager::Done d) { m->stop_pod("web", d); });
  ASSERT_TRUE(stopped.ok()) << stopped.error().describe();
  EXPECT_EQ(state(*m, "web"), PodState::kExited);
  ASSERT_TRUE(m->find("web")->exit_status.has_value());

  auto log = m->pod_log("web", 1 << 20);
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("==> serial.log <=="), std::string::npos);

  std::string dir = dir_.path() + "/run/pods/web";
  EXPECT_TRUE(std::filesystem::exists(dir));
  Status removed = call([&](Manager::Done d) { m->remove_pod("web", false, d); });
  ASSERT_TRUE(removed.ok()) << removed.error().describe();
  EXPECT_EQ(m->find("web"), nullptr);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST_F(PodsTest, KillAndRestartPolicyAndForceRemove) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("job", "on-failure")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("job", d); }).ok());
  pid_t first = qemu_pid("job");
  ASSERT_GT(first, 0);

  // An unrequested death (SIGKILL from outside): failed, then restarted by on-failure.
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(run_until([&] { return state(*m, "job") == PodState::kFailed; }));
  EXPECT_EQ(m->find("job")->exit_status, 137);
  ASSERT_TRUE(run_until([&] { return state(*m, "job") == PodState::kRunning; }));

  // A requested kill ends in "exited" and is not restarted.
  ASSERT_TRUE(call([&](Manager::Done d) { m->kill_pod("job", d); }).ok());
  EXPECT_EQ(state(*m, "job"), PodState::kExited);
  EXPECT_EQ(m->find("job")->exit_status, 137);
  run_until([] { return false; }, 500ms);
  EXPECT_EQ(state(*m, "job"), PodState::kExited);

  // Force remove of a running pod kills it first.
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("job", d); }).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->remove_pod("job", true, d); }).ok());
  EXPECT_EQ(m->find("job"), nullptr);
}

TEST_F(PodsTest, NewManagerReattachesRunningVm) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("keep")).ok());
  ASSERT_TRUE(m->create_pod(spec("idle")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("keep", d); }).ok());
  m.reset();  // the daemon goes away; the VM stays

  auto again = make_manager(options());
  ASSERT_TRUE(again);
  EXPECT_EQ(state(*again, "keep"), PodState::kRunning);
  EXPECT_EQ(state(*again, "idle"), PodState::kCreated);
  ASSERT_TRUE(call([&](Manager::Done d) { again->kill_pod("keep", d); }).ok());
  EXPECT_EQ(state(*again, "keep"), PodState::kExited);
  EXPECT_EQ(again->find("keep")->exit_status, 137);
}

TEST_F(PodsTest, ReattachFailureMarksFailed) {
  auto m = make_manager(options());
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->create_pod(spec("gone")).ok());
  ASSERT_TRUE(call([&](Manager::Done d) { m->start_pod("gone", d); }).ok());
  pid_t pid = qemu_pid("gone");
  ASSERT_GT(pid, 0);
  m.reset();
  ::kill(pid, SIGKILL);
  // Reap it (we are its parent: the manager ran in this process).
  int status = 0;
  ::waitpid(pid, &status, 0);

  auto again = make_manager(options());
  ASSERT_TRUE(again);
  EXPECT_EQ(state(*again, "gone"), PodState::kFailed);
  EXPECT_EQ(again->find("gone")->exit_status, -1);
}

}  // namespace
}  // namespace confpod::pods
