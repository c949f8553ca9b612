// Authorization for real: Debian's polkitd on the private bus with confpod's polkit action and
// rule (systemd/org.confpod1.policy, systemd/50-confpod.rules), and the real confpodd asking
// it. confpodd runs with a management group that does not exist, so that for a non-root
// caller only polkit can say yes: the rule grants members of group "confpod" (uid 65534 here),
// the action's default (auth_admin_keep, no agent) refuses everyone else (uid 1), and root
// never needs polkit. Every mutating method of the Manager and the Broker is called.
//
// The test's own mount namespace carries the policy: polkit's action and rule directories and
// /etc/group (with a "confpod" group holding "nobody") are bind-mounted there, so nothing of
// this machine's polkit or users changes.
#include <fcntl.h>
#include <grp.h>
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
#include <thread>
#include <vector>

#include "tests/support/bus.h"
#include "tests/support/bus_calls.h"
#include "tests/support/process.h"

namespace confpod {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPolkitd = "/usr/lib/polkit-1/polkitd";
constexpr uid_t kMember = 65534;  // nobody, in group confpod (our /etc/group)
constexpr uid_t kStranger = 1;    // daemon: no group of ours

const char* kIdCommand[] = {"id", nullptr};

struct Method {
  const char* path;
  const char* interface;
  const char* member;
  std::function<int(sd_bus_message*)> append;
  // What an authorized caller gets: "ok" or the error the call's own checks give, so that a
  // call which never got past authorization (or a broken polkit check) cannot pass.
  const char* authorized;
};

std::vector<Method> mutating_methods(const std::string& spec) {
  const char* m = testing::kManagerInterface;
  const char* b = "org.confpod1.Broker";
  const char* root = testing::kManagerPath;
  auto s = [](const char* v) {
    return [v](sd_bus_message* msg) { return sd_bus_message_append(msg, "s", v); };
  };
  const char* no_pod = "org.confpod1.Error.NoSuchPod";
  return {
      {root, m, "CreatePod",
       [spec](sd_bus_message* msg) { return sd_bus_message_append(msg, "s", spec.c_str()); }, "ok"},
      // On the pod the member's CreatePod made (not running: refused after authorization).
      {"/org/confpod1/pod/member0", testing::kPodInterface, "Exec",
       [](sd_bus_message* msg) {
         int r = sd_bus_message_append(msg, "s", "");
         if (r >= 0) r = sd_bus_message_append_strv(msg, const_cast<char**>(kIdCommand));
         return r < 0 ? r : sd_bus_message_append(msg, "buu", 0, 0, 0);
       },
       "org.confpod1.Error.InvalidState"},
      {"/org/confpod1/pod/member0", testing::kPodInterface, "Attach", s(""),
       "org.confpod1.Error.InvalidState"},
      {root, m, "StartPod", s("absent"), no_pod},
      {root, m, "StopPod", s("absent"), no_pod},
      {root, m, "KillPod", s("absent"), no_pod},
      {root, m, "RemovePod",
       [](sd_bus_message* msg) { return sd_bus_message_append(msg, "sb", "absent", 0); }, no_pod},
      {root, m, "GetPodLog",
       [](sd_bus_message* msg) { return sd_bus_message_append(msg, "st", "absent", 100); }, no_pod},
      // An invalid subnet: refused after authorization, before anything is made (this daemon
      // runs in the machine's own network namespace).
      {root, m, "CreateNetwork",
       [](sd_bus_message* msg) {
         return sd_bus_message_append(msg, "ssssbas", "lab", "", "10.99.0.0/33", "", 1, 0);
       },
       "org.confpod1.Error.InvalidNetwork"},
      {root, m, "RemoveNetwork", s("absent"), "org.confpod1.Error.NoSuchNetwork"},
      {root, b, "SetResource",
       [](sd_bus_message* msg) {
         int r = sd_bus_message_append(msg, "s", "site/app/key");
         return r < 0 ? r : sd_bus_message_append_array(msg, 'y', "v", 1);
       },
       "ok"},
      {root, b, "DeleteResource", s("site/absent/key"), "org.confpod1.Error.NoSuchResource"},
      {root, b, "SetReferenceValues",
       [](sd_bus_message* msg) { return sd_bus_message_append(msg, "sa{sv}", "absent", 0); },
       "org.freedesktop.DBus.Error.InvalidArgs"},
      {root, b, "ImportCollateral",
       [](sd_bus_message* msg) {
         int r = sd_bus_message_append(msg, "s", "junk.pem");
         return r < 0 ? r : sd_bus_message_append_array(msg, 'y', "junk", 4);
       },
       "org.confpod1.Error.InvalidCollateral"},
      {root, b, "RemoveCollateral", s("abcd"), "org.confpod1.Error.NoSuchCollateral"},
  };
}

// Calls `method` from a child process running as `uid` (gid 65534, no supplementary groups:
// polkit decides from the user's groups in /etc/group, not the process's). Returns "ok" or
// the D-Bus error name.
std::string call_as(const testing::PrivateBus& bus, uid_t uid, const Method& method) {
  const std::string answer = testing::call_as_user(bus, uid, 65534, {}, method.path,
                                                   method.interface, method.member, method.append);
  return answer.substr(0, answer.find(':'));  // "ok", or the error name
}

void bind_mount(const std::string& from, const std::string& to) {
  ASSERT_EQ(::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr), 0)
      << from << " -> " << to << ": " << std::strerror(errno);
}

class PolkitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kPolkitd, X_OK) != 0) GTEST_SKIP() << kPolkitd << " is not installed";
    ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno);
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0);
    const std::string d = dir_.path();
    std::filesystem::create_directories(d + "/actions");
    std::filesystem::create_directories(d + "/rules");
    std::filesystem::create_directories(d + "/etc-rules");
    std::filesystem::copy_file(std::string(CONFPOD_SOURCE_DIR) + "/systemd/org.confpod1.policy",
                               d + "/actions/org.confpod1.policy");
    std::filesystem::copy_file(std::string(CONFPOD_SOURCE_DIR) + "/systemd/50-confpod.rules",
                               d + "/rules/50-confpod.rules");
    std::string group = testing::read_text_file("/etc/group");
    group += "confpod:x:4242:nobody\n";
    std::ofstream(d + "/group") << group;
    bind_mount(d + "/actions", "/usr/share/polkit-1/actions");
    bind_mount(d + "/rules", "/usr/share/polkit-1/rules.d");
    if (std::filesystem::is_directory("/etc/polkit-1/rules.d"))
      bind_mount(d + "/etc-rules", "/etc/polkit-1/rules.d");
    bind_mount(d + "/group", "/etc/group");

    polkitd_ = ::fork();
    ASSERT_GE(polkitd_, 0);
    if (polkitd_ == 0) {
      ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_.address().c_str(), 1);
      int log = ::open((d + "/polkitd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execl(kPolkitd, kPolkitd, nullptr);
      ::_exit(127);
    }
    testing::BusPtr conn = testing::open_bus(bus_);
    ASSERT_TRUE(testing::wait_for(
        [&] {
          return sd_bus_get_name_creds(conn.get(), "org.freedesktop.PolicyKit1", 0, nullptr) >= 0;
        },
        20s))
        << "polkitd did not take its name:\n"
        << testing::read_text_file(d + "/polkitd.log");
  }
  void TearDown() override {
    if (polkitd_ > 0) {
      ::kill(polkitd_, SIGTERM);
      ::waitpid(polkitd_, nullptr, 0);
    }
  }

  testing::PrivateBus bus_;
  testing::TempDir dir_;
  pid_t polkitd_ = -1;
};

TEST_F(PolkitTest, GroupMembersMayMutateOthersAreDeniedRootAlwaysMay) {
  testing::DaemonOptions options;
  // No such group: confpodd's own group check passes nobody, polkit decides.
  options.extra_args = {"--manage-group", "confpod-test-nonexistent"};
  testing::DaemonProcess daemon(bus_, options);

  int index = 0;
  for (const Method& method : mutating_methods(testing::pod_spec("p"))) {
    SCOPED_TRACE(method.member);
    // A spec name per caller, so that each CreatePod can succeed.
    auto spec_for = [&](const std::string& who) {
      Method copy = method;
      if (std::string(method.member) == "CreatePod") {
        std::string spec = testing::pod_spec(who + std::to_string(index));
        copy.append = [spec](sd_bus_message* msg) {
          return sd_bus_message_append(msg, "s", spec.c_str());
        };
      }
      return copy;
    };
    const std::string stranger = call_as(bus_, kStranger, spec_for("stranger"));
    EXPECT_EQ(stranger, "org.freedesktop.DBus.Error.AccessDenied") << daemon.log();
    const std::string member = call_as(bus_, kMember, spec_for("member"));
    EXPECT_EQ(member, method.authorized) << daemon.log();
    const std::string root = call_as(bus_, 0, spec_for("root"));
    EXPECT_EQ(root, method.authorized);
    ++index;
  }
  // What the member created exists; what the stranger tried does not.
  testing::BusPtr conn = testing::open_bus(bus_);
  std::vector<std::string> names;
  for (const auto& pod : testing::list_pods(conn.get())) names.push_back(pod.name);
  EXPECT_EQ(names, (std::vector<std::string>{"member0", "root0"}));
}

}  // namespace
}  // namespace confpod
