// The confpodctl verbs for guest networks (docs/network.md, docs/cli.md):
//   network ls [--json]          ListNetworks: NAME BRIDGE SUBNET POD-COUNT
//   network inspect NAME         every property of the network as JSON
//   network create NAME --subnet CIDR [--bridge IF] [--subnet6 CIDR] [--no-masquerade]
//                  [--dns ADDR]...
//   network rm NAME
//   port POD                     the pod's published ports, "80/tcp -> 0.0.0.0:8080"
// Exit codes as the pod verbs (pods.h).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "daemon/ctl/pods.h"

namespace confpod::ctl {

struct NetworkCreateArgs {
  std::string name;
  std::string bridge;  // empty: "cp-" + name (when that fits an interface name)
  std::string subnet;
  std::string subnet6;
  bool no_masquerade = false;
  std::vector<std::string> dns;
};

int network_list(const BusArgs& bus, bool json, std::ostream& out, std::ostream& err);
int network_inspect(const BusArgs& bus, const std::string& name, std::ostream& out,
                    std::ostream& err);
int network_create(const BusArgs& bus, const NetworkCreateArgs& args, std::ostream& out,
                   std::ostream& err);
int network_remove(const BusArgs& bus, const std::string& name, std::ostream& out,
                   std::ostream& err);
int pod_ports(const BusArgs& bus, const std::string& pod, std::ostream& out, std::ostream& err);

}  // namespace confpod::ctl
