// The guest's network, configured from init-data with the classic ioctls (no netlink, no
// tools): loopback up, the interface's IPv4 address and netmask, the interface up, and a
// default route through the gateway.
//
// Errors: "agent.network" (bad address, prefix or gateway; an ioctl that failed, named).
#pragma once

#include <cstdint>
#include <string>

#include "attest/base/result.h"

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

}  // namespace confpod::guest::agent
