#include "daemon/ctl/client.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace confpod::ctl {
namespace {

struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

// sd_bus_error, freed on scope exit.
class BusError {
 public:
  BusError() = default;
  ~BusError() { sd_bus_error_free(&error_); }
  BusError(const BusError&) = delete;
  BusError& operator=(const BusError&) = delete;
  sd_bus_error* get() { return &error_; }

  // The Error for a call that returned r < 0 with this error filled (or not).
  Error to_error(int r, std::string_view what) const {
    if (sd_bus_error_is_set(&error_))
      return make_error(error_.name, error_.message != nullptr ? error_.message : "");
    return make_error(kConnectError, std::string(what) + ": " + std::strerror(-r));
  }

 private:
  sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

Error reply_error(std::string_view what, int r) {
  return make_error("ctl.reply",
                    "unexpected reply to " + std::string(what) + ": " + std::strerror(-r));
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// The signature inside a dict-entry type "{sv}" -> "sv".
std::string dict_entry_contents(const char* array_contents) {
  std::string_view c(array_contents);
  if (c.size() >= 2 && c.front() == '{' && c.back() == '}')
    return std::string(c.substr(1, c.size() - 2));
  return std::string(c);
}

Result<nlohmann::json> read_json(sd_bus_message* m);

template <class T>
Result<nlohmann::json> read_basic(sd_bus_message* m, char type) {
  T value{};
  int r = sd_bus_message_read_basic(m, type, &value);
  if (r < 0) return reply_error("GetAll", r);
  if constexpr (std::is_same_v<T, const char*>) {
    return nlohmann::json(value != nullptr ? value : "");
  } else {
    return nlohmann::json(value);
  }
}

// Reads the values of the container `m` is in, up to its end.
Result<nlohmann::json> read_json_array(sd_bus_message* m) {
  nlohmann::json out = nlohmann::json::array();
  while (true) {
    int r = sd_bus_message_at_end(m, 0);
    if (r < 0) return reply_error("GetAll", r);
    if (r > 0) return out;
    CONFPOD_ASSIGN_OR_RETURN(auto value, read_json(m));
    out.push_back(std::move(value));
  }
}

// Reads the next complete value of any D-Bus type as JSON.
Result<nlohmann::json> read_json(sd_bus_message* m) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r < 0) return reply_error("GetAll", r);
  if (r == 0) return reply_error("GetAll", -EBADMSG);
  switch (type) {
    case SD_BUS_TYPE_BYTE:
      return read_basic<std::uint8_t>(m, type);
    case SD_BUS_TYPE_BOOLEAN: {
      int value = 0;
      r = sd_bus_message_read_basic(m, type, &value);
      if (r < 0) return reply_error("GetAll", r);
      return nlohmann::json(value != 0);
    }
    case SD_BUS_TYPE_INT16:
      return read_basic<std::int16_t>(m, type);
    case SD_BUS_TYPE_UINT16:
      return read_basic<std::uint16_t>(m, type);
    case SD_BUS_TYPE_INT32:
      return read_basic<std::int32_t>(m, type);
    case SD_BUS_TYPE_UINT32:
      return read_basic<std::uint32_t>(m, type);
    case SD_BUS_TYPE_INT64:
      return read_basic<std::int64_t>(m, type);
    case SD_BUS_TYPE_UINT64:
      return read_basic<std::uint64_t>(m, type);
    case SD_BUS_TYPE_DOUBLE:
      return read_basic<double>(m, type);
    case SD_BUS_TYPE_UNIX_FD:
      return read_basic<int>(m, type);
    case SD_BUS_TYPE_STRING:
    case SD_BUS_TYPE_OBJECT_PATH:
    case SD_BUS_TYPE_SIGNATURE:
      return read_basic<const char*>(m, type);
    case SD_BUS_TYPE_VARIANT:
    case SD_BUS_TYPE_STRUCT: {
      r = sd_bus_message_enter_container(m, type, contents);
      if (r < 0) return reply_error("GetAll", r);
      Result<nlohmann::json> value =
          type == SD_BUS_TYPE_VARIANT ? read_json(m) : read_json_array(m);
      if (!value.ok()) return value;
      r = sd_bus_message_exit_container(m);
      if (r < 0) return reply_error("GetAll", r);
      return value;
    }
    case SD_BUS_TYPE_ARRAY: {
      r = sd_bus_message_enter_container(m, type, contents);
      if (r < 0) return reply_error("GetAll", r);
      nlohmann::json out;
      // a{s...} / a{o...} become objects; any other array (and dicts with other keys) arrays.
      bool object = contents[0] == '{' && (contents[1] == 's' || contents[1] == 'o');
      if (contents[0] == '{') {
        std::string entry = dict_entry_contents(contents);
        out = object ? nlohmann::json::object() : nlohmann::json::array();
        while (true) {
          r = sd_bus_message_at_end(m, 0);
          if (r < 0) return reply_error("GetAll", r);
          if (r > 0) break;
          r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, entry.c_str());
          if (r < 0) return reply_error("GetAll", r);
          CONFPOD_ASSIGN_OR_RETURN(auto key, read_json(m));
          CONFPOD_ASSIGN_OR_RETURN(auto value, read_json(m));
          r = sd_bus_message_exit_container(m);
          if (r < 0) return reply_error("GetAll", r);
          if (object)
            out[key.get<std::string>()] = std::move(value);
          else
            out.push_back(nlohmann::json::array({std::move(key), std::move(value)}));
        }
      } else {
        CONFPOD_ASSIGN_OR_RETURN(out, read_json_array(m));
      }
      r = sd_bus_message_exit_container(m);
      if (r < 0) return reply_error("GetAll", r);
      return out;
    }
    default:
      return reply_error("GetAll", -EBADMSG);
  }
}

}  // namespace

int exit_code_for(const Error& error) {
  const std::string& c = error.code;
  bool unreachable = c == kConnectError || c == "org.freedesktop.DBus.Error.ServiceUnknown" ||
                     c == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
                     c == "org.freedesktop.DBus.Error.NoServer" ||
                     c == "org.freedesktop.DBus.Error.Disconnected" ||
                     starts_with(c, "org.freedesktop.DBus.Error.Spawn.");
  return unreachable ? 2 : 1;
}

Result<Client> Client::connect(const ConnectOptions& options) {
  sd_bus* raw = nullptr;
  std::string where;
  int r = 0;
  std::unique_ptr<sd_bus, BusUnref> bus;
  if (options.address.empty()) {
    const char* env = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    where = env != nullptr && *env != '\0' ? env : "unix:path=/run/dbus/system_bus_socket";
    r = sd_bus_open_system(&raw);
    bus.reset(raw);
  } else {
    where = options.address;
    r = sd_bus_new(&raw);
    bus.reset(raw);
    if (r >= 0) r = sd_bus_set_address(bus.get(), options.address.c_str());
    if (r >= 0) r = sd_bus_set_bus_client(bus.get(), 1);
    if (r >= 0) r = sd_bus_start(bus.get());
  }
  if (r >= 0) {
    auto usec = static_cast<std::uint64_t>(options.timeout.count()) * 1000000u;
    r = sd_bus_set_method_call_timeout(bus.get(), usec);
  }
  if (r >= 0)
    r = sd_bus_set_allow_interactive_authorization(bus.get(), options.interactive_authorization);
  // sd_bus_start only begins the handshake; this waits for the bus's Hello reply, so an
  // unreachable or refusing bus is reported here and not as the first call's error.
  const char* unique = nullptr;
  if (r >= 0) r = sd_bus_get_unique_name(bus.get(), &unique);
  if (r < 0)
    return make_error(kConnectError,
                      "cannot connect to the bus at " + where + ": " + std::strerror(-r));
  return Client(std::move(bus));
}

Result<std::string> Client::create_pod(std::string_view spec_toml) {
  BusError error;
  sd_bus_message* raw = nullptr;
  std::string spec(spec_toml);
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "CreatePod",
                             error.get(), &raw, "s", spec.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "CreatePod");
  const char* path = nullptr;
  r = sd_bus_message_read(reply.get(), "o", &path);
  if (r < 0) return reply_error("CreatePod", r);
  return std::string(path);
}

namespace {

Status call_with_name(sd_bus* bus, const char* method, const std::string& name) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus, kBusName, kManagerPath, kManagerInterface, method, error.get(),
                             &raw, "s", name.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, method);
  return ok_status();
}

}  // namespace

Status Client::start_pod(const std::string& name) {
  return call_with_name(bus_.get(), "StartPod", name);
}

Status Client::stop_pod(const std::string& name) {
  return call_with_name(bus_.get(), "StopPod", name);
}

Status Client::kill_pod(const std::string& name) {
  return call_with_name(bus_.get(), "KillPod", name);
}

Status Client::remove_pod(const std::string& name, bool force) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "RemovePod",
                             error.get(), &raw, "sb", name.c_str(), static_cast<int>(force));
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "RemovePod");
  return ok_status();
}

Result<std::string> Client::get_pod(const std::string& name) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "GetPod",
                             error.get(), &raw, "s", name.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "GetPod");
  const char* path = nullptr;
  r = sd_bus_message_read(reply.get(), "o", &path);
  if (r < 0) return reply_error("GetPod", r);
  return std::string(path);
}

Result<std::vector<PodSummary>> Client::list_pods() {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "ListPods",
                             error.get(), &raw, "");
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "ListPods");
  r = sd_bus_message_enter_container(reply.get(), SD_BUS_TYPE_ARRAY, "(ssso)");
  if (r < 0) return reply_error("ListPods", r);
  std::vector<PodSummary> pods;
  while (true) {
    const char* name = nullptr;
    const char* state = nullptr;
    const char* tee = nullptr;
    const char* path = nullptr;
    r = sd_bus_message_read(reply.get(), "(ssso)", &name, &state, &tee, &path);
    if (r < 0) return reply_error("ListPods", r);
    if (r == 0) break;
    pods.push_back({name, state, tee, path});
  }
  r = sd_bus_message_exit_container(reply.get());
  if (r < 0) return reply_error("ListPods", r);
  return pods;
}

Result<std::string> Client::pod_log(const std::string& name, std::uint64_t max_bytes) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "GetPodLog",
                             error.get(), &raw, "st", name.c_str(), max_bytes);
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "GetPodLog");
  const char* text = nullptr;
  r = sd_bus_message_read(reply.get(), "s", &text);
  if (r < 0) return reply_error("GetPodLog", r);
  return std::string(text);
}

Result<nlohmann::json> Client::pod_properties(const std::string& path) {
  return properties(path, kPodInterface);
}

Result<nlohmann::json> Client::properties(const std::string& path, const char* interface) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, path.c_str(), "org.freedesktop.DBus.Properties",
                             "GetAll", error.get(), &raw, "s", interface);
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "GetAll");
  return read_json(reply.get());
}

namespace {
// The reply's "h", duplicated: the message owns its descriptor.
Result<UniqueFd> read_fd(sd_bus_message* reply, const char* what) {
  int fd = -1;
  int r = sd_bus_message_read(reply, "h", &fd);
  if (r < 0) return reply_error(what, r);
  UniqueFd owned(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!owned) return make_error("ctl.reply", std::string(what) + ": dup: " + std::strerror(errno));
  return owned;
}
}  // namespace

Result<UniqueFd> Client::exec(const std::string& name, const std::string& container,
                              const std::vector<std::string>& command, bool tty, unsigned rows,
                              unsigned cols) {
  auto path = get_pod(name);
  if (!path.ok()) return path.error();
  BusError error;
  sd_bus_message* raw_call = nullptr;
  int r = sd_bus_message_new_method_call(bus_.get(), &raw_call, kBusName, path->c_str(),
                                         kPodInterface, "Exec");
  MessagePtr call(raw_call);
  if (r < 0) return reply_error("Exec", r);
  r = sd_bus_message_append(call.get(), "s", container.c_str());
  if (r >= 0) r = sd_bus_message_open_container(call.get(), 'a', "s");
  for (std::size_t i = 0; r >= 0 && i < command.size(); ++i)
    r = sd_bus_message_append(call.get(), "s", command[i].c_str());
  if (r >= 0) r = sd_bus_message_close_container(call.get());
  if (r >= 0) r = sd_bus_message_append(call.get(), "buu", tty ? 1 : 0, rows, cols);
  if (r < 0) return reply_error("Exec", r);
  sd_bus_message* raw = nullptr;
  r = sd_bus_call(bus_.get(), call.get(), 0, error.get(), &raw);
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "Exec");
  return read_fd(reply.get(), "Exec");
}

Result<UniqueFd> Client::attach(const std::string& name, const std::string& container) {
  auto path = get_pod(name);
  if (!path.ok()) return path.error();
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, path->c_str(), kPodInterface, "Attach",
                             error.get(), &raw, "s", container.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "Attach");
  return read_fd(reply.get(), "Attach");
}

Result<std::string> Client::create_network(const NetworkArgs& args) {
  BusError error;
  sd_bus_message* raw_call = nullptr;
  int r = sd_bus_message_new_method_call(bus_.get(), &raw_call, kBusName, kManagerPath,
                                         kManagerInterface, "CreateNetwork");
  MessagePtr call(raw_call);
  if (r < 0) return reply_error("CreateNetwork", r);
  r = sd_bus_message_append(call.get(), "ssssb", args.name.c_str(), args.bridge.c_str(),
                            args.subnet.c_str(), args.subnet6.c_str(), args.masquerade ? 1 : 0);
  if (r >= 0) r = sd_bus_message_open_container(call.get(), 'a', "s");
  for (std::size_t i = 0; r >= 0 && i < args.dns.size(); ++i)
    r = sd_bus_message_append(call.get(), "s", args.dns[i].c_str());
  if (r >= 0) r = sd_bus_message_close_container(call.get());
  if (r < 0) return reply_error("CreateNetwork", r);
  sd_bus_message* raw = nullptr;
  r = sd_bus_call(bus_.get(), call.get(), 0, error.get(), &raw);
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "CreateNetwork");
  const char* path = nullptr;
  r = sd_bus_message_read(reply.get(), "o", &path);
  if (r < 0) return reply_error("CreateNetwork", r);
  return std::string(path);
}

Status Client::remove_network(const std::string& name) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "RemoveNetwork",
                             error.get(), &raw, "s", name.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "RemoveNetwork");
  return ok_status();
}

Result<std::string> Client::get_network(const std::string& name) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "GetNetwork",
                             error.get(), &raw, "s", name.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "GetNetwork");
  const char* path = nullptr;
  r = sd_bus_message_read(reply.get(), "o", &path);
  if (r < 0) return reply_error("GetNetwork", r);
  return std::string(path);
}

Result<std::vector<NetworkSummary>> Client::list_networks() {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kManagerInterface, "ListNetworks",
                             error.get(), &raw, "");
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "ListNetworks");
  r = sd_bus_message_enter_container(reply.get(), 'a', "(ssso)");
  if (r < 0) return reply_error("ListNetworks", r);
  std::vector<NetworkSummary> out;
  const char *name = nullptr, *bridge = nullptr, *subnet = nullptr, *path = nullptr;
  while ((r = sd_bus_message_read(reply.get(), "(ssso)", &name, &bridge, &subnet, &path)) > 0)
    out.push_back({name, bridge, subnet, path});
  if (r < 0) return reply_error("ListNetworks", r);
  return out;
}

Status Client::set_resource(const std::string& path, const std::vector<std::uint8_t>& value) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus_.get(), &raw, kBusName, kManagerPath, kBrokerInterface,
                                         "SetResource");
  MessagePtr call(raw);
  if (r >= 0) r = sd_bus_message_sensitive(call.get());
  if (r >= 0) r = sd_bus_message_append(call.get(), "s", path.c_str());
  if (r >= 0) r = sd_bus_message_append_array(call.get(), 'y', value.data(), value.size());
  if (r < 0) return make_error(kConnectError, std::string("SetResource: ") + std::strerror(-r));
  sd_bus_message* reply_raw = nullptr;
  r = sd_bus_call(bus_.get(), call.get(), 0, error.get(), &reply_raw);
  MessagePtr reply(reply_raw);
  if (r < 0) return error.to_error(r, "SetResource");
  return ok_status();
}

Status Client::delete_resource(const std::string& path) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kBrokerInterface, "DeleteResource",
                             error.get(), &raw, "s", path.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "DeleteResource");
  return ok_status();
}

Result<std::vector<std::string>> Client::list_resources() {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kBrokerInterface, "ListResources",
                             error.get(), &raw, "");
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "ListResources");
  char** strv = nullptr;
  r = sd_bus_message_read_strv(reply.get(), &strv);
  std::vector<std::string> out;
  if (strv != nullptr) {
    for (char** p = strv; *p != nullptr; ++p) {
      out.emplace_back(*p);
      std::free(*p);
    }
    std::free(strv);
  }
  if (r < 0) return reply_error("ListResources", r);
  return out;
}

Result<std::vector<Client::CollateralRow>> Client::import_collateral(
    const std::string& name, const std::vector<std::uint8_t>& data) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus_.get(), &raw, kBusName, kManagerPath, kBrokerInterface,
                                         "ImportCollateral");
  MessagePtr call(raw);
  if (r >= 0) r = sd_bus_message_append(call.get(), "s", name.c_str());
  if (r >= 0) r = sd_bus_message_append_array(call.get(), 'y', data.data(), data.size());
  if (r < 0)
    return make_error(kConnectError, std::string("ImportCollateral: ") + std::strerror(-r));
  sd_bus_message* reply_raw = nullptr;
  r = sd_bus_call(bus_.get(), call.get(), 0, error.get(), &reply_raw);
  MessagePtr reply(reply_raw);
  if (r < 0) return error.to_error(r, "ImportCollateral");
  std::vector<CollateralRow> out;
  r = sd_bus_message_enter_container(reply.get(), 'a', "(ssssx)");
  const char *id, *kind, *subject, *status;
  std::int64_t not_after = 0;
  while (r >= 0 && (r = sd_bus_message_read(reply.get(), "(ssssx)", &id, &kind, &subject, &status,
                                            &not_after)) > 0) {
    CollateralRow row;
    row.id = id;
    row.kind = kind;
    row.subject = subject;
    row.status = status;
    row.not_after = not_after;
    out.push_back(std::move(row));
  }
  if (r < 0) return reply_error("ImportCollateral", r);
  return out;
}

Result<std::vector<Client::CollateralRow>> Client::list_collateral() {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kBrokerInterface, "ListCollateral",
                             error.get(), &raw, "");
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "ListCollateral");
  std::vector<CollateralRow> out;
  r = sd_bus_message_enter_container(reply.get(), 'a', "(ssssxsx)");
  const char *id, *kind, *key, *subject, *source;
  std::int64_t not_after = 0, imported_at = 0;
  while (r >= 0 && (r = sd_bus_message_read(reply.get(), "(ssssxsx)", &id, &kind, &key, &subject,
                                            &not_after, &source, &imported_at)) > 0) {
    CollateralRow row;
    row.id = id;
    row.kind = kind;
    row.key = key;
    row.subject = subject;
    row.not_after = not_after;
    row.source = source;
    row.imported_at = imported_at;
    out.push_back(std::move(row));
  }
  if (r < 0) return reply_error("ListCollateral", r);
  return out;
}

Result<std::string> Client::remove_collateral(const std::string& id) {
  BusError error;
  sd_bus_message* raw = nullptr;
  int r = sd_bus_call_method(bus_.get(), kBusName, kManagerPath, kBrokerInterface,
                             "RemoveCollateral", error.get(), &raw, "s", id.c_str());
  MessagePtr reply(raw);
  if (r < 0) return error.to_error(r, "RemoveCollateral");
  const char* removed = nullptr;
  r = sd_bus_message_read(reply.get(), "s", &removed);
  if (r < 0) return reply_error("RemoveCollateral", r);
  return std::string(removed);
}

}  // namespace confpod::ctl
