// Addresses of guest networks: IPv4/IPv6 subnets, the gateway and pod addresses in them, and
// the names and MACs derived from a pod's address. Pure functions, no kernel access.
//
// A network's subnet gives the host bridge the first host address (the pods' gateway) and
// hands the others to pods, lowest free first. Everything a pod gets on the wire follows
// from its IPv4 address, so it never changes while the pod exists:
//   tap   "cpt" + 8 hex digits of the address   (cpt0a590002 for 10.89.0.2)
//   MAC   02:cf + the 4 address bytes           (02:cf:0a:59:00:02, locally administered)
//   IPv6  subnet6 prefix + the IPv4 host offset (fd00:89::2 for 10.89.0.2 in fd00:89::/64)
// Subnets of different networks never overlap (checked where networks are declared), so
// addresses, taps and MACs are unique on the host.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "attest/base/result.h"

namespace confpod::net {

struct Ipv4Net {
  std::uint32_t address = 0;  // host byte order; host bits zero
  unsigned prefix = 0;
  std::uint32_t mask() const { return prefix == 0 ? 0 : ~0u << (32 - prefix); }
  bool contains(std::uint32_t a) const { return (a & mask()) == address; }
  std::uint32_t broadcast() const { return address | ~mask(); }
  bool operator==(const Ipv4Net&) const = default;
};

struct Ipv6Net {
  std::array<std::uint8_t, 16> address{};  // host bits zero
  unsigned prefix = 0;
  bool operator==(const Ipv6Net&) const = default;
};

std::optional<std::uint32_t> parse_ipv4(std::string_view text);  // dotted quad
std::string format_ipv4(std::uint32_t address);
std::optional<std::array<std::uint8_t, 16>> parse_ipv6(std::string_view text);
std::string format_ipv6(const std::array<std::uint8_t, 16>& address);

// "10.89.0.0/24": prefix 8..30, no host bits. Errors net.invalid naming the problem.
Result<Ipv4Net> parse_subnet4(std::string_view text);
// "fd00:89::/64": prefix 64..120, no host bits.
Result<Ipv6Net> parse_subnet6(std::string_view text);
std::string format(const Ipv4Net& net);
std::string format(const Ipv6Net& net);

bool overlaps(const Ipv4Net& a, const Ipv4Net& b);
bool overlaps(const Ipv6Net& a, const Ipv6Net& b);

// The bridge's address: the first host address of the subnet.
std::uint32_t gateway4(const Ipv4Net& net);
std::array<std::uint8_t, 16> gateway6(const Ipv6Net& net);

// The lowest address after the gateway that is neither in `taken` nor the broadcast address;
// nullopt when the subnet is full.
std::optional<std::uint32_t> allocate4(const Ipv4Net& net, const std::set<std::uint32_t>& taken);

// A pod's IPv6 address: subnet6 + (address4 - subnet4 network address).
std::array<std::uint8_t, 16> address6_for(const Ipv4Net& net4, const Ipv6Net& net6,
                                          std::uint32_t address4);

std::string tap_name_for(std::uint32_t address4);  // "cpt0a590002"
std::string mac_for(std::uint32_t address4);       // "02:cf:0a:59:00:02"
inline constexpr std::string_view kTapPrefix = "cpt";
// "02:cf:0a:59:00:02" (six hex pairs, either case); nullopt otherwise.
std::optional<std::array<std::uint8_t, 6>> parse_mac(std::string_view text);
// The IPv6 link-local address a Linux guest gives itself on a NIC with this MAC (modified
// EUI-64, the kernel's default address generation): fe80::cf:aff:fe59:2 for the MAC above.
std::array<std::uint8_t, 16> link_local_for(const std::array<std::uint8_t, 6>& mac);

// A network name: 1..32 of [A-Za-z0-9_.-], starting with a letter or digit (names go into
// D-Bus object paths, escaped, and into messages; "user" and "none" are pod network modes).
bool is_valid_network_name(std::string_view name);
// An interface name for a bridge: 1..15 of [A-Za-z0-9_.-], starting with a letter or digit.
bool is_valid_ifname(std::string_view name);

}  // namespace confpod::net
