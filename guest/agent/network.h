// The guest's network, configured from init-data with the classic ioctls (no netlink, no
// tools): loopback up, the interface found by its MAC and named as init-data says, its IPv4
// address and netmask (and IPv6 address), up, and default routes through the gateways.
// The network itself is the host's and untrusted (docs/network.md): what is attested is only
// which addresses the pod uses.
//
// Errors: "agent.network" (bad address, prefix or gateway; an ioctl that failed, named).
#pragma once

#include <cstdint>
#include <string>

#include "attest/base/result.h"
#include "guest/protocol/init_data.h"

namespace confpod::guest::agent {

struct Ipv4Cidr {
  std::uint32_t address = 0;  // network byte order
  std::uint32_t netmask = 0;  // network byte order
};

// "10.0.2.15/24" -> address + netmask. The prefix is required (0..32).
Result<Ipv4Cidr> parse_ipv4_cidr(const std::string& text);

// Brings lo up, sets `address` ("a.b.c.d/n") on `interface` and brings it up, then adds a
// default route via `gateway` when it is not empty.
Status configure_network(const std::string& interface, const std::string& address,
                         const std::string& gateway);

// The name of the interface whose MAC is `mac` ("02:cf:0a:59:00:02"); agent.network when none.
Result<std::string> interface_with_mac(const std::string& mac);

// Everything init-data's network says: the interface with `mac` (when set) renamed to
// `interface`, IPv4 as configure_network, and `address6` ("fd00::2/64") with a default route
// via `gateway6` when set.
Status configure_guest_network(const InitNetwork& network);

// /etc/hosts (localhost, and `hostname` on the pod's address) and /etc/resolv.conf (the
// nameservers, when there are any) inside a container's root, replacing what the image has.
// Paths resolve inside `rootfs` (a symlink in the image cannot point the write elsewhere).
Status write_name_files(const std::string& rootfs, const InitNetwork& network,
                        const std::string& hostname);

}  // namespace confpod::guest::agent
