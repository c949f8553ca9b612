// The networks on D-Bus (docs/dbus-api.md, docs/network.md): Manager methods CreateNetwork,
// RemoveNetwork, GetNetwork, ListNetworks, and one org.confpod1.Network object per network at
// /org/confpod1/network/<escaped name> (a fallback vtable with a node enumerator, like pods).
// Internal to daemon/bus: BusService registers them and puts the methods in its Manager
// vtable.
#pragma once

#include <systemd/sd-bus.h>

#include <string>

#include "daemon/bus/auth.h"
#include "daemon/bus/names.h"
#include "daemon/pods/manager.h"

namespace confpod::bus {

// /org/confpod1/network/<sd_bus_path_encode(name)>
std::string network_object_path(const std::string& name);

// What the handlers need; BusService owns one and passes it as userdata.
struct NetworkHandlers {
  pods::Manager& manager;
  Authorizer& auth;

  static int create_network(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int remove_network(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int get_network(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int list_networks(sd_bus_message* m, void* userdata, sd_bus_error* error);
  static int find(sd_bus* bus, const char* path, const char* interface, void* userdata,
                  void** found, sd_bus_error* error);
  static int enumerate(sd_bus* bus, const char* prefix, void* userdata, char*** nodes,
                       sd_bus_error* error);
  static int get_property(sd_bus* bus, const char* path, const char* interface,
                          const char* property, sd_bus_message* reply, void* userdata,
                          sd_bus_error* error);
  // The pod properties this adds: Network, Address, Address6, Mac, Ports.
  static int append_pod_property(sd_bus_message* reply, const pods::Manager& manager,
                                 const store::PodRecord& pod, std::string_view property);

  static const sd_bus_vtable network_vtable[];
};

}  // namespace confpod::bus
