// The D-Bus API of confpodd (docs/dbus-api.md): org.confpod1.Manager at /org/confpod1, one
// org.confpod1.Pod object per pod at /org/confpod1/pod/<escaped name> (a fallback vtable with
// a node enumerator, as systemd-machined serves machines), and
// org.freedesktop.DBus.ObjectManager at /org/confpod1.
//
// The service is a pods::Listener: the Manager tells it about changes after they are in the
// store, and it turns them into PodNew / PodRemoved / InterfacesAdded / InterfacesRemoved /
// PropertiesChanged. Every method that changes something goes through the Authorizer first.
#pragma once

#include <systemd/sd-bus.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "attest/base/result.h"
#include "daemon/bus/auth.h"
#include "daemon/bus/names.h"
#include "daemon/bus/networks.h"
#include "daemon/pods/manager.h"

namespace confpod::bus {

// <prefix>/<sd_bus_path_encode(name)>, and the name back from such a path ("" when `path` is
// not one).
std::string object_path(const char* prefix, const std::string& name);
std::string name_in_path(const char* path, const char* prefix);

// /org/confpod1/pod/<sd_bus_path_encode(name)>
std::string pod_object_path(const std::string& name);

class BusService : public pods::Listener {
 public:
  // Registers the objects on `bus` (does not request the name). `bus` and `manager` must
  // outlive the service. `on_change` (optional) runs after every pod change (status line).
  static Result<std::unique_ptr<BusService>> create(sd_bus* bus, pods::Manager& manager,
                                                    AuthPolicy auth,
                                                    std::function<void()> on_change = {});
  ~BusService() override;
  BusService(const BusService&) = delete;
  BusService& operator=(const BusService&) = delete;

  void pod_added(const store::PodRecord& pod) override;
  void pod_changed(const store::PodRecord& pod, unsigned changes) override;
  void pod_removed(const store::PodRecord& pod) override;

 private:
  struct Handlers;
  BusService(sd_bus* bus, pods::Manager& manager, AuthPolicy auth, std::function<void()> on_change);

  // pod_object_path(name), remembered while the pod exists: ListPods names every pod's path.
  const std::string& pod_path(const std::string& name);

  sd_bus* bus_;
  pods::Manager& manager_;
  std::unordered_map<std::string, std::string> pod_paths_;
  Authorizer auth_;
  std::function<void()> on_change_;
  NetworkHandlers networks_;  // the network methods and objects (networks.h)
  struct SlotUnref {
    void operator()(sd_bus_slot* slot) const { sd_bus_slot_unref(slot); }
  };
  std::vector<std::unique_ptr<sd_bus_slot, SlotUnref>> slots_;
};

}  // namespace confpod::bus
