// Guest networks as declared: in confpod.toml ([network] and [[networks]]) or created over
// D-Bus (stored in SQLite). A network is a bridge on the host with an IPv4 subnet (optionally
// an IPv6 one); pods on it get an address from the subnet (daemon/net/address.h).
//
// Errors: net.invalid (a bad name, bridge, subnet or DNS address; the message names which),
// net.exists (the name or the bridge is taken), net.overlap (the subnet overlaps another
// network's).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "daemon/net/address.h"

namespace confpod::net {

// Pod network modes that are not networks: QEMU user-mode networking (unprivileged
// development) and no network interface at all.
inline constexpr std::string_view kModeUser = "user";
inline constexpr std::string_view kModeNone = "none";
// The network [network] in confpod.toml declares.
inline constexpr std::string_view kDefaultNetwork = "default";

struct NetworkDef {
  std::string name = std::string(kDefaultNetwork);
  std::string bridge = "confpod0";
  std::string subnet = "10.89.0.0/24";
  std::string subnet6;           // empty: IPv4 only
  bool masquerade = true;        // pods reach beyond the host (SNAT to the uplink's address)
  std::vector<std::string> dns;  // nameservers handed to the pods (IPv4 or IPv6 addresses)
  bool from_config = true;       // false: created over D-Bus (stored in SQLite, removable)
  bool operator==(const NetworkDef&) const = default;
};

// A NetworkDef whose subnets parsed: what the rest of daemon/net works with.
struct Network {
  NetworkDef def;
  Ipv4Net subnet;
  std::optional<Ipv6Net> subnet6;
  std::uint32_t gateway() const { return gateway4(subnet); }
};

// Checks every field; returns the parsed network. The message names the network and field.
Result<Network> validate_network(const NetworkDef& def);

// Whether `candidate` can join `existing`: a unique name and bridge, subnets that overlap
// none of theirs.
Status check_compatible(const Network& candidate, const std::vector<Network>& existing);

// The DNS list as one comma-separated string (the store column), and back.
std::string dns_to_text(const std::vector<std::string>& dns);
std::vector<std::string> dns_from_text(std::string_view text);

}  // namespace confpod::net
