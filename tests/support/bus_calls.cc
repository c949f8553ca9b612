#include "tests/support/bus_calls.h"

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/process.h"

namespace confpod::testing {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Reply call(sd_bus* bus, const std::string& path, const char* interface, const char* member,
           const std::function<int(sd_bus_message*)>& append, std::chrono::seconds timeout) {
  sd_bus_message* raw = nullptr;
  Reply reply;
  if (sd_bus_message_new_method_call(bus, &raw, kBusName, path.c_str(), interface, member) < 0) {
    reply.error_name = "test.new_method_call";
    return reply;
  }
  MessagePtr m(raw);
  if (append && append(raw) < 0) {
    reply.error_name = "test.append";
    return reply;
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* answer = nullptr;
  int r =
      sd_bus_call(bus, raw, std::chrono::duration_cast<std::chrono::microseconds>(timeout).count(),
                  &error, &answer);
  reply.ok = r >= 0;
  if (!reply.ok) {
    reply.error_name = error.name != nullptr ? error.name : "errno";
    reply.error_message = error.message != nullptr ? error.message : std::strerror(-r);
  }
  reply.message.reset(answer);
  sd_bus_error_free(&error);
  return reply;
}

Reply call_s(sd_bus* bus, const char* member, const std::string& arg) {
  return call(bus, kManagerPath, kManagerInterface, member,
              [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", arg.c_str()); });
}

std::string read_string(const Reply& reply, char type) {
  const char* value = nullptr;
  if (!reply.message) return {};
  const char types[2] = {type, '\0'};
  if (sd_bus_message_read(reply.message.get(), types, &value) < 0 || value == nullptr) return {};
  return value;
}

std::string get_string_property(sd_bus* bus, const std::string& path, const char* property) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  char* value = nullptr;
  int r = sd_bus_get_property_string(bus, kBusName, path.c_str(), kPodInterface, property, &error,
                                     &value);
  sd_bus_error_free(&error);
  std::string out = r >= 0 && value != nullptr ? value : "<error>";
  std::free(value);
  return out;
}

Reply set_resource(sd_bus* bus, const std::string& path, const std::string& value) {
  return call(bus, kManagerPath, "org.confpod1.Broker", "SetResource", [&](sd_bus_message* m) {
    int r = sd_bus_message_append(m, "s", path.c_str());
    return r < 0 ? r : sd_bus_message_append_array(m, 'y', value.data(), value.size());
  });
}

std::vector<PodEntry> list_pods(sd_bus* bus) {
  Reply reply = call(bus, kManagerPath, kManagerInterface, "ListPods");
  std::vector<PodEntry> out;
  if (!reply.ok) return out;
  sd_bus_message* m = reply.message.get();
  if (sd_bus_message_enter_container(m, 'a', "(ssso)") < 0) return out;
  const char *name, *state, *tee, *path;
  while (sd_bus_message_read(m, "(ssso)", &name, &state, &tee, &path) > 0)
    out.push_back({name, state, tee, path});
  return out;
}

std::string call_as_user(const PrivateBus& bus, uid_t uid, gid_t gid,
                         const std::vector<gid_t>& groups, const std::string& path,
                         const char* interface, const char* member,
                         const std::function<int(sd_bus_message*)>& append) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    std::string out;
    if (uid != 0 && (::setgroups(groups.size(), groups.data()) != 0 ||
                     ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0)) {
      out = "cannot drop privileges";
    } else {
      sd_bus* raw = nullptr;
      int r = sd_bus_new(&raw);
      if (r >= 0) r = sd_bus_set_address(raw, bus.address().c_str());
      if (r >= 0) r = sd_bus_set_bus_client(raw, 1);
      if (r >= 0) r = sd_bus_start(raw);
      if (r < 0) {
        out = "cannot connect";
      } else {
        Reply reply = call(raw, path, interface, member, append, std::chrono::seconds(30));
        out = reply.ok ? "ok" : reply.error_name + ": " + reply.error_message;
      }
    }
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(child, nullptr, 0);
  return answer;
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::string read_file(const std::string& path) { return read_text_file(path); }

bool alive(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

std::string pod_spec(const std::string& name, const std::string& tee) {
  return "name = \"" + name + "\"\ntee = \"" + tee + "\"\n[vm]\nvcpus = 1\nmemory_mib = 256\n" +
         serving_container_toml();
}

// The pod's container runs (the agent watches the power button from its start).
bool guest_ready(const DaemonProcess& daemon, const std::string& pod) {
  return read_file(daemon.runtime_dir() + "/pods/" + pod + "/containers.log").find(kServingReady) !=
         std::string::npos;
}

}  // namespace confpod::testing
