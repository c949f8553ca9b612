// confpodd end to end: a real dbus-daemon (PrivateBus), the real confpodd process
// (DaemonProcess) and real QEMU TCG guests (tee none), driven through busctl and through
// sd-bus from the test. Two tests boot a VM; the rest need none.
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/bus.h"
#include "tests/support/bus_calls.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kName = testing::kBusName;
constexpr const char* kPath = testing::kManagerPath;
constexpr const char* kManager = testing::kManagerInterface;
constexpr const char* kPod = testing::kPodInterface;
using testing::alive;
using testing::call;
using testing::call_s;
using testing::get_string_property;
using testing::get_trivial_property;
using testing::guest_ready;
using testing::list_pods;
using testing::MessagePtr;
using testing::pod_spec;
using testing::PodEntry;
using testing::read_file;
using testing::read_string;
using testing::Reply;
using testing::SlotPtr;
using testing::wait_for;

// Signals under /org/confpod1, as "Member path detail" strings.
struct SignalLog {
  std::vector<std::string> seen;

  static int on_signal(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<SignalLog*>(userdata);
    std::string entry =
        std::string(sd_bus_message_get_member(m)) + " " + sd_bus_message_get_path(m);
    std::string member = sd_bus_message_get_member(m);
    if (member == "PodNew" || member == "PodRemoved") {
      const char *name = nullptr, *path = nullptr;
      if (sd_bus_message_read(m, "so", &name, &path) >= 0) entry += std::string(" ") + name;
    } else if (member == "PropertiesChanged") {
      const char* interface = nullptr;
      sd_bus_message_read(m, "s", &interface);
      if (sd_bus_message_enter_container(m, 'a', "{sv}") >= 0) {
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
          const char* property = nullptr;
          sd_bus_message_read(m, "s", &property);
          const char* contents = nullptr;
          sd_bus_message_peek_type(m, nullptr, &contents);
          entry += std::string(" ") + property;
          if (contents != nullptr && std::string(contents) == "s") {
            const char* value = nullptr;
            sd_bus_message_enter_container(m, 'v', "s");
            sd_bus_message_read(m, "s", &value);
            sd_bus_message_exit_container(m);
            entry += std::string("=") + value;
          } else {
            sd_bus_message_skip(m, "v");
          }
          sd_bus_message_exit_container(m);
        }
      }
    }
    self->seen.push_back(entry);
    return 0;
  }

  bool contains(const std::string& needle) const {
    for (const auto& s : seen)
      if (s.find(needle) != std::string::npos) return true;
    return false;
  }
  std::string dump() const {
    std::string out;
    for (const auto& s : seen) out += s + "\n";
    return out;
  }
};

// Processes incoming messages until `done` or the deadline.
bool pump_until(sd_bus* bus, const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    int r = sd_bus_process(bus, nullptr);
    if (r < 0) return false;
    if (r == 0) sd_bus_wait(bus, 50000);
  }
  return true;
}

// Calls a Manager method (argument "s", or "st" for GetPodLog, none for ListPods) from a child
// process running as uid/gid 65534 without supplementary groups. Returns "ok" or
// "<error name>: <message>".
std::string call_as_nobody(const testing::PrivateBus& bus, const char* member,
                           const std::string& arg, std::vector<gid_t> groups = {}) {
  std::string m = member;
  return testing::call_as_user(bus, 65534, 65534, groups, kPath, kManager, member,
                               [&](sd_bus_message* msg) {
                                 if (m == "ListPods") return 0;
                                 if (m == "GetPodLog")
                                   return sd_bus_message_append(msg, "st", arg.c_str(), 100);
                                 return sd_bus_message_append(msg, "s", arg.c_str());
                               });
}

class DaemonTest : public ::testing::Test {
 protected:
  testing::PrivateBus bus_;
};

// The whole lifecycle of one VM pod through busctl and sd-bus, with the signals it emits.
TEST_F(DaemonTest, LifecycleThroughBusctlAndSdBus) {
  testing::DaemonProcess daemon(bus_);
  testing::BusPtr conn = testing::open_bus(bus_);
  SignalLog signals;
  sd_bus_slot* raw_slot = nullptr;
  ASSERT_GE(sd_bus_add_match(conn.get(), &raw_slot, "type='signal',path_namespace='/org/confpod1'",
                             &SignalLog::on_signal, &signals),
            0);
  SlotPtr match(raw_slot);

  // Introspection shows the API.
  auto intro = testing::busctl(bus_, {"introspect", kName, kPath, kManager});
  ASSERT_EQ(intro.exit_code, 0) << intro.err;
  for (const char* member : {"CreatePod", "StartPod", "StopPod", "KillPod", "RemovePod", "GetPod",
                             "ListPods", "GetPodLog", "PodNew", "PodRemoved"})
    EXPECT_NE(intro.out.find(member), std::string::npos) << member << "\n" << intro.out;

  // CreatePod through busctl.
  auto created =
      testing::busctl(bus_, {"call", kName, kPath, kManager, "CreatePod", "s", pod_spec("web")});
  ASSERT_EQ(created.exit_code, 0) << created.err << daemon.log();
  EXPECT_EQ(created.out, "o \"/org/confpod1/pod/web\"\n");
  const std::string path = "/org/confpod1/pod/web";
  auto state = testing::busctl(bus_, {"get-property", kName, path, kPod, "State"});
  EXPECT_EQ(state.out, "s \"created\"\n") << state.err;
  auto tee = testing::busctl(bus_, {"get-property", kName, path, kPod, "Tee"});
  EXPECT_EQ(tee.out, "s \"none\"\n");
  auto pod_intro = testing::busctl(bus_, {"introspect", kName, path, kPod});
  for (const char* member : {"Name", "State", "Tee", "Spec", "CreatedAt", "StartedAt", "ExitStatus",
                             "Measurement", "Start", "Stop", "Kill", "Remove"})
    EXPECT_NE(pod_intro.out.find(member), std::string::npos) << member;
  auto tree = testing::busctl(bus_, {"tree", kName});
  EXPECT_NE(tree.out.find("/org/confpod1/pod/web"), std::string::npos) << tree.out;
  auto managed = testing::busctl(
      bus_, {"call", kName, kPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"});
  EXPECT_NE(managed.out.find("/org/confpod1/pod/web"), std::string::npos) << managed.out;

  // StartPod through sd-bus: answered once QEMU runs.
  Reply started = call_s(conn.get(), "StartPod", "web");
  ASSERT_TRUE(started.ok) << started.error_name << ": " << started.error_message << daemon.log();
  EXPECT_EQ(get_string_property(conn.get(), path, "State"), "running");
  EXPECT_GT(get_trivial_property<std::uint64_t>(conn.get(), path, "StartedAt", 't'), 0u);
  auto pods = list_pods(conn.get());
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].name, "web");
  EXPECT_EQ(pods[0].state, "running");
  EXPECT_EQ(pods[0].tee, "none");
  EXPECT_EQ(pods[0].path, path);
  Reply got = call_s(conn.get(), "GetPod", "web");
  EXPECT_EQ(read_string(got, 'o'), path);
  Reply again = call_s(conn.get(), "StartPod", "web");
  EXPECT_EQ(again.error_name, "org.confpod1.Error.InvalidState");
  Reply remove_running = call(conn.get(), kPath, kManager, "RemovePod", [](sd_bus_message* m) {
    return sd_bus_message_append(m, "sb", "web", 0);
  });
  EXPECT_EQ(remove_running.error_name, "org.confpod1.Error.InvalidState");

  // Graceful stop through busctl once the guest listens for the power button.
  ASSERT_TRUE(wait_for([&] { return guest_ready(daemon, "web"); }, 90s))
      << read_file(daemon.runtime_dir() + "/pods/web/vm/serial.log")
      << read_file(daemon.runtime_dir() + "/pods/web/agent.log");
  auto log =
      testing::busctl(bus_, {"call", kName, kPath, kManager, "GetPodLog", "st", "web", "65536"});
  EXPECT_EQ(log.exit_code, 0) << log.err;
  EXPECT_NE(log.out.find("==> containers.log <==\\n" + std::string(testing::kServingReady)),
            std::string::npos)
      << log.out;
  auto stopped = testing::busctl(
      bus_, {"--timeout=60", "call", kName, kPath, kManager, "StopPod", "s", "web"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err << daemon.log();
  EXPECT_EQ(get_string_property(conn.get(), path, "State"), "exited");
  EXPECT_EQ(get_trivial_property<std::int32_t>(conn.get(), path, "ExitStatus", 'i'), 0);

  // Remove through the Pod object's own method.
  auto removed = testing::busctl(bus_, {"call", kName, path, kPod, "Remove", "b", "false"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_TRUE(list_pods(conn.get()).empty());
  EXPECT_FALSE(std::filesystem::exists(daemon.runtime_dir() + "/pods/web"));
  Reply gone = call_s(conn.get(), "GetPod", "web");
  EXPECT_EQ(gone.error_name, "org.confpod1.Error.NoSuchPod");

  ASSERT_TRUE(pump_until(
      conn.get(), [&] { return signals.contains("PodRemoved"); }, 10s))
      << signals.dump();
  EXPECT_TRUE(signals.contains("PodNew /org/confpod1 web")) << signals.dump();
  EXPECT_TRUE(signals.contains("InterfacesAdded /org/confpod1")) << signals.dump();
  EXPECT_TRUE(signals.contains("PropertiesChanged /org/confpod1/pod/web State=starting"))
      << signals.dump();
  EXPECT_TRUE(signals.contains("PropertiesChanged /org/confpod1/pod/web State=running"))
      << signals.dump();
  EXPECT_TRUE(signals.contains("State=stopping")) << signals.dump();
  EXPECT_TRUE(signals.contains("State=exited ExitStatus")) << signals.dump();
  EXPECT_TRUE(signals.contains("InterfacesRemoved /org/confpod1")) << signals.dump();
  EXPECT_TRUE(signals.contains("PodRemoved /org/confpod1 web")) << signals.dump();
}

// Reading is open to everyone; changing things and reading logs need root (or group confpod,
// or polkit, neither of which uid 65534 has here).
TEST_F(DaemonTest, UnprivilegedCallerMayReadButNotChange) {
  testing::DaemonProcess daemon(bus_);
  testing::BusPtr conn = testing::open_bus(bus_);
  Reply first = call_s(conn.get(), "CreatePod", pod_spec("web"));
  ASSERT_TRUE(first.ok) << first.error_name << ": " << first.error_message << daemon.log();

  // busctl prints AccessDenied as "Access denied" (it replaces that error's message).
  auto create = testing::busctl(
      bus_, {"call", kName, kPath, kManager, "CreatePod", "s", pod_spec("other")}, true);
  EXPECT_NE(create.exit_code, 0);
  EXPECT_NE(create.err.find("Access denied"), std::string::npos) << create.err;
  auto start =
      testing::busctl(bus_, {"call", kName, kPath, kManager, "StartPod", "s", "web"}, true);
  EXPECT_NE(start.exit_code, 0);
  EXPECT_NE(start.err.find("Access denied"), std::string::npos) << start.err;
  auto pod_method =
      testing::busctl(bus_, {"call", kName, "/org/confpod1/pod/web", kPod, "Kill"}, true);
  EXPECT_NE(pod_method.exit_code, 0);
  EXPECT_NE(pod_method.err.find("Access denied"), std::string::npos) << pod_method.err;

  // The exact error names and messages, through sd-bus as uid 65534.
  for (const char* member : {"CreatePod", "StartPod", "StopPod", "KillPod", "GetPodLog"}) {
    std::string answer = call_as_nobody(
        bus_, member, member == std::string("CreatePod") ? pod_spec("other") : std::string("web"));
    EXPECT_EQ(answer.rfind("org.freedesktop.DBus.Error.AccessDenied: ", 0), 0u)
        << member << ": " << answer;
    EXPECT_NE(answer.find("needs root"), std::string::npos) << answer;
  }
  EXPECT_EQ(call_as_nobody(bus_, "GetPod", "web"), "ok");
  EXPECT_EQ(call_as_nobody(bus_, "ListPods", ""), "ok");

  auto list = testing::busctl(bus_, {"call", kName, kPath, kManager, "ListPods"}, true);
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out, "a(ssso) 1 \"web\" \"created\" \"none\" \"/org/confpod1/pod/web\"\n");
  auto state =
      testing::busctl(bus_, {"get-property", kName, "/org/confpod1/pod/web", kPod, "State"}, true);
  EXPECT_EQ(state.out, "s \"created\"\n") << state.err;
  auto get = testing::busctl(bus_, {"call", kName, kPath, kManager, "GetPod", "s", "web"}, true);
  EXPECT_EQ(get.out, "o \"/org/confpod1/pod/web\"\n") << get.err;

  // Nothing changed.
  auto pods = list_pods(conn.get());
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].state, "created");
}

// Members of the management group may change pods (here the group is "users", gid 100, via
// --manage-group; the default is "confpod").
TEST_F(DaemonTest, ManagementGroupMayChange) {
  struct group* users = ::getgrnam("users");
  ASSERT_NE(users, nullptr) << "this test needs the standard group \"users\"";
  gid_t gid = users->gr_gid;
  testing::DaemonOptions options;
  options.extra_args = {"--manage-group", "users"};
  testing::DaemonProcess daemon(bus_, options);
  EXPECT_EQ(call_as_nobody(bus_, "CreatePod", pod_spec("grp"), {gid}), "ok");
  EXPECT_EQ(call_as_nobody(bus_, "StopPod", "grp", {gid}),
            "org.confpod1.Error.InvalidState: pod grp is created: it does not run");
  std::string denied = call_as_nobody(bus_, "CreatePod", pod_spec("other"));
  EXPECT_EQ(denied.rfind("org.freedesktop.DBus.Error.AccessDenied", 0), 0u) << denied;
  testing::BusPtr conn = testing::open_bus(bus_);
  EXPECT_EQ(list_pods(conn.get()).size(), 1u);
}

// Every malformed spec of the corpus is InvalidSpec naming its key; nothing is lost and the
// daemon keeps serving. Plus the other error names.
TEST_F(DaemonTest, RejectionsNameTheProblem) {
  testing::DaemonProcess daemon(bus_);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("keep")).ok);

  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CONFPOD_SPEC_DATA "/bad")) {
    std::string text = read_file(entry.path());
    std::string first = text.substr(0, text.find('\n'));
    ASSERT_EQ(first.rfind("# expect: ", 0), 0u) << entry.path();
    std::string key = first.substr(10);
    Reply reply = call_s(conn.get(), "CreatePod", text);
    EXPECT_FALSE(reply.ok) << entry.path();
    EXPECT_EQ(reply.error_name, "org.confpod1.Error.InvalidSpec") << entry.path();
    EXPECT_NE(reply.error_message.find(key + ": "), std::string::npos)
        << entry.path() << ": " << reply.error_message;
    EXPECT_EQ(reply.error_message.rfind("line ", 0), 0u) << reply.error_message;
    ++checked;
  }
  EXPECT_EQ(checked, 67);

  std::string huge = pod_spec("big") + "# " + std::string(1 << 20, 'x') + "\n";
  Reply oversize = call_s(conn.get(), "CreatePod", huge);
  EXPECT_EQ(oversize.error_name, "org.confpod1.Error.InvalidSpec");
  EXPECT_NE(oversize.error_message.find(std::to_string(huge.size())), std::string::npos)
      << oversize.error_message;

  Reply dup = call_s(conn.get(), "CreatePod", pod_spec("keep"));
  EXPECT_EQ(dup.error_name, "org.confpod1.Error.PodExists");
  Reply snp = call_s(conn.get(), "CreatePod", pod_spec("secure", "snp"));
  EXPECT_EQ(snp.error_name, "org.confpod1.Error.TeeUnavailable");
  EXPECT_NE(snp.error_message.find("SEV-SNP unavailable"), std::string::npos) << snp.error_message;
  Reply stop = call_s(conn.get(), "StopPod", "keep");
  EXPECT_EQ(stop.error_name, "org.confpod1.Error.InvalidState") << stop.error_message;

  for (std::string hostile : {std::string("../../etc/passwd"), std::string("a/b"),
                              std::string("x\n\t\x01"), std::string(5000, 'a'), std::string()}) {
    for (const char* member : {"GetPod", "StartPod", "StopPod", "KillPod"}) {
      Reply r = call_s(conn.get(), member, hostile);
      EXPECT_EQ(r.error_name, "org.confpod1.Error.NoSuchPod") << member;
      EXPECT_LT(r.error_message.size(), 200u);
    }
  }
  auto odd_path =
      testing::busctl(bus_, {"get-property", kName, "/org/confpod1/pod/_2e_2e", kPod, "State"});
  EXPECT_NE(odd_path.exit_code, 0);

  auto pods = list_pods(conn.get());
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].name, "keep");
  EXPECT_TRUE(alive(daemon.pid()));
}

// No guest image in confpod.toml: confpodd builds one at start-up (guest_builder with
// guest_agent) into <state_dir>/guest, and pods boot it.
// [vmm] backend = "libvirt": confpodd runs pods as libvirt domains, the same API over D-Bus.
// Here libvirt's in-process test driver: the lifecycle only, no guest (the real guest under a
// real libvirtd is daemon/pods/pod_libvirt_test.cc). An unreachable libvirt fails the start
// with libvirt's reason and the daemon goes on.
TEST_F(DaemonTest, TheLibvirtBackendRunsPodsAsDomains) {
  testing::DaemonOptions options;
  options.vmm_toml = "backend = \"libvirt\"\nlibvirt_uri = \"test:///default\"\n";
  testing::DaemonProcess daemon(bus_, options);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("lv")).ok) << daemon.log();
  const std::string path = "/org/confpod1/pod/lv";
  Reply started = call_s(conn.get(), "StartPod", "lv");
  ASSERT_TRUE(started.ok) << started.error_name << ": " << started.error_message << daemon.log();
  EXPECT_EQ(get_string_property(conn.get(), path, "State"), "running");
  EXPECT_NE(daemon.log().find("pod running pod=lv"), std::string::npos) << daemon.log();
  EXPECT_NE(daemon.log().find("libvirt domain confpod-lv"), std::string::npos) << daemon.log();
  Reply stopped = call_s(conn.get(), "StopPod", "lv");
  ASSERT_TRUE(stopped.ok) << stopped.error_name << ": " << stopped.error_message;
  EXPECT_EQ(get_string_property(conn.get(), path, "State"), "exited");
  EXPECT_EQ(get_trivial_property<std::int32_t>(conn.get(), path, "ExitStatus", 'i'), 0);
  ASSERT_TRUE(call(conn.get(), kPath, kManager, "RemovePod", [](sd_bus_message* m) {
                return sd_bus_message_append(m, "sb", "lv", 0);
              }).ok);
  EXPECT_TRUE(list_pods(conn.get()).empty());
}

// [vmm] channel = "vsock" over D-Bus: each pod shows its guest CID (VsockCid); without
// /dev/vhost-vsock StartPod refuses, naming the device, and the daemon goes on serving.
TEST_F(DaemonTest, VsockPodsShowTheirCidAndNeedVhostVsockToStart) {
  testing::DaemonOptions options;
  options.channel = "vsock";
  options.vmm_toml = "vsock_cid_first = 50000\n";
  testing::DaemonProcess daemon(bus_, options);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("va")).ok) << daemon.log();
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("vb")).ok) << daemon.log();
  EXPECT_EQ(
      get_trivial_property<std::uint32_t>(conn.get(), "/org/confpod1/pod/va", "VsockCid", 'u'),
      50000u);
  EXPECT_EQ(
      get_trivial_property<std::uint32_t>(conn.get(), "/org/confpod1/pod/vb", "VsockCid", 'u'),
      50001u);
  if (std::filesystem::exists("/dev/vhost-vsock")) return;  // the start is PodsTest's there
  Reply started = call_s(conn.get(), "StartPod", "va");
  ASSERT_FALSE(started.ok);
  EXPECT_EQ(started.error_name, "org.freedesktop.DBus.Error.Failed");
  EXPECT_NE(started.error_message.find("over vsock (CID 50000)"), std::string::npos)
      << started.error_message;
  EXPECT_NE(started.error_message.find("no /dev/vhost-vsock"), std::string::npos)
      << started.error_message;
  EXPECT_EQ(get_string_property(conn.get(), "/org/confpod1/pod/va", "State"), "created");
  EXPECT_EQ(list_pods(conn.get()).size(), 2u);
}

TEST_F(DaemonTest, AnUnreachableLibvirtFailsTheStartNotTheDaemon) {
  testing::DaemonOptions options;
  options.vmm_toml =
      "backend = \"libvirt\"\n"
      "libvirt_uri = \"qemu+unix:///session?socket=/nonexistent/libvirt-sock\"\n";
  testing::DaemonProcess daemon(bus_, options);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("lv")).ok) << daemon.log();
  Reply started = call_s(conn.get(), "StartPod", "lv");
  ASSERT_FALSE(started.ok);
  EXPECT_NE(started.error_message.find("/nonexistent/libvirt-sock"), std::string::npos)
      << started.error_message;
  EXPECT_EQ(get_string_property(conn.get(), "/org/confpod1/pod/lv", "State"), "failed");
  EXPECT_TRUE(alive(daemon.pid()));
  EXPECT_EQ(list_pods(conn.get()).size(), 1u);
}

TEST_F(DaemonTest, BuildsItsGuestImageWhenNoneIsConfigured) {
  testing::DaemonOptions options;
  options.daemon_builds_guest = true;
  testing::DaemonProcess daemon(bus_, options);
  EXPECT_NE(daemon.log().find("guest image built"), std::string::npos) << daemon.log();
  bool built = false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(daemon.state_dir() + "/guest", ec))
    built = built || entry.path().extension() == ".gz";
  EXPECT_TRUE(built) << "no image under " << daemon.state_dir() << "/guest";
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("self")).ok);
  Reply started = call_s(conn.get(), "StartPod", "self");
  ASSERT_TRUE(started.ok) << started.error_message << daemon.log();
  EXPECT_TRUE(wait_for([&] { return guest_ready(daemon, "self"); }, 90s))
      << read_file(daemon.runtime_dir() + "/pods/self/vm/serial.log");
  Reply stopped = call_s(conn.get(), "StopPod", "self");
  ASSERT_TRUE(stopped.ok) << stopped.error_message;
}

// kill -9 of confpodd with a VM running: the restarted daemon has every pod and re-attaches
// the VM, which a Stop then powers down.
TEST_F(DaemonTest, KillNineThenRestartReattaches) {
  testing::DaemonOptions options;
  testing::DaemonProcess daemon(bus_, options);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("vm")).ok);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("idle")).ok);
  Reply started = call_s(conn.get(), "StartPod", "vm");
  ASSERT_TRUE(started.ok) << started.error_message << daemon.log();
  const std::string path = "/org/confpod1/pod/vm";
  std::uint64_t started_at =
      get_trivial_property<std::uint64_t>(conn.get(), path, "StartedAt", 't');
  pid_t qemu = testing::pod_qemu_pid(daemon, "vm");
  ASSERT_GT(qemu, 0);

  daemon.kill9();
  EXPECT_TRUE(alive(qemu)) << "QEMU must outlive the daemon";
  daemon.restart();

  auto pods = list_pods(conn.get());
  ASSERT_EQ(pods.size(), 2u) << daemon.log();
  EXPECT_EQ(pods[0].name, "idle");
  EXPECT_EQ(pods[0].state, "created");
  EXPECT_EQ(pods[1].name, "vm");
  EXPECT_EQ(pods[1].state, "running") << daemon.log();
  EXPECT_EQ(get_trivial_property<std::uint64_t>(conn.get(), path, "StartedAt", 't'), started_at);
  EXPECT_EQ(testing::pod_qemu_pid(daemon, "vm"), qemu);

  ASSERT_TRUE(wait_for([&] { return guest_ready(daemon, "vm"); }, 90s));
  Reply stopped = call_s(conn.get(), "StopPod", "vm");
  ASSERT_TRUE(stopped.ok) << stopped.error_message << daemon.log();
  EXPECT_EQ(get_string_property(conn.get(), path, "State"), "exited");
  // Not our child any more: the status comes from QEMU's SHUTDOWN event (guest-shutdown).
  EXPECT_EQ(get_trivial_property<std::int32_t>(conn.get(), path, "ExitStatus", 'i'), 0);
  EXPECT_TRUE(wait_for([&] { return !alive(qemu); }, 5s));

  // A clean SIGTERM keeps everything too.
  EXPECT_EQ(daemon.terminate(), 0);
  daemon.restart();
  EXPECT_EQ(list_pods(conn.get()).size(), 2u);
  EXPECT_EQ(get_string_property(conn.get(), path, "State"), "exited");
}

}  // namespace
}  // namespace confpod

namespace confpod {
namespace {

// Many clients at once, each on its own connection: every create lands exactly once, a name
// raced by all clients is won by exactly one, readers never see a torn list, and all of it
// survives kill -9 of the daemon.
TEST_F(DaemonTest, ConcurrentClientsAndKillNine) {
  testing::DaemonProcess daemon(bus_);
  constexpr int kClients = 8, kPodsPerClient = 10;
  std::vector<std::string> race_results(kClients);
  std::vector<int> created(kClients, 0), torn_lists(kClients, 0);
  std::vector<std::string> first_errors(kClients);
  (void)pod_spec("warm-up");  // builds the shared hello image once, before the threads race
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      testing::BusPtr conn = testing::open_bus(bus_);
      for (int i = 0; i < kPodsPerClient; ++i) {
        std::string name = "c" + std::to_string(c) + "-" + std::to_string(i);
        Reply r = call_s(conn.get(), "CreatePod", pod_spec(name));
        if (r.ok)
          ++created[c];
        else if (first_errors[c].empty())
          first_errors[c] = r.error_name + ": " + r.error_message;
        // Every listed entry is whole: a name, a known state, a tee and its object path.
        for (const PodEntry& e : list_pods(conn.get()))
          if (e.name.empty() || e.state.empty() || e.tee != "none" ||
              e.path.rfind("/org/confpod1/pod/", 0) != 0)
            ++torn_lists[c];
      }
      Reply race = call_s(conn.get(), "CreatePod", pod_spec("race"));
      race_results[c] = race.ok ? "ok" : race.error_name + ": " + race.error_message;
    });
  }
  for (auto& t : clients) t.join();

  int winners = 0;
  for (int c = 0; c < kClients; ++c) {
    EXPECT_EQ(created[c], kPodsPerClient) << "client " << c << ": " << first_errors[c] << "\n"
                                          << daemon.log();
    EXPECT_EQ(torn_lists[c], 0) << "client " << c;
    if (race_results[c] == "ok")
      ++winners;
    else
      EXPECT_TRUE(race_results[c].starts_with("org.confpod1.Error.PodExists")) << race_results[c];
  }
  EXPECT_EQ(winners, 1);

  testing::BusPtr conn = testing::open_bus(bus_);
  const std::size_t expected = kClients * kPodsPerClient + 1;
  EXPECT_EQ(list_pods(conn.get()).size(), expected);

  daemon.kill9();
  daemon.restart();
  conn = testing::open_bus(bus_);
  auto after = list_pods(conn.get());
  ASSERT_EQ(after.size(), expected) << daemon.log();
  for (const PodEntry& e : after) EXPECT_EQ(e.state, "created") << e.name;

  // Concurrent removal: every pod goes exactly once.
  std::vector<int> removed(kClients, 0);
  clients.clear();
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      testing::BusPtr own = testing::open_bus(bus_);
      for (int i = 0; i < kPodsPerClient; ++i) {
        std::string name = "c" + std::to_string(c) + "-" + std::to_string(i);
        Reply r = call(own.get(), kPath, kManager, "RemovePod", [&](sd_bus_message* m) {
          return sd_bus_message_append(m, "sb", name.c_str(), 0);
        });
        if (r.ok) ++removed[c];
      }
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(removed[c], kPodsPerClient) << "client " << c;
  auto left = list_pods(conn.get());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].name, "race");
}

}  // namespace
}  // namespace confpod

namespace confpod {
namespace {

// [metrics] listen: the real daemon serves Prometheus text on loopback, following the pods and
// the KBS's requests.
TEST_F(DaemonTest, MetricsFollowPodsAndKbsRequests) {
  const int metrics_port = testing::free_loopback_port();
  const int kbs_port = testing::free_loopback_port();
  testing::DaemonOptions options;
  options.extra_toml = "[metrics]\nlisten = \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n";
  options.kbs_toml =
      "[kbs]\nenabled = true\nlisten = \"127.0.0.1:" + std::to_string(kbs_port) + "\"\n";
  testing::DaemonProcess daemon(bus_, options);
  testing::BusPtr conn = testing::open_bus(bus_);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("m1")).ok);
  ASSERT_TRUE(call_s(conn.get(), "CreatePod", pod_spec("m2")).ok);
  ASSERT_TRUE(call(conn.get(), kPath, kManager, "RemovePod", [](sd_bus_message* m) {
                return sd_bus_message_append(m, "sb", "m2", 0);
              }).ok);
  auto jwks = testing::run_process(
      {"/usr/bin/curl", "-sf",
       "http://127.0.0.1:" + std::to_string(kbs_port) + "/kbs/v0/.well-known/jwks.json"});
  ASSERT_EQ(jwks.exit_code, 0) << jwks.err;
  auto bad =
      testing::run_process({"/usr/bin/curl", "-s", "-X", "POST", "-d", "{not json",
                            "http://127.0.0.1:" + std::to_string(kbs_port) + "/kbs/v0/auth"});
  ASSERT_EQ(bad.exit_code, 0) << bad.err;

  auto scrape = testing::run_process(
      {"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
  ASSERT_EQ(scrape.exit_code, 0) << scrape.err << daemon.log();
  const std::string& text = scrape.out;
  EXPECT_NE(text.find("\nconfpod_pods{state=\"created\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nconfpod_kbs_requests_total{code=\"200\",route=\"jwks\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nconfpod_kbs_requests_total{code=\"401\",route=\"auth\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("confpod_kbs_request_duration_seconds_count{route=\"auth\"} 1"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("confpod_collateral_expiry_timestamp_seconds{"), std::string::npos);

  // Collateral imported over D-Bus shows in the expiry gauge at once, and goes with its removal.
  const std::string chain =
      testing::read_text_file(testing::fixture_path("snp/virtee_cert_chain_milan.pem"));
  ASSERT_FALSE(chain.empty());
  Reply imported =
      call(conn.get(), kPath, "org.confpod1.Broker", "ImportCollateral", [&](sd_bus_message* m) {
        int r = sd_bus_message_append(m, "s", "cert_chain_milan.pem");
        return r < 0 ? r : sd_bus_message_append_array(m, 'y', chain.data(), chain.size());
      });
  ASSERT_TRUE(imported.ok) << imported.error_message;
  auto after = testing::run_process(
      {"/usr/bin/curl", "-sf", "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"});
  EXPECT_NE(after.out.find("confpod_collateral_expiry_timestamp_seconds{kind=\"snp-ark\"} "),
            std::string::npos)
      << after.out;
  EXPECT_NE(after.out.find("confpod_collateral_expiry_timestamp_seconds{kind=\"snp-ask\"} "),
            std::string::npos)
      << after.out;
}

// A metrics listener off loopback is refused at start, naming the key.
TEST_F(DaemonTest, MetricsOffLoopbackIsRefused) {
  testing::DaemonOptions options;
  options.extra_toml = "[metrics]\nlisten = \"0.0.0.0:9464\"\n";
  try {
    testing::DaemonProcess daemon(bus_, options);
    ADD_FAILURE() << "confpodd started with metrics on 0.0.0.0";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.listen"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("loopback"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace confpod
