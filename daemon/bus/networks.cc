#include "daemon/bus/networks.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "daemon/bus/durable_reply.h"
#include "daemon/bus/errors.h"
#include "daemon/bus/service.h"
#include "daemon/net/networking.h"

namespace confpod::bus {
namespace {

using MessagePtr = std::unique_ptr<sd_bus_message, sd_bus_message* (*)(sd_bus_message*)>;

NetworkHandlers* self(void* userdata) { return static_cast<NetworkHandlers*>(userdata); }

std::string network_name_of(const char* path) { return name_in_path(path, kNetworkPathPrefix); }

int no_such_network(sd_bus_error* error, std::string_view name) {
  return set_bus_error(
      error,
      make_error("net.not_found", "no network named \"" + std::string(name.substr(0, 64)) + "\""));
}

int append_strings(sd_bus_message* reply, const std::vector<std::string>& list) {
  int r = sd_bus_message_open_container(reply, 'a', "s");
  for (std::size_t i = 0; r >= 0 && i < list.size(); ++i)
    r = sd_bus_message_append(reply, "s", list[i].c_str());
  return r < 0 ? r : sd_bus_message_close_container(reply);
}

}  // namespace

std::string network_object_path(const std::string& name) {
  return object_path(kNetworkPathPrefix, name);
}

int NetworkHandlers::create_network(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  const char *name = nullptr, *bridge = nullptr, *subnet = nullptr, *subnet6 = nullptr;
  int masquerade = 1;
  int r = sd_bus_message_read(m, "ssssb", &name, &bridge, &subnet, &subnet6, &masquerade);
  if (r < 0) return r;
  char** dns_raw = nullptr;
  r = sd_bus_message_read_strv(m, &dns_raw);
  if (r < 0) return r;
  net::NetworkDef def;
  def.name = name;
  def.bridge = bridge;
  def.subnet = subnet;
  def.subnet6 = subnet6;
  def.masquerade = masquerade != 0;
  for (char** p = dns_raw; p != nullptr && *p != nullptr; ++p) {
    def.dns.emplace_back(*p);
    std::free(*p);
  }
  std::free(dns_raw);
  NetworkHandlers* h = self(userdata);
  return h->auth.authorize(m, error, [h, def](sd_bus_message* call, sd_bus_error*) {
    auto made = h->manager.networking().create_network(def);
    if (!made.ok()) return reply_error_when_durable(h->manager, call, made.take_error());
    std::string path = network_object_path(made->def.name);
    return reply_when_durable(h->manager, call, [path](sd_bus_message* c) {
      return sd_bus_reply_method_return(c, "o", path.c_str());
    });
  });
}

int NetworkHandlers::remove_network(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  const char* name = nullptr;
  int r = sd_bus_message_read(m, "s", &name);
  if (r < 0) return r;
  NetworkHandlers* h = self(userdata);
  std::string network = name;
  return h->auth.authorize(m, error, [h, network](sd_bus_message* call, sd_bus_error*) {
    Status removed = h->manager.networking().remove_network(network);
    if (!removed.ok()) return reply_error_when_durable(h->manager, call, removed.take_error());
    return reply_when_durable(h->manager, call,
                              [](sd_bus_message* c) { return sd_bus_reply_method_return(c, ""); });
  });
}

int NetworkHandlers::get_network(sd_bus_message* m, void* userdata, sd_bus_error* error) {
  const char* name = nullptr;
  int r = sd_bus_message_read(m, "s", &name);
  if (r < 0) return r;
  if (self(userdata)->manager.networking().find(name) == nullptr)
    return no_such_network(error, name);
  std::string path = network_object_path(name);
  return sd_bus_reply_method_return(m, "o", path.c_str());
}

int NetworkHandlers::list_networks(sd_bus_message* m, void* userdata, sd_bus_error*) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_return(m, &raw);
  if (r < 0) return r;
  MessagePtr reply(raw, &sd_bus_message_unref);
  r = sd_bus_message_open_container(raw, 'a', "(ssso)");
  if (r < 0) return r;
  for (const net::Network& n : self(userdata)->manager.networking().networks()) {
    std::string path = network_object_path(n.def.name);
    r = sd_bus_message_append(raw, "(ssso)", n.def.name.c_str(), n.def.bridge.c_str(),
                              n.def.subnet.c_str(), path.c_str());
    if (r < 0) return r;
  }
  r = sd_bus_message_close_container(raw);
  if (r < 0) return r;
  return sd_bus_send(nullptr, raw, nullptr);
}

int NetworkHandlers::find(sd_bus*, const char* path, const char*, void* userdata, void** found,
                          sd_bus_error*) {
  std::string name = network_name_of(path);
  if (name.empty() || self(userdata)->manager.networking().find(name) == nullptr) return 0;
  *found = userdata;
  return 1;
}

int NetworkHandlers::enumerate(sd_bus*, const char*, void* userdata, char*** nodes, sd_bus_error*) {
  const auto& list = self(userdata)->manager.networking().networks();
  auto** strv = static_cast<char**>(std::calloc(list.size() + 1, sizeof(char*)));
  if (strv == nullptr) return -ENOMEM;
  std::size_t n = 0;
  for (const net::Network& network : list) {
    char* path = nullptr;
    if (sd_bus_path_encode(kNetworkPathPrefix, network.def.name.c_str(), &path) >= 0 &&
        path != nullptr)
      strv[n++] = path;
  }
  *nodes = strv;
  return 1;
}

int NetworkHandlers::get_property(sd_bus*, const char* path, const char*, const char* property,
                                  sd_bus_message* reply, void* userdata, sd_bus_error* error) {
  std::string name = network_name_of(path);
  const net::Networking& networking = self(userdata)->manager.networking();
  const net::Network* n = networking.find(name);
  if (n == nullptr) return no_such_network(error, name);
  std::string_view p = property;
  if (p == "Name") return sd_bus_message_append(reply, "s", n->def.name.c_str());
  if (p == "Bridge") return sd_bus_message_append(reply, "s", n->def.bridge.c_str());
  if (p == "Subnet") return sd_bus_message_append(reply, "s", n->def.subnet.c_str());
  if (p == "Subnet6") return sd_bus_message_append(reply, "s", n->def.subnet6.c_str());
  if (p == "Gateway") {
    std::string gw = net::format_ipv4(n->gateway());
    return sd_bus_message_append(reply, "s", gw.c_str());
  }
  if (p == "Masquerade") return sd_bus_message_append(reply, "b", n->def.masquerade ? 1 : 0);
  if (p == "Dns") return append_strings(reply, n->def.dns);
  if (p == "Declared") return sd_bus_message_append(reply, "b", n->def.from_config ? 1 : 0);
  if (p == "Pods") return append_strings(reply, networking.pods_on(name));
  return -ENOENT;
}

int NetworkHandlers::append_pod_property(sd_bus_message* reply, const pods::Manager& manager,
                                         const store::PodRecord& pod, std::string_view p) {
  if (p == "Network") {
    const std::string network = pod.network.empty() ? "user" : pod.network;
    return sd_bus_message_append(reply, "s", network.c_str());
  }
  if (p == "Address") return sd_bus_message_append(reply, "s", pod.address.c_str());
  if (p == "Address6") return sd_bus_message_append(reply, "s", pod.address6.c_str());
  if (p == "Mac") return sd_bus_message_append(reply, "s", pod.mac.c_str());
  if (p == "Ports") {
    int r = sd_bus_message_open_container(reply, 'a', "(sqsq)");
    for (const spec::Port& port : manager.networking().ports_of(pod.name)) {
      if (r < 0) break;
      r = sd_bus_message_append(reply, "(sqsq)", port.host_ip.c_str(), port.host_port,
                                port.protocol.c_str(), port.guest_port);
    }
    return r < 0 ? r : sd_bus_message_close_container(reply);
  }
  return -ENOENT;
}

const sd_bus_vtable NetworkHandlers::network_vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Name", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Bridge", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Subnet", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Subnet6", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Gateway", "s", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Masquerade", "b", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Dns", "as", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Declared", "b", get_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
    SD_BUS_PROPERTY("Pods", "as", get_property, 0, 0),
    SD_BUS_VTABLE_END,
};

}  // namespace confpod::bus
