// Calls to confpodd's D-Bus API from tests, with sd-bus, and small waits shared by the tests
// that drive a real daemon (tests/integration/daemon_test.cc, faults_test.cc).
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/bus/names.h"
#include "tests/support/bus.h"

namespace confpod::testing {

using bus::kBrokerInterface;
using bus::kBusName;
using bus::kManagerInterface;
using bus::kManagerPath;
using bus::kPodInterface;

struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;
struct SlotUnref {
  void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;

struct Reply {
  bool ok = false;
  std::string error_name;
  std::string error_message;
  MessagePtr message;
};

// Calls a method of org.confpod1; `append` adds the arguments.
Reply call(sd_bus* bus, const std::string& path, const char* interface, const char* member,
           const std::function<int(sd_bus_message*)>& append = {},
           std::chrono::seconds timeout = std::chrono::seconds(60));
// A Manager method with one string argument.
Reply call_s(sd_bus* bus, const char* member, const std::string& arg);
// The reply's first argument of basic type `type` ('s' or 'o').
std::string read_string(const Reply& reply, char type = 's');

std::string get_string_property(sd_bus* bus, const std::string& path, const char* property);
template <class T>
T get_trivial_property(sd_bus* bus, const std::string& path, const char* property, char type) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  T value{};
  sd_bus_get_property_trivial(bus, kBusName, path.c_str(), kPodInterface, property, &error, type,
                              &value);
  sd_bus_error_free(&error);
  return value;
}

struct PodEntry {
  std::string name, state, tee, path;
};
// Broker.SetResource: the KBS resource `path` ("repo/type/tag") holds `value`.
Reply set_resource(sd_bus* bus, const std::string& path, const std::string& value);

// ListPods (empty on error).
std::vector<PodEntry> list_pods(sd_bus* bus);

// Calls a method of org.confpod1 from a child process running as uid/gid with `groups` as its
// supplementary groups (uid 0: the test's own credentials, unchanged), on its own connection.
// Returns "ok", "<error name>: <message>", or what failed before the call ("cannot drop
// privileges", "cannot connect").
std::string call_as_user(const PrivateBus& bus, uid_t uid, gid_t gid,
                         const std::vector<gid_t>& groups, const std::string& path,
                         const char* interface, const char* member,
                         const std::function<int(sd_bus_message*)>& append);

// Polls `done` every 50 ms until it holds or `limit` passed.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit);
std::string read_file(const std::string& path);
// The process exists and is not a zombie.
bool alive(pid_t pid);

// A tee-`tee` pod of 1 vCPU and 256 MiB running serving_container_toml().
std::string pod_spec(const std::string& name, const std::string& tee = "none");
// The pod's container runs (the agent watches the power button from its start).
bool guest_ready(const DaemonProcess& daemon, const std::string& pod);

}  // namespace confpod::testing
