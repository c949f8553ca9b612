// The D-Bus client of confpodd (org.confpod1 on the system bus), over sd-bus.
//
// Every call returns Result/Status. A failed call's Error has the D-Bus error name as its code
// ("org.confpod1.Error.NoSuchPod") and the daemon's message as its message; a failure on our
// side of the connection (no socket, authentication, connection lost) has code
// "ctl.connect". exit_code_for() turns either into confpodctl's exit code.
#pragma once

#include <systemd/sd-bus.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "daemon/bus/names.h"
#include "daemon/ctl/format.h"

namespace confpod::ctl {

using bus::kBrokerInterface;
using bus::kBusName;
using bus::kManagerInterface;
using bus::kManagerPath;
using bus::kNetworkInterface;
using bus::kPodInterface;

// CreateNetwork's arguments.
struct NetworkArgs {
  std::string name;
  std::string bridge;
  std::string subnet;
  std::string subnet6;
  bool masquerade = true;
  std::vector<std::string> dns;
};

// One row of ListNetworks.
struct NetworkSummary {
  std::string name, bridge, subnet, path;
};

// The code of errors that mean "could not reach the bus" rather than "the daemon said no".
inline constexpr const char* kConnectError = "ctl.connect";

struct ConnectOptions {
  // Empty: the system bus (sd_bus_open_system, which honours DBUS_SYSTEM_BUS_ADDRESS).
  std::string address;
  // Per call. Start and Stop reply only once the VM runs or has exited.
  std::chrono::seconds timeout{120};
  // Let polkit ask for a password (org.confpod1.manage is auth_admin_keep) when a person is
  // at the terminal.
  bool interactive_authorization = false;
};

// kExitUsage (2) when the daemon cannot be reached at all (ctl.connect, no owner of
// org.confpod1, activation failed, disconnected); kExitRejected (1) for every other D-Bus
// error, i.e. the daemon (or bus policy) refused the request.
int exit_code_for(const Error& error);

struct BusUnref {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};

class Client {
 public:
  static Result<Client> connect(const ConnectOptions& options);

  // CreatePod: the new pod's object path.
  Result<std::string> create_pod(std::string_view spec_toml);
  Status start_pod(const std::string& name);
  Status stop_pod(const std::string& name);
  Status kill_pod(const std::string& name);
  Status remove_pod(const std::string& name, bool force);
  // GetPod: the pod's object path.
  Result<std::string> get_pod(const std::string& name);
  Result<std::vector<PodSummary>> list_pods();
  Result<std::string> pod_log(const std::string& name, std::uint64_t max_bytes);
  // Properties.GetAll(org.confpod1.Pod) at `path`, each value converted to JSON by its D-Bus
  // type (integers stay integers of their signedness, arrays/structs become arrays, string
  // dictionaries objects).
  Result<nlohmann::json> pod_properties(const std::string& path);

  // Pod.Exec / Pod.Attach on the pod `name`: the session socket (docs/exec.md).
  Result<UniqueFd> exec(const std::string& name, const std::string& container,
                        const std::vector<std::string>& command, bool tty, unsigned rows,
                        unsigned cols);
  Result<UniqueFd> attach(const std::string& name, const std::string& container);

  // Properties.GetAll(`interface`) at `path`, converted as pod_properties.
  Result<nlohmann::json> properties(const std::string& path, const char* interface);

  // Networks: CreateNetwork (its object path), RemoveNetwork, GetNetwork, ListNetworks.
  Result<std::string> create_network(const NetworkArgs& args);
  Status remove_network(const std::string& name);
  Result<std::string> get_network(const std::string& name);
  Result<std::vector<NetworkSummary>> list_networks();

  // org.confpod1.Broker: SetResource, DeleteResource, ListResources.
  Status set_resource(const std::string& path, const std::vector<std::uint8_t>& value);
  Status delete_resource(const std::string& path);
  Result<std::vector<std::string>> list_resources();

  // org.confpod1.Broker: ImportCollateral, ListCollateral, RemoveCollateral.
  struct CollateralRow {
    std::string id, kind, key, subject, status, source;
    std::int64_t not_after = 0, imported_at = 0;
  };
  // Rows with id, kind, subject, status ("added" | "present") and not_after.
  Result<std::vector<CollateralRow>> import_collateral(const std::string& name,
                                                       const std::vector<std::uint8_t>& data);
  // Rows with everything but status.
  Result<std::vector<CollateralRow>> list_collateral();
  // The full id of what was removed.
  Result<std::string> remove_collateral(const std::string& id);

 private:
  explicit Client(std::unique_ptr<sd_bus, BusUnref> bus) : bus_(std::move(bus)) {}
  std::unique_ptr<sd_bus, BusUnref> bus_;
};

}  // namespace confpod::ctl
