#include "daemon/net/network_def.h"

namespace confpod::net {

Result<Network> validate_network(const NetworkDef& def) {
  if (!is_valid_network_name(def.name) || def.name == kModeUser || def.name == kModeNone)
    return make_error("net.invalid",
                      "network name \"" + def.name.substr(0, 64) +
                          "\" must be 1..32 of [A-Za-z0-9_.-] starting with a letter or digit, "
                          "and not \"user\" or \"none\"");
  const std::string where = "network " + def.name + ": ";
  if (!is_valid_ifname(def.bridge))
    return make_error("net.invalid", where + "bridge \"" + def.bridge.substr(0, 64) +
                                         "\" must be an interface name of 1..15 [A-Za-z0-9_.-]");
  if (def.bridge.starts_with(kTapPrefix))
    return make_error("net.invalid", where + "bridge \"" + def.bridge +
                                         "\" must not start with \"" + std::string(kTapPrefix) +
                                         "\" (pod taps use it)");
  Network net;
  net.def = def;
  auto subnet = parse_subnet4(def.subnet);
  if (!subnet.ok()) return make_error("net.invalid", where + subnet.error().message);
  net.subnet = *subnet;
  // Addresses that are never routed between hosts: a pod network there would shadow the
  // host's own loopback, link-local or multicast traffic.
  struct Reserved4 {
    Ipv4Net net;
    const char* what;
  };
  static const Reserved4 kReserved4[] = {{{0x00000000u, 8}, "\"this network\""},
                                         {{0x7f000000u, 8}, "loopback"},
                                         {{0xa9fe0000u, 16}, "link-local"},
                                         {{0xe0000000u, 4}, "multicast"},
                                         {{0xf0000000u, 4}, "reserved"}};
  for (const Reserved4& r : kReserved4)
    if (overlaps(*subnet, r.net))
      return make_error("net.invalid", where + "subnet " + format(*subnet) + " is in the " +
                                           r.what + " range " + format_ipv4(r.net.address) + "/" +
                                           std::to_string(r.net.prefix));
  if (!def.subnet6.empty()) {
    auto subnet6 = parse_subnet6(def.subnet6);
    if (!subnet6.ok()) return make_error("net.invalid", where + subnet6.error().message);
    static const std::pair<const char*, const char*> kReserved6[] = {
        {"::/8", "loopback, unspecified and IPv4-mapped"},
        {"fe80::/10", "link-local"},
        {"ff00::/8", "multicast"}};
    for (const auto& [range, what] : kReserved6) {
      const auto text = std::string_view(range);
      const auto slash = text.find('/');
      Ipv6Net reserved{*parse_ipv6(text.substr(0, slash)),
                       static_cast<unsigned>(std::stoul(std::string(text.substr(slash + 1))))};
      if (overlaps(*subnet6, reserved))
        return make_error("net.invalid", where + "subnet6 " + format(*subnet6) + " is in the " +
                                             what + " range " + range);
    }
    // Pod IPv6 addresses mirror the IPv4 host offset: subnet6 needs as many host bits.
    if (128 - subnet6->prefix < 32 - subnet->prefix)
      return make_error("net.invalid", where + "subnet6 " + def.subnet6 +
                                           " has fewer host bits than subnet " + def.subnet);
    net.subnet6 = *subnet6;
    net.def.subnet6 = format(*subnet6);
  }
  net.def.subnet = format(*subnet);
  if (def.dns.size() > 3)
    return make_error("net.invalid", where + "at most 3 dns servers (resolv.conf reads no more)");
  for (const std::string& server : def.dns)
    if (!parse_ipv4(server) && !parse_ipv6(server))
      return make_error("net.invalid",
                        where + "dns server \"" + server.substr(0, 64) + "\" is not an IP address");
  return net;
}

Status check_compatible(const Network& candidate, const std::vector<Network>& existing) {
  for (const Network& other : existing) {
    if (other.def.name == candidate.def.name)
      return make_error("net.exists", "a network named " + candidate.def.name + " already exists");
    if (other.def.bridge == candidate.def.bridge)
      return make_error("net.exists", "bridge " + candidate.def.bridge +
                                          " already belongs to network " + other.def.name);
    if (overlaps(other.subnet, candidate.subnet))
      return make_error("net.overlap", "subnet " + candidate.def.subnet + " of network " +
                                           candidate.def.name + " overlaps " + other.def.subnet +
                                           " of network " + other.def.name);
    if (other.subnet6 && candidate.subnet6 && overlaps(*other.subnet6, *candidate.subnet6))
      return make_error("net.overlap", "subnet6 " + candidate.def.subnet6 + " of network " +
                                           candidate.def.name + " overlaps " + other.def.subnet6 +
                                           " of network " + other.def.name);
  }
  return ok_status();
}

std::string dns_to_text(const std::vector<std::string>& dns) {
  std::string out;
  for (const std::string& s : dns) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

std::vector<std::string> dns_from_text(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace confpod::net
