#include "daemon/ctl/networks.h"

#include <cstdio>

#include "daemon/ctl/client.h"
#include "daemon/ctl/format.h"
#include "daemon/ctl/verify.h"

namespace confpod::ctl {

int network_list(const BusArgs& bus, bool json, std::ostream& out, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto networks = client->list_networks();
  if (!networks.ok()) return fail(networks.error(), err);
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::size_t> pods;
  for (const NetworkSummary& n : *networks) {
    auto properties = client->properties(n.path, kNetworkInterface);
    if (!properties.ok()) return fail(properties.error(), err);
    const auto& list = (*properties)["Pods"];
    pods.push_back(list.is_array() ? list.size() : 0);
    rows.push_back(
        {{"name", n.name}, {"bridge", n.bridge}, {"subnet", n.subnet}, {"pods", pods.back()}});
  }
  if (json) {
    out << rows.dump(2) << "\n";
    return kExitOk;
  }
  char line[160];
  std::snprintf(line, sizeof line, "%-20s %-15s %-18s %s\n", "NAME", "BRIDGE", "SUBNET", "PODS");
  out << line;
  for (std::size_t i = 0; i < networks->size(); ++i) {
    const NetworkSummary& n = (*networks)[i];
    std::snprintf(line, sizeof line, "%-20s %-15s %-18s %zu\n", one_line(n.name).c_str(),
                  one_line(n.bridge).c_str(), one_line(n.subnet).c_str(), pods[i]);
    out << line;
  }
  return kExitOk;
}

int network_inspect(const BusArgs& bus, const std::string& name, std::ostream& out,
                    std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto path = client->get_network(name);
  if (!path.ok()) return fail(path.error(), err);
  auto properties = client->properties(*path, kNetworkInterface);
  if (!properties.ok()) return fail(properties.error(), err);
  nlohmann::json j = *properties;
  j["Path"] = *path;
  out << j.dump(2) << "\n";
  return kExitOk;
}

int network_create(const BusArgs& bus, const NetworkCreateArgs& args, std::ostream& out,
                   std::ostream& err) {
  NetworkArgs call;
  call.name = args.name;
  call.bridge = args.bridge.empty() ? "cp-" + args.name : args.bridge;
  if (args.bridge.empty() && call.bridge.size() > 15) {
    err << "confpodctl: network name \"" << one_line(args.name)
        << "\" is too long to name its bridge: give one with --bridge (at most 15 characters)\n";
    return kExitUsage;
  }
  call.subnet = args.subnet;
  call.subnet6 = args.subnet6;
  call.masquerade = !args.no_masquerade;
  call.dns = args.dns;
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto path = client->create_network(call);
  if (!path.ok()) return fail(path.error(), err);
  out << args.name << "\n";
  return kExitOk;
}

int network_remove(const BusArgs& bus, const std::string& name, std::ostream& out,
                   std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  Status removed = client->remove_network(name);
  if (!removed.ok()) return fail(removed.error(), err);
  out << name << "\n";
  return kExitOk;
}

int pod_ports(const BusArgs& bus, const std::string& pod, std::ostream& out, std::ostream& err) {
  auto client = connect(bus);
  if (!client.ok()) return fail(client.error(), err);
  auto path = client->get_pod(pod);
  if (!path.ok()) return fail(path.error(), err);
  auto properties = client->pod_properties(*path);
  if (!properties.ok()) return fail(properties.error(), err);
  // As `podman port`: guest side first.
  for (const auto& p : (*properties)["Ports"]) {
    if (!p.is_array() || p.size() != 4) continue;
    out << p[3].get<unsigned>() << "/" << p[2].get<std::string>() << " -> "
        << p[0].get<std::string>() << ":" << p[1].get<unsigned>() << "\n";
  }
  return kExitOk;
}

}  // namespace confpod::ctl
