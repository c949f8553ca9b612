// confpodctl's D-Bus verbs, run as real processes against a real confpodd on a private
// dbus-daemon (tests/support/bus.h): a tee "none" pod goes through run, ps, inspect, logs,
// stop and rm; the daemon's errors come out as one plain line with exit 1, an unreachable
// daemon or bus as exit 2.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/support/bus.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using testing::DaemonOptions;
using testing::DaemonProcess;
using testing::PrivateBus;
using testing::ProcessResult;
using testing::run_process;
using testing::serving_container_toml;
using testing::TempDir;

// A tee-none pod whose container (the hello image as a long-lived service) runs until stopped.
std::string spec(const std::string& name) {
  return "name = \"" + name + "\"\ntee = \"none\"\n\n" + serving_container_toml();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// One bus and one daemon for the whole suite: starting confpodd (and finding the guest image)
// is the slow part, and every test uses its own pod names.
class CliDaemon : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bus_ = new PrivateBus();
    DaemonOptions options;
    // The test guest powers off on ACPI quickly; a short grace keeps a guest that does not
    // from slowing the suite down.
    options.stop_timeout_seconds = 5;
    daemon_ = new DaemonProcess(*bus_, options);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete bus_;
    daemon_ = nullptr;
    bus_ = nullptr;
  }
  void TearDown() override {
    if (HasFailure() && daemon_ != nullptr) std::cerr << "confpodd log:\n" << daemon_->log();
  }

  // confpodctl --address <private bus> args...
  static ProcessResult ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {CONFPODCTL_PATH, "--address", bus_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  // The ps --json entry of `name`, or null.
  static nlohmann::json ps_entry(const std::string& name) {
    auto r = ctl({"ps", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto pods = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(pods.is_array()) << r.out;
    if (!pods.is_array()) return nullptr;
    for (const auto& pod : pods)
      if (pod.value("name", "") == name) return pod;
    return nullptr;
  }

  static nlohmann::json inspect(const std::string& name) {
    auto r = ctl({"inspect", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  }

  // A spec file for pod `name` in specs_ (`extra`: more tables after the container's).
  std::string write_spec(const std::string& name, const std::string& extra = "") {
    return specs_.write(name + ".toml", spec(name) + extra);
  }

  TempDir specs_;
  static PrivateBus* bus_;
  static DaemonProcess* daemon_;
};

PrivateBus* CliDaemon::bus_ = nullptr;
DaemonProcess* CliDaemon::daemon_ = nullptr;

TEST_F(CliDaemon, RunPsInspectLogsStopRm) {
  std::string path = write_spec("cli-web");

  auto run = ctl({"run", path});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "cli-web\n");
  // tee none is announced as insecure wherever a pod is shown.
  EXPECT_NE(run.err.find("INSECURE"), std::string::npos) << run.err;

  // ps: the table row, with the insecure marker in the TEE column.
  auto ps = ctl({"ps"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  auto rows = lines(ps.out);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].substr(0, 4), "NAME");
  EXPECT_NE(rows[0].find("STATE"), std::string::npos);
  EXPECT_NE(rows[0].find("TEE"), std::string::npos);
  bool found = false;
  for (const auto& row : rows) {
    if (row.rfind("cli-web ", 0) != 0) continue;
    found = true;
    EXPECT_NE(row.find(" running "), std::string::npos) << row;
    EXPECT_NE(row.find("none (INSECURE)"), std::string::npos) << row;
  }
  EXPECT_TRUE(found) << ps.out;

  nlohmann::json entry = ps_entry("cli-web");
  ASSERT_TRUE(entry.is_object());
  EXPECT_EQ(entry["state"], "running");
  EXPECT_EQ(entry["tee"], "none");
  EXPECT_EQ(entry["insecure"], true);
  EXPECT_EQ(entry["path"], "/org/confpod1/pod/cli_2dweb");

  // inspect: every property of org.confpod1.Pod, with its D-Bus type kept.
  nlohmann::json pod = inspect("cli-web");
  for (const char* key : {"Name", "State", "Tee", "Spec", "CreatedAt", "StartedAt", "ExitStatus",
                          "Measurement", "Path", "Insecure"})
    EXPECT_TRUE(pod.contains(key)) << key << " missing in " << pod.dump();
  EXPECT_EQ(pod["Name"], "cli-web");
  EXPECT_EQ(pod["State"], "running");
  EXPECT_EQ(pod["Tee"], "none");
  EXPECT_EQ(pod["Insecure"], true);
  EXPECT_EQ(pod["Path"], "/org/confpod1/pod/cli_2dweb");
  ASSERT_TRUE(pod["Spec"].is_string());
  EXPECT_NE(pod["Spec"].get<std::string>().find("cli-web"), std::string::npos) << pod["Spec"];
  ASSERT_TRUE(pod["CreatedAt"].is_number_unsigned()) << pod["CreatedAt"];
  ASSERT_TRUE(pod["StartedAt"].is_number_unsigned()) << pod["StartedAt"];
  EXPECT_GT(pod["CreatedAt"].get<std::uint64_t>(), 0u);
  EXPECT_GE(pod["StartedAt"].get<std::uint64_t>(), pod["CreatedAt"].get<std::uint64_t>());
  EXPECT_TRUE(pod["ExitStatus"].is_number_integer()) << pod["ExitStatus"];

  // logs: the QEMU log and the serial console, each under its header.
  auto logs = ctl({"logs", "cli-web"});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("==> qemu.log <=="), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("==> serial.log <=="), std::string::npos) << logs.out;

  // logs -f follows until the pod exits: it ends on its own once stop has run.
  auto follow = std::async(std::launch::async, [] { return ctl({"logs", "-f", "cli-web"}); });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(follow.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "logs -f returned while the pod runs";

  auto stop = ctl({"stop", "cli-web"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(stop.out, "cli-web\n");
  EXPECT_EQ(stop.err, "");

  ASSERT_EQ(follow.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "logs -f did not end after the pod stopped";
  auto followed = follow.get();
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_EQ(followed.out.find("==> qemu.log <=="), 0u) << followed.out;
  EXPECT_NE(followed.out.find("==> serial.log <=="), std::string::npos) << followed.out;

  entry = ps_entry("cli-web");
  ASSERT_TRUE(entry.is_object());
  EXPECT_EQ(entry["state"], "exited");

  auto rm = ctl({"rm", "cli-web"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(rm.out, "cli-web\n");
  EXPECT_TRUE(ps_entry("cli-web").is_null());

  auto gone = ctl({"inspect", "cli-web"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_EQ(gone.err, "confpodctl: org.confpod1.Error.NoSuchPod: no pod named \"cli-web\"\n");
}

TEST_F(CliDaemon, CreateStartKillAndForcedRemove) {
  std::string path = write_spec("cli-db");
  auto create = ctl({"create", path});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  EXPECT_EQ(create.out, "cli-db\n");
  EXPECT_EQ(inspect("cli-db")["State"], "created");
  EXPECT_EQ(inspect("cli-db")["StartedAt"], 0u);

  // The same name again: the daemon's PodExists, one line, exit 1.
  auto again = ctl({"create", path});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err.rfind("confpodctl: org.confpod1.Error.PodExists: ", 0), 0u) << again.err;
  EXPECT_EQ(lines(again.err).size(), 1u) << again.err;

  auto start = ctl({"start", "cli-db"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(inspect("cli-db")["State"], "running");

  // Starting a running pod is the daemon's InvalidState.
  auto twice = ctl({"start", "cli-db"});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_EQ(twice.err.rfind("confpodctl: org.confpod1.Error.InvalidState: ", 0), 0u) << twice.err;

  // rm refuses a running pod; rm -f kills it first.
  auto rm = ctl({"rm", "cli-db"});
  EXPECT_EQ(rm.exit_code, 1);
  EXPECT_EQ(rm.err.rfind("confpodctl: org.confpod1.Error.InvalidState: ", 0), 0u) << rm.err;

  auto kill = ctl({"kill", "cli-db"});
  ASSERT_EQ(kill.exit_code, 0) << kill.err;
  nlohmann::json pod = inspect("cli-db");
  EXPECT_EQ(pod["State"], "exited");

  ASSERT_EQ(ctl({"start", "cli-db"}).exit_code, 0);
  auto forced = ctl({"rm", "-f", "cli-db"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(ps_entry("cli-db").is_null());
}

TEST_F(CliDaemon, NoSuchPodIsOnePlainLineAndExit1) {
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"start", "nosuch"},
                                             {"stop", "nosuch"},
                                             {"kill", "nosuch"},
                                             {"rm", "nosuch"},
                                             {"rm", "-f", "nosuch"},
                                             {"inspect", "nosuch"},
                                             {"logs", "nosuch"},
                                             {"logs", "-f", "nosuch"}}) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 1) << args[0];
    EXPECT_EQ(r.out, "") << args[0];
    EXPECT_EQ(r.err, "confpodctl: org.confpod1.Error.NoSuchPod: no pod named \"nosuch\"\n")
        << args[0];
  }
}

TEST_F(CliDaemon, InvalidSpecNamesTheKey) {
  std::string path = write_spec("cli-bad", "\n[vm]\nvcpus = 2\nbogus_key = 1\n");
  auto r = ctl({"run", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("confpodctl: org.confpod1.Error.InvalidSpec: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("bogus_key"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(ps_entry("cli-bad").is_null());
}

TEST_F(CliDaemon, UnreadableSpecIsExit2WithoutCallingTheDaemon) {
  auto r = ctl({"create", specs_.path() + "/missing.toml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.toml"), std::string::npos) << r.err;
}

TEST_F(CliDaemon, UnprivilegedCallerMayListButNotCreate) {
  std::string path = write_spec("cli-nobody");
  ::chmod(specs_.path().c_str(), 0755);
  ::chmod(path.c_str(), 0644);
  auto as_nobody = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
        CONFPODCTL_PATH,    "--address",     bus_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  };
  auto ps = as_nobody({"ps"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  auto create = as_nobody({"create", path});
  EXPECT_EQ(create.exit_code, 1);
  EXPECT_EQ(create.err.rfind("confpodctl: org.freedesktop.DBus.Error.AccessDenied: ", 0), 0u)
      << create.err;
  EXPECT_TRUE(ps_entry("cli-nobody").is_null());
}

TEST_F(CliDaemon, SystemBusAddressFromTheEnvironment) {
  auto r = run_process({"/usr/bin/env", "DBUS_SYSTEM_BUS_ADDRESS=" + bus_->address(),
                        CONFPODCTL_PATH, "ps", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out, nullptr, false).is_array()) << r.out;
}

// No daemon needed for these: nothing is listening, or nobody owns org.confpod1.
TEST(CliNoDaemon, NoBusIsExit2) {
  TempDir dir;
  std::string address = "unix:path=" + dir.path() + "/no_such_socket";
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"ps"}, {"inspect", "x"}, {"stop", "x"}}) {
    std::vector<std::string> argv = {CONFPODCTL_PATH, "--address", address};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_process(argv);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.rfind("confpodctl: ctl.connect: cannot connect to the bus at " + address, 0),
              0u)
        << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  }
  auto env =
      run_process({"/usr/bin/env", "DBUS_SYSTEM_BUS_ADDRESS=" + address, CONFPODCTL_PATH, "ps"});
  EXPECT_EQ(env.exit_code, 2) << env.err;
}

TEST(CliNoDaemon, BusWithoutDaemonIsExit2) {
  PrivateBus bus;
  auto r = run_process({CONFPODCTL_PATH, "--address", bus.address(), "ps"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("confpodctl: org.freedesktop.DBus.Error.ServiceUnknown: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace confpod
