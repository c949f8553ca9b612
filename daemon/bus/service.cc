#include "daemon/bus/service.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "daemon/bus/durable_reply.h"
#include "daemon/bus/errors.h"
#include "daemon/pods/log.h"

namespace confpod::bus {

namespace {

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

// The pod name encoded in an object path under kPodPathPrefix, or "" when it is not one.
std::string pod_name_of(const char* path) { return name_in_path(path, kPodPathPrefix); }

int no_such_pod(sd_bus_error* error, std::string_view name) {
  return set_bus_error(error, pods::not_found(name));
}

}  // namespace

std::string object_path(const char* prefix, const std::string& name) {
  char* raw = nullptr;
  if (sd_bus_path_encode(prefix, name.c_str(), &raw) < 0 || raw == nullptr) return {};
  CString path(raw);
  return std::string(raw);
}

std::string name_in_path(const char* path, const char* prefix) {
  if (path == nullptr) return {};
  char* raw = nullptr;
  if (sd_bus_path_decode(path, prefix, &raw) <= 0) return {};
  CString name(raw);
  return raw != nullptr ? std::string(raw) : std::string();
}

std::string pod_object_path(const std::string& name) { return object_path(kPodPathPrefix, name); }

// The vtable callbacks; `userdata` is the BusService.
struct BusService::Handlers {
  static BusService* self(void* userdata) { return static_cast<BusService*>(userdata); }

  // --- org.confpod1.Manager ---

  static int create_pod(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* spec = nullptr;
    int r = sd_bus_message_read(m, "s", &spec);
    if (r < 0) return r;
    BusService* s = self(userdata);
    std::string text = spec;
    return s->auth_.authorize(m, error, [s, text](sd_bus_message* call, sd_bus_error*) {
      auto created = s->manager_.create_pod(text);
      if (!created.ok()) return reply_error_when_durable(s->manager_, call, created.take_error());
      std::string path = pod_object_path(created->name);
      return reply_when_durable(s->manager_, call, [path](sd_bus_message* c) {
        return sd_bus_reply_method_return(c, "o", path.c_str());
      });
    });
  }

  using PodOp = void (pods::Manager::*)(const std::string&, pods::Manager::Done);

  static int named_op(sd_bus_message* m, void* userdata, sd_bus_error* error, PodOp op) {
    const char* name = nullptr;
    int r = sd_bus_message_read(m, "s", &name);
    if (r < 0) return r;
    BusService* s = self(userdata);
    std::string pod = name;
    return s->auth_.authorize(m, error, [s, pod, op](sd_bus_message* call, sd_bus_error*) {
      (s->manager_.*op)(pod, reply_when_done(s->manager_, call));
      return 1;
    });
  }
  static int start_pod(sd_bus_message* m, void* u, sd_bus_error* e) {
    return named_op(m, u, e, &pods::Manager::start_pod);
  }
  static int stop_pod(sd_bus_message* m, void* u, sd_bus_error* e) {
    return named_op(m, u, e, &pods::Manager::stop_pod);
  }
  static int kill_pod(sd_bus_message* m, void* u, sd_bus_error* e) {
    return named_op(m, u, e, &pods::Manager::kill_pod);
  }

  static int remove_pod(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* name = nullptr;
    int force = 0;
    int r = sd_bus_message_read(m, "sb", &name, &force);
    if (r < 0) return r;
    BusService* s = self(userdata);
    std::string pod = name;
    return s->auth_.authorize(m, error, [s, pod, force](sd_bus_message* call, sd_bus_error*) {
      s->manager_.remove_pod(pod, force != 0, reply_when_done(s->manager_, call));
      return 1;
    });
  }

  static int get_pod(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* name = nullptr;
    int r = sd_bus_message_read(m, "s", &name);
    if (r < 0) return r;
    const store::PodRecord* pod = self(userdata)->manager_.find(name);
    if (pod == nullptr) return set_bus_error(error, pods::not_found(name));
    return sd_bus_reply_method_return(m, "o", self(userdata)->pod_path(pod->name).c_str());
  }

  static int list_pods(sd_bus_message* m, void* userdata, sd_bus_error*) {
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(m, &raw);
    if (r < 0) return r;
    std::unique_ptr<sd_bus_message, sd_bus_message* (*)(sd_bus_message*)> reply(
        raw, &sd_bus_message_unref);
    r = sd_bus_message_open_container(raw, 'a', "(ssso)");
    if (r < 0) return r;
    BusService* s = self(userdata);
    // Field by field: sd_bus_message_append would parse "(ssso)" again for every pod, which
    // was a third of ListPods' time with 200 pods.
    for (const store::PodRecord* pod : s->manager_.list()) {
      std::string state(store::to_string(pod->state));
      r = sd_bus_message_open_container(raw, 'r', "ssso");
      if (r >= 0) r = sd_bus_message_append_basic(raw, 's', pod->name.c_str());
      if (r >= 0) r = sd_bus_message_append_basic(raw, 's', state.c_str());
      if (r >= 0) r = sd_bus_message_append_basic(raw, 's', pod->tee.c_str());
      if (r >= 0) r = sd_bus_message_append_basic(raw, 'o', s->pod_path(pod->name).c_str());
      if (r >= 0) r = sd_bus_message_close_container(raw);
      if (r < 0) return r;
    }
    r = sd_bus_message_close_container(raw);
    if (r < 0) return r;
    return sd_bus_send(nullptr, raw, nullptr);
  }

  static int get_pod_log(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* name = nullptr;
    std::uint64_t max_bytes = 0;
    int r = sd_bus_message_read(m, "st", &name, &max_bytes);
    if (r < 0) return r;
    BusService* s = self(userdata);
    std::string pod = name;
    return s->auth_.authorize(m, error,
                              [s, pod, max_bytes](sd_bus_message* call, sd_bus_error* err) {
                                auto text = s->manager_.pod_log(pod, max_bytes);
                                if (!text.ok()) return set_bus_error(err, text.error());
                                return sd_bus_reply_method_return(call, "s", text->c_str());
                              });
  }

  // --- org.confpod1.Pod (fallback vtable under kPodPathPrefix) ---

  static int find_pod(sd_bus*, const char* path, const char*, void* userdata, void** found,
                      sd_bus_error*) {
    std::string name = pod_name_of(path);
    if (name.empty() || self(userdata)->manager_.find(name) == nullptr) return 0;
    *found = userdata;
    return 1;
  }

  static int enumerate_pods(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error*) {
    auto list = self(userdata)->manager_.list();
    auto** strv = static_cast<char**>(std::calloc(list.size() + 1, sizeof(char*)));
    if (strv == nullptr) return -ENOMEM;
    std::size_t n = 0;
    for (const store::PodRecord* pod : list) {
      char* path = nullptr;
      if (sd_bus_path_encode(kPodPathPrefix, pod->name.c_str(), &path) >= 0 && path != nullptr)
        strv[n++] = path;
    }
    *nodes = strv;
    return 1;
  }

  static int get_property(sd_bus*, const char* path, const char*, const char* property,
                          sd_bus_message* reply, void* userdata, sd_bus_error* error) {
    std::string name = pod_name_of(path);
    const store::PodRecord* pod = self(userdata)->manager_.find(name);
    if (pod == nullptr) return no_such_pod(error, name);
    std::string_view p = property;
    if (p == "Name") return sd_bus_message_append(reply, "s", pod->name.c_str());
    if (p == "State") {
      std::string state(store::to_string(pod->state));
      return sd_bus_message_append(reply, "s", state.c_str());
    }
    if (p == "Tee") return sd_bus_message_append(reply, "s", pod->tee.c_str());
    if (p == "Spec") return sd_bus_message_append(reply, "s", pod->spec_toml.c_str());
    if (p == "CreatedAt")
      return sd_bus_message_append(reply, "t", static_cast<std::uint64_t>(pod->created_at_us));
    if (p == "StartedAt")
      return sd_bus_message_append(reply, "t",
                                   static_cast<std::uint64_t>(pod->started_at_us.value_or(0)));
    if (p == "ExitStatus")
      return sd_bus_message_append(reply, "i",
                                   static_cast<std::int32_t>(pod->exit_status.value_or(0)));
    if (p == "ExitReason") {
      // Reasons quote guest and host text: made a valid D-Bus string.
      const std::string reason = pods::sanitize_utf8(pod->exit_reason);
      return sd_bus_message_append(reply, "s", reason.c_str());
    }
    if (p == "Measurement") return sd_bus_message_append(reply, "s", pod->measurement.c_str());
    if (p == "VsockCid") return sd_bus_message_append(reply, "u", pod->vsock_cid);
    return NetworkHandlers::append_pod_property(reply, self(userdata)->manager_, *pod, p);
  }

  static int pod_op(sd_bus_message* m, void* userdata, sd_bus_error* error, PodOp op) {
    BusService* s = self(userdata);
    std::string pod = pod_name_of(sd_bus_message_get_path(m));
    return s->auth_.authorize(m, error, [s, pod, op](sd_bus_message* call, sd_bus_error*) {
      (s->manager_.*op)(pod, reply_when_done(s->manager_, call));
      return 1;
    });
  }
  static int pod_start(sd_bus_message* m, void* u, sd_bus_error* e) {
    return pod_op(m, u, e, &pods::Manager::start_pod);
  }
  static int pod_stop(sd_bus_message* m, void* u, sd_bus_error* e) {
    return pod_op(m, u, e, &pods::Manager::stop_pod);
  }
  static int pod_kill(sd_bus_message* m, void* u, sd_bus_error* e) {
    return pod_op(m, u, e, &pods::Manager::kill_pod);
  }
  // The Manager's network methods, with the service's NetworkHandlers as their userdata.
  template <int (*F)(sd_bus_message*, void*, sd_bus_error*)>
  static int network_call(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    return F(m, &self(userdata)->networks_, error);
  }

  static const sd_bus_vtable manager_vtable[];
  static const sd_bus_vtable pod_vtable[];

  // Exec(s container, as command, b tty, u rows, u cols) -> h stream: replies once the agent
  // started the command (or refused it).
  static int pod_exec(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* container = nullptr;
    int r = sd_bus_message_read(m, "s", &container);
    if (r < 0) return r;
    pods::Manager::ExecRequest request;
    request.container = container;
    char** strv = nullptr;
    r = sd_bus_message_read_strv(m, &strv);
    if (r < 0) return r;
    for (char** p = strv; p != nullptr && *p != nullptr; ++p) {
      request.command.emplace_back(*p);
      std::free(*p);
    }
    std::free(strv);
    int tty = 0;
    std::uint32_t rows = 0, cols = 0;
    r = sd_bus_message_read(m, "buu", &tty, &rows, &cols);
    if (r < 0) return r;
    request.tty = tty != 0;
    request.rows = rows;
    request.cols = cols;
    BusService* s = self(userdata);
    std::string pod = pod_name_of(sd_bus_message_get_path(m));
    return s->auth_.authorize(m, error, [s, pod, request](sd_bus_message* call, sd_bus_error*) {
      std::shared_ptr<sd_bus_message> held(sd_bus_message_ref(call),
                                           [](sd_bus_message* msg) { sd_bus_message_unref(msg); });
      s->manager_.exec_pod(pod, request, [held](Result<UniqueFd> stream) {
        int r = stream.ok() ? sd_bus_reply_method_return(held.get(), "h", stream->get())
                            : reply_bus_error(held.get(), stream.error());
        if (r < 0) pods::log_warning("cannot send reply", {{"error", std::strerror(-r)}});
      });
      return 1;
    });
  }

  // Attach(s container) -> h stream.
  static int pod_attach(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* container = nullptr;
    int r = sd_bus_message_read(m, "s", &container);
    if (r < 0) return r;
    BusService* s = self(userdata);
    std::string pod = pod_name_of(sd_bus_message_get_path(m));
    std::string name = container;
    return s->auth_.authorize(m, error, [s, pod, name](sd_bus_message* call, sd_bus_error* err) {
      auto stream = s->manager_.attach_pod(pod, name);
      if (!stream.ok()) return set_bus_error(err, stream.error());
      return sd_bus_reply_method_return(call, "h", stream->get());
    });
  }

  static int pod_remove(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    int force = 0;
    int r = sd_bus_message_read(m, "b", &force);
    if (r < 0) return r;
    BusService* s = self(userdata);
    std::string pod = pod_name_of(sd_bus_message_get_path(m));
    return s->auth_.authorize(m, error, [s, pod, force](sd_bus_message* call, sd_bus_error*) {
      s->manager_.remove_pod(pod, force != 0, reply_when_done(s->manager_, call));
      return 1;
    });
  }
};

// Every method is SD_BUS_VTABLE_UNPRIVILEGED: sd-bus's own check (CAP_SYS_ADMIN) is replaced by
// ours (auth.h), which lets everyone read and authorizes mutations.
const sd_bus_vtable BusService::Handlers::manager_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("CreatePod", "s", SD_BUS_PARAM(spec_toml), "o", SD_BUS_PARAM(pod),
                             create_pod, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("StartPod", "s", SD_BUS_PARAM(name), "", , start_pod,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("StopPod", "s", SD_BUS_PARAM(name), "", , stop_pod,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("KillPod", "s", SD_BUS_PARAM(name), "", , kill_pod,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RemovePod", "sb", SD_BUS_PARAM(name) SD_BUS_PARAM(force), "", ,
                             remove_pod, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetPod", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(pod), get_pod,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListPods", "", , "a(ssso)", SD_BUS_PARAM(pods), list_pods,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetPodLog", "st", SD_BUS_PARAM(name) SD_BUS_PARAM(max_bytes), "s",
                             SD_BUS_PARAM(text), get_pod_log, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("CreateNetwork", "ssssbas",
                             SD_BUS_PARAM(name) SD_BUS_PARAM(bridge) SD_BUS_PARAM(subnet)
                                 SD_BUS_PARAM(subnet6) SD_BUS_PARAM(masquerade) SD_BUS_PARAM(dns),
                             "o", SD_BUS_PARAM(network),
                             network_call<&NetworkHandlers::create_network>,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RemoveNetwork", "s", SD_BUS_PARAM(name), "", ,
                             network_call<&NetworkHandlers::remove_network>,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("GetNetwork", "s", SD_BUS_PARAM(name), "o", SD_BUS_PARAM(network),
                             network_call<&NetworkHandlers::get_network>,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListNetworks", "", , "a(ssso)", SD_BUS_PARAM(networks),
                             network_call<&NetworkHandlers::list_networks>,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("PodNew", "so", SD_BUS_PARAM(name) SD_BUS_PARAM(pod), 0),
    SD_BUS_SIGNAL_WITH_NAMES("PodRemoved", "so", SD_BUS_PARAM(name) SD_BUS_PARAM(pod), 0),
    SD_BUS_VTABLE_END,
};

const sd_bus_vtable BusService::Handlers::pod_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Name", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("State", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Tee", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Spec", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("CreatedAt", "t", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("StartedAt", "t", get_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ExitStatus", "i", get_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ExitReason", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("Measurement", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("VsockCid", "u", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Network", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Address", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Address6", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Mac", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Ports", "a(sqsq)", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_METHOD("Start", "", "", pod_start, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Stop", "", "", pod_stop, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("Kill", "", "", pod_kill, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Remove", "b", SD_BUS_PARAM(force), "", , pod_remove,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Exec", "sasbuu",
                             SD_BUS_PARAM(container) SD_BUS_PARAM(command) SD_BUS_PARAM(tty)
                                 SD_BUS_PARAM(rows) SD_BUS_PARAM(cols),
                             "h", SD_BUS_PARAM(stream), pod_exec, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Attach", "s", SD_BUS_PARAM(container), "h", SD_BUS_PARAM(stream),
                             pod_attach, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

BusService::BusService(sd_bus* bus, pods::Manager& manager, AuthPolicy auth,
                       std::function<void()> on_change)
    : bus_(bus),
      manager_(manager),
      auth_(std::move(auth)),
      on_change_(std::move(on_change)),
      networks_{manager_, auth_} {}

BusService::~BusService() { manager_.set_listener(nullptr); }

Result<std::unique_ptr<BusService>> BusService::create(sd_bus* bus, pods::Manager& manager,
                                                       AuthPolicy auth,
                                                       std::function<void()> on_change) {
  std::unique_ptr<BusService> service(
      new BusService(bus, manager, std::move(auth), std::move(on_change)));
  auto check = [](int r, const char* what) -> Status {
    if (r < 0) return make_error("bus.setup", std::string(what) + ": " + std::strerror(-r));
    return ok_status();
  };
  void* self = service.get();
  sd_bus_slot* slot = nullptr;
  CONFPOD_TRY(check(sd_bus_add_object_vtable(bus, &slot, kManagerPath, kManagerInterface,
                                             Handlers::manager_vtable, self),
                    "manager vtable"));
  service->slots_.emplace_back(slot);
  CONFPOD_TRY(check(sd_bus_add_fallback_vtable(bus, &slot, kPodPathPrefix, kPodInterface,
                                               Handlers::pod_vtable, &Handlers::find_pod, self),
                    "pod vtable"));
  service->slots_.emplace_back(slot);
  CONFPOD_TRY(
      check(sd_bus_add_node_enumerator(bus, &slot, kPodPathPrefix, &Handlers::enumerate_pods, self),
            "node enumerator"));
  service->slots_.emplace_back(slot);
  CONFPOD_TRY(check(sd_bus_add_fallback_vtable(bus, &slot, kNetworkPathPrefix, kNetworkInterface,
                                               NetworkHandlers::network_vtable,
                                               &NetworkHandlers::find, &service->networks_),
                    "network vtable"));
  service->slots_.emplace_back(slot);
  CONFPOD_TRY(check(sd_bus_add_node_enumerator(bus, &slot, kNetworkPathPrefix,
                                               &NetworkHandlers::enumerate, &service->networks_),
                    "network enumerator"));
  service->slots_.emplace_back(slot);
  CONFPOD_TRY(check(sd_bus_add_object_manager(bus, &slot, kManagerPath), "object manager"));
  service->slots_.emplace_back(slot);
  manager.set_listener(service.get());
  return service;
}

void BusService::pod_added(const store::PodRecord& pod) {
  std::string path = pod_object_path(pod.name);
  int r = sd_bus_emit_signal(bus_, kManagerPath, kManagerInterface, "PodNew", "so",
                             pod.name.c_str(), path.c_str());
  if (r >= 0) r = sd_bus_emit_object_added(bus_, path.c_str());
  if (r < 0) pods::log_warning("cannot emit PodNew", {{"error", std::strerror(-r)}});
  if (on_change_) on_change_();
}

void BusService::pod_changed(const store::PodRecord& pod, unsigned changes) {
  std::vector<char*> names;
  if (changes & pods::kChangeState) names.push_back(const_cast<char*>("State"));
  if (changes & pods::kChangeStartedAt) names.push_back(const_cast<char*>("StartedAt"));
  if (changes & pods::kChangeExitStatus) {
    names.push_back(const_cast<char*>("ExitStatus"));
    names.push_back(const_cast<char*>("ExitReason"));
  }
  if (changes & pods::kChangeMeasurement) names.push_back(const_cast<char*>("Measurement"));
  if (!names.empty()) {
    names.push_back(nullptr);
    std::string path = pod_object_path(pod.name);
    int r = sd_bus_emit_properties_changed_strv(bus_, path.c_str(), kPodInterface, names.data());
    if (r < 0) pods::log_warning("cannot emit PropertiesChanged", {{"error", std::strerror(-r)}});
  }
  if (on_change_) on_change_();
}

const std::string& BusService::pod_path(const std::string& name) {
  auto it = pod_paths_.find(name);
  if (it == pod_paths_.end()) it = pod_paths_.emplace(name, pod_object_path(name)).first;
  return it->second;
}

void BusService::pod_removed(const store::PodRecord& pod) {
  std::string path = pod_object_path(pod.name);
  pod_paths_.erase(pod.name);
  // While the pod is still found, so InterfacesRemoved can list its interfaces.
  int r = sd_bus_emit_object_removed(bus_, path.c_str());
  if (r >= 0)
    r = sd_bus_emit_signal(bus_, kManagerPath, kManagerInterface, "PodRemoved", "so",
                           pod.name.c_str(), path.c_str());
  if (r < 0) pods::log_warning("cannot emit PodRemoved", {{"error", std::strerror(-r)}});
  if (on_change_) on_change_();
}

}  // namespace confpod::bus
