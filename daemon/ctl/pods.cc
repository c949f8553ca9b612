#include "daemon/ctl/pods.h"

#include <unistd.h>

#include <thread>

#include "attest/base/bytes.h"
#include "daemon/ctl/client.h"
#include "daemon/ctl/format.h"
#include "daemon/ctl/verify.h"

namespace confpod::ctl {
namespace {

// GetPodLog's own cap (daemon/pods/manager.h kMaxLogBytes): ask for all it will give.
constexpr std::uint64_t kLogBytes = 1u << 20;

void warn_if_insecure(const std::string& name, const std::string& tee, std::ostream& err) {
  if (tee == "none")
    err << "confpodctl: warning: pod \"" << one_line(name)
        << "\" has tee \"none\": INSECURE, the host can read its memory\n";
}

std::string string_property(const nlohmann::json& properties, const char* key) {
  auto it = properties.find(key);
  if (it == properties.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

int fail(const Error& error, std::ostream& err) {
  err << "confpodctl: " << one_line(error.code) << ": " << one_line(error.message) << "\n";
  return exit_code_for(error);
}

Result<Client> connect(const BusArgs& bus) {
  ConnectOptions options;
  options.address = bus.address;
  options.timeout = std::chrono::seconds(bus.timeout_seconds);
  options.interactive_authorization = ::isatty(STDIN_FILENO) == 1;
  return Client::connect(options);
}

int pod_create(const BusArgs& bus, const std::string& spec_path, bool start, std::ostream& out,
               std::ostream& err) {
  auto spec = read_text_file(spec_path);
  if (!spec.ok()) {
    fail(spec.error(), err);
    return kExitUsage;
  }
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto path = client->create_pod(*spec);
  if (!path.ok()) return fail(path.error(), err);
  auto properties = client->pod_properties(*path);
  if (!properties.ok()) return fail(properties.error(), err);
  std::string name = string_property(*properties, "Name");
  warn_if_insecure(name, string_property(*properties, "Tee"), err);
  if (start) {
    Status started = client->start_pod(name);
    if (!started.ok()) {
      int code = fail(started.error(), err);
      err << "confpodctl: pod \"" << one_line(name)
          << "\" was created but did not start; see `confpodctl logs " << one_line(name)
          << "`, remove it with `confpodctl rm " << one_line(name) << "`\n";
      return code;
    }
  }
  out << name << "\n";
  return kExitOk;
}

int pod_action(const BusArgs& bus, PodAction action, const std::string& name, std::ostream& out,
               std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  Status done = action == PodAction::kStart  ? client->start_pod(name)
                : action == PodAction::kStop ? client->stop_pod(name)
                                             : client->kill_pod(name);
  if (!done.ok()) return fail(done.error(), err);
  out << name << "\n";
  return kExitOk;
}

int pod_remove(const BusArgs& bus, const std::string& name, bool force, std::ostream& out,
               std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  Status removed = client->remove_pod(name, force);
  if (!removed.ok()) return fail(removed.error(), err);
  out << name << "\n";
  return kExitOk;
}

int pod_list(const BusArgs& bus, bool json, std::ostream& out, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto pods = client->list_pods();
  if (!pods.ok()) return fail(pods.error(), err);
  if (json)
    out << ps_json(*pods).dump(2) << "\n";
  else
    out << format_ps_table(*pods);
  return kExitOk;
}

int pod_inspect(const BusArgs& bus, const std::string& name, std::ostream& out, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto path = client->get_pod(name);
  if (!path.ok()) return fail(path.error(), err);
  auto properties = client->pod_properties(*path);
  if (!properties.ok()) return fail(properties.error(), err);
  out << inspect_json(*path, *properties).dump(2) << "\n";
  return kExitOk;
}

int pod_logs(const BusArgs& bus, const LogsArgs& args, std::ostream& out, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  if (!args.follow) {
    auto text = client->pod_log(args.name, kLogBytes);
    if (!text.ok()) return fail(text.error(), err);
    out << *text;
    return kExitOk;
  }

  auto path = client->get_pod(args.name);
  if (!path.ok()) return fail(path.error(), err);
  LogFollower follower;
  while (true) {
    // State first: a log fetched after the pod was seen exited holds its last words.
    auto properties = client->pod_properties(*path);
    if (!properties.ok()) {
      // Removed while we followed it: its log is gone with it, and so is there nothing more.
      const std::string& code = properties.error().code;
      if (code == "org.freedesktop.DBus.Error.UnknownObject" ||
          code == "org.freedesktop.DBus.Error.UnknownInterface" ||
          code == "org.confpod1.Error.NoSuchPod")
        return kExitOk;
      return fail(properties.error(), err);
    }
    std::string state = string_property(*properties, "State");
    auto text = client->pod_log(args.name, kLogBytes);
    if (!text.ok()) {
      if (text.error().code == "org.confpod1.Error.NoSuchPod") return kExitOk;
      return fail(text.error(), err);
    }
    out << follower.update(*text) << std::flush;
    if (state == "exited" || state == "failed") return kExitOk;
    std::this_thread::sleep_for(args.poll_interval);
  }
}

}  // namespace confpod::ctl
