// The fault campaign (issue #15, docs/testing.md "Faults"): confpodd killed with SIGKILL at
// named steps of each lifecycle (CONFPOD_TEST_CRASH_AT, attest/base/crash_point.h), a state
// directory on a full file system, and a corrupt or foreign database. Real daemon, real bus,
// real QEMU (TCG or KVM), real SQLite files; each test asserts that nothing is lost and that
// every pod is in a true state afterwards, with exactly the QEMU processes its state implies.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/bus.h"
#include "tests/support/bus_calls.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;
using testing::call;
using testing::call_s;
using testing::get_string_property;
using testing::list_pods;
using testing::pod_spec;
using testing::read_file;
using testing::Reply;
using testing::set_resource;
using testing::wait_for;

constexpr const char* kBroker = "org.confpod1.Broker";

std::string pod_path(const std::string& name) { return "/org/confpod1/pod/" + name; }

std::string state_of(sd_bus* bus, const std::string& name) {
  for (const auto& pod : list_pods(bus))
    if (pod.name == name) return pod.state;
  return "<absent>";
}

// Live (not zombie) processes whose command line names this pod's QMP socket: its QEMUs.
int qemu_count(const testing::DaemonProcess& daemon, const std::string& pod) {
  const std::string socket = daemon.runtime_dir() + "/pods/" + pod + "/qmp.sock";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file("/proc/" + pid + "/cmdline");
    if (cmdline.find(socket) != std::string::npos && testing::alive(std::stoi(pid))) ++count;
  }
  return count;
}

std::vector<std::string> list_resources(sd_bus* bus) {
  Reply reply = call(bus, "/org/confpod1", kBroker, "ListResources");
  std::vector<std::string> out;
  char** paths = nullptr;
  if (reply.ok && sd_bus_message_read_strv(reply.message.get(), &paths) >= 0 && paths != nullptr) {
    for (char** p = paths; *p != nullptr; ++p) {
      out.emplace_back(*p);
      std::free(*p);
    }
    std::free(paths);
  }
  return out;
}

Reply remove_pod(sd_bus* bus, const std::string& name, bool force) {
  return call(
      bus, "/org/confpod1", testing::kManagerInterface, "RemovePod",
      [&](sd_bus_message* m) { return sd_bus_message_append(m, "sb", name.c_str(), force); });
}

class FaultsTest : public ::testing::Test {
 protected:
  // Restarts the daemon armed to kill itself at `step`, runs `op` (whose call the crash cuts
  // off), checks that it died by SIGKILL, and starts it again unarmed.
  void crash_at(testing::DaemonProcess& daemon, const std::string& step,
                const std::function<void(sd_bus*)>& op) {
    SCOPED_TRACE("crash point " + step);
    daemon.set_env({"CONFPOD_TEST_CRASH_AT=" + step});
    daemon.restart();
    {
      testing::BusPtr conn = testing::open_bus(bus_);
      op(conn.get());
    }
    const int status = daemon.wait_exit(60s);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "confpodd did not die at " << step << " (wait status " << status << ")\n"
        << daemon.log();
    daemon.set_env({});
    daemon.restart();
  }

  testing::PrivateBus bus_;
};

// kill -9 between the steps of create, start (before and after QEMU's exec), stop (before
// the power-down, after QEMU's exit), remove and a secret's store.
TEST_F(FaultsTest, KillNineAtEachLifecycleStepLosesNothing) {
  testing::DaemonProcess daemon(bus_);
  testing::BusPtr conn = testing::open_bus(bus_);

  // CreatePod: the row is written, the firewall not yet: after restart the pod is there,
  // once, and created.
  crash_at(daemon, "create.stored",
           [](sd_bus* bus) { EXPECT_FALSE(call_s(bus, "CreatePod", pod_spec("a")).ok); });
  EXPECT_EQ(state_of(conn.get(), "a"), "created") << daemon.log();
  Reply again = call_s(conn.get(), "CreatePod", pod_spec("a"));
  EXPECT_EQ(again.error_name, "org.confpod1.Error.PodExists");

  // StartPod before QEMU's exec: "starting" was stored, no VM exists; restart says failed
  // (never silently "running") and starts no QEMU.
  crash_at(daemon, "start.starting",
           [](sd_bus* bus) { EXPECT_FALSE(call_s(bus, "StartPod", "a").ok); });
  EXPECT_EQ(state_of(conn.get(), "a"), "failed") << daemon.log();
  EXPECT_EQ(qemu_count(daemon, "a"), 0);

  // StartPod after QEMU's exec, before "running" was stored: the restart re-attaches to that
  // one QEMU (none started twice).
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("b")).ok);
  crash_at(daemon, "start.exec",
           [](sd_bus* bus) { EXPECT_FALSE(call_s(bus, "StartPod", "b").ok); });
  EXPECT_EQ(state_of(conn.get(), "b"), "running") << daemon.log();
  EXPECT_EQ(qemu_count(daemon, "b"), 1);

  // A secret: stored before the reply was lost, so it is there after the restart.
  crash_at(daemon, "secret.stored",
           [](sd_bus* bus) { EXPECT_FALSE(set_resource(bus, "site/db/password", "s3cret").ok); });
  auto resources = list_resources(conn.get());
  EXPECT_EQ(resources, std::vector<std::string>{"site/db/password"});

  // StopPod after "stopping" was stored, before the power-down: the restart finishes the stop.
  ASSERT_TRUE(wait_for([&] { return testing::guest_ready(daemon, "b"); }, 120s)) << daemon.log();
  crash_at(daemon, "stop.stopping",
           [](sd_bus* bus) { EXPECT_FALSE(call_s(bus, "StopPod", "b").ok); });
  EXPECT_TRUE(wait_for([&] { return state_of(conn.get(), "b") == "exited"; }, 60s))
      << state_of(conn.get(), "b") << "\n"
      << daemon.log();
  EXPECT_TRUE(wait_for([&] { return qemu_count(daemon, "b") == 0; }, 10s));

  // StopPod after QEMU exited, before the exit was stored: the stop ended as asked.
  Reply started = call_s(conn.get(), "StartPod", "a");
  ASSERT_TRUE(started.ok) << started.error_message << daemon.log();
  crash_at(daemon, "stop.exited",
           [](sd_bus* bus) { EXPECT_FALSE(call_s(bus, "StopPod", "a").ok); });
  EXPECT_EQ(state_of(conn.get(), "a"), "exited") << daemon.log();
  EXPECT_EQ(qemu_count(daemon, "a"), 0);

  // RemovePod after the row is gone, before the clean-up: gone, and its runtime directory
  // is swept at the restart.
  crash_at(daemon, "remove.deleted",
           [](sd_bus* bus) { EXPECT_FALSE(remove_pod(bus, "a", false).ok); });
  EXPECT_EQ(state_of(conn.get(), "a"), "<absent>");
  EXPECT_FALSE(std::filesystem::exists(daemon.runtime_dir() + "/pods/a")) << daemon.log();

  // What was not touched is intact.
  EXPECT_EQ(state_of(conn.get(), "b"), "exited");
  EXPECT_EQ(list_resources(conn.get()), std::vector<std::string>{"site/db/password"});
  EXPECT_EQ(list_pods(conn.get()).size(), 1u);
}

// A QEMU whose pod is no longer in the store (the row gone, the VM not) is killed at the
// next start, not left running unaccounted for.
TEST_F(FaultsTest, AQemuOfNoStoredPodIsKilledAtRestart) {
  testing::DaemonProcess daemon(bus_);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("gone")).ok);
  Reply started = call_s(conn.get(), "StartPod", "gone");
  ASSERT_TRUE(started.ok) << started.error_message << daemon.log();
  pid_t qemu = testing::pod_qemu_pid(daemon, "gone");
  ASSERT_GT(qemu, 0);
  daemon.kill9();
  auto sql = testing::run_process({"/usr/bin/sqlite3", daemon.state_dir() + "/confpod.db",
                                   "DELETE FROM pods WHERE name = 'gone'"});
  ASSERT_EQ(sql.exit_code, 0) << sql.out;
  daemon.restart();
  EXPECT_EQ(state_of(conn.get(), "gone"), "<absent>");
  EXPECT_TRUE(wait_for([&] { return !testing::alive(qemu); }, 10s)) << daemon.log();
  EXPECT_FALSE(std::filesystem::exists(daemon.runtime_dir() + "/pods/gone"));
}

// A database that is not confpod's (garbage, or another program's SQLite file): confpodd
// refuses to start and names the file; the file is left exactly as it was.
TEST_F(FaultsTest, CorruptOrForeignDatabaseIsRefusedNeverReset) {
  testing::DaemonProcess daemon(bus_);
  const std::string db = daemon.state_dir() + "/confpod.db";
  ASSERT_EQ(daemon.terminate(), 0);
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(db + suffix);

  struct Case {
    const char* what;
    std::function<void()> make;
  };
  const std::vector<Case> cases = {
      {"garbage",
       [&] {
         std::ofstream out(db, std::ios::binary | std::ios::trunc);
         for (int i = 0; i < 512; ++i) out << "not a database ";
       }},
      {"another program's SQLite file",
       [&] {
         std::filesystem::remove(db);
         auto made =
             testing::run_process({"/usr/bin/sqlite3", db,
                                   "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);"
                                   "INSERT INTO invoices VALUES (1, 99.5);"});
         ASSERT_EQ(made.exit_code, 0) << made.out;
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    c.make();
    const std::string before = read_file(db);
    EXPECT_THROW(daemon.restart(), std::runtime_error);
    const std::string log = daemon.log();
    EXPECT_NE(log.find(db), std::string::npos) << "the error must name the file:\n" << log;
    EXPECT_TRUE(read_file(db) == before) << "the file was changed";
  }
}

// The state directory on a small tmpfs that fills up: every mutation fails with StorageFull
// and changes nothing, reads keep working, the database stays sound, and once there is space
// the same calls succeed.
TEST_F(FaultsTest, FullStateDirectoryRefusesChangesKeepsServingReads) {
  // Our own mount namespace (the daemon, our child, inherits it): the machine sees nothing.
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno);
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
      << std::strerror(errno);

  testing::DaemonProcess daemon(bus_);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("before")).ok);
  ASSERT_TRUE(set_resource(conn.get(), "site/app/key", "v1").ok);
  ASSERT_EQ(daemon.terminate(), 0);

  // Move the state onto an 8 MiB tmpfs, then start again.
  const std::string state = daemon.state_dir();
  const std::string saved = daemon.dir() + "/state.saved";
  std::filesystem::rename(state, saved);
  std::filesystem::create_directory(state);
  ASSERT_EQ(::mount("confpod-full", state.c_str(), "tmpfs", 0, "size=8m,mode=0700"), 0)
      << std::strerror(errno);
  std::filesystem::copy(saved, state, std::filesystem::copy_options::recursive);
  daemon.restart();

  // Fill it.
  const std::string filler = state + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    std::string block(64 * 1024, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }

  Reply create = call_s(conn.get(), "CreatePod", pod_spec("after"));
  EXPECT_FALSE(create.ok);
  EXPECT_EQ(create.error_name, "org.confpod1.Error.StorageFull") << create.error_message;
  EXPECT_NE(create.error_message.find("confpod.db"), std::string::npos) << create.error_message;
  Reply secret = set_resource(conn.get(), "site/app/key", "v2");
  EXPECT_EQ(secret.error_name, "org.confpod1.Error.StorageFull") << secret.error_message;
  Reply removed = remove_pod(conn.get(), "before", false);
  EXPECT_EQ(removed.error_name, "org.confpod1.Error.StorageFull") << removed.error_message;

  // Reads, and the daemon itself, carry on.
  auto pods = list_pods(conn.get());
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].name, "before");
  EXPECT_EQ(get_string_property(conn.get(), pod_path("before"), "State"), "created");
  EXPECT_EQ(list_resources(conn.get()), std::vector<std::string>{"site/app/key"});
  EXPECT_TRUE(testing::alive(daemon.pid()));

  // Space again: the same calls succeed.
  std::filesystem::remove(filler);
  Reply retried = call_s(conn.get(), "CreatePod", pod_spec("after"));
  EXPECT_TRUE(retried.ok) << retried.error_name << ": " << retried.error_message;
  EXPECT_TRUE(set_resource(conn.get(), "site/app/key", "v2").ok);
  EXPECT_EQ(list_pods(conn.get()).size(), 2u);

  ASSERT_EQ(daemon.terminate(), 0);
  auto check =
      testing::run_process({"/usr/bin/sqlite3", state + "/confpod.db", "PRAGMA integrity_check"});
  EXPECT_EQ(check.out, "ok\n");
  daemon.restart();
  EXPECT_EQ(list_pods(conn.get()).size(), 2u);
}

}  // namespace
}  // namespace confpod
