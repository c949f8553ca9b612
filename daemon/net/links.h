// Network links of the host side of guest networking, over rtnetlink (libnl-route-3): the
// bridge of each network with its gateway addresses, and one persistent tap per running pod
// attached to it. Taps are made with the tun driver's ioctls (rtnetlink cannot create them)
// and persist, so a pod's QEMU keeps its link while confpodd restarts.
//
// Everything acts on the calling process's network namespace. Errors: net.link (a netlink
// or ioctl call failed; the message names the link, the operation and the kernel's reason),
// net.permission (no CAP_NET_ADMIN: bridge networking needs it; pods can use network "user").
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "daemon/net/address.h"

struct nl_sock;
struct rtnl_link;

namespace confpod::net {

// The alias (IFLA_IFALIAS) of every bridge confpodd creates, followed by the network's name.
inline constexpr std::string_view kBridgeAlias = "confpod network ";

struct NlSockFree {
  void operator()(nl_sock* sock) const;
};
using NlSockPtr = std::unique_ptr<nl_sock, NlSockFree>;

class Links {
 public:
  // A NETLINK_ROUTE socket.
  static Result<Links> open();

  // Creates the bridge if absent, marked as confpodd's (its alias, kBridgeAlias + network),
  // gives it `gateway4`/prefix (and `gateway6`/prefix), and brings it up. Existing addresses
  // are kept: a restart finds the bridge as it left it. An existing link is used only when it
  // is a bridge marked as ours, or an unmarked bridge with nothing but confpod taps on it and
  // the gateway address as its only IPv4 address (left by a confpodd that did not mark; it is
  // marked now); anything
  // else (eth0, lo, docker0, an administrator's bridge) is net.foreign_link, untouched.
  // Before addresses are added, net.route_conflict when the host already has an address in
  // `subnet` on another link or a route into it through another link.
  Status ensure_bridge(const std::string& name, const std::string& network, const Ipv4Net& subnet,
                       const std::optional<std::array<std::uint8_t, 16>>& gateway6,
                       unsigned prefix6);
  // Where the host already reaches (part of) `subnet` other than through `bridge`: "address
  // 10.89.0.7/24 on eth0" or "route 10.89.0.0/16 via eth1"; nullopt when nowhere.
  Result<std::optional<std::string>> subnet_in_use(const Ipv4Net& subnet,
                                                   const std::string& bridge);
  // Names of the links that hold an IPv6 route learned from a router advertisement.
  Result<std::vector<std::string>> links_with_ra_routes();
  // Whether `name` is a bridge confpodd marked as its own.
  bool is_our_bridge(const std::string& name);
  // Creates the persistent tap `name` if absent, attaches it to `bridge` and brings it up.
  Status ensure_tap(const std::string& name, const std::string& bridge);
  // Deletes the link; an absent link is fine.
  Status remove(const std::string& name);

  bool exists(const std::string& name);
  // The name of the bridge `name` is attached to ("" when none), nullopt when `name` is absent.
  std::optional<std::string> master_of(const std::string& name);
  // Whether the link is administratively up.
  bool is_up(const std::string& name);
  // Names of every link starting with `prefix`, sorted.
  Result<std::vector<std::string>> names_with_prefix(std::string_view prefix);

 private:
  explicit Links(NlSockPtr sock) : sock_(std::move(sock)) {}
  Result<int> ifindex_of(const std::string& name);
  Status check_adoptable(rtnl_link* link, const std::string& name, std::uint32_t gateway4);
  // ensure_bridge() once the link is there: subnet check, addresses, up and marked.
  Status configure_bridge(const std::string& name, const std::string& network,
                          const Ipv4Net& subnet,
                          const std::optional<std::array<std::uint8_t, 16>>& gateway6,
                          unsigned prefix6);
  Status set_up_and_master(const std::string& name, int master_ifindex);
  NlSockPtr sock_;
};

// Writes `value` to /proc/sys/<key> ("net/ipv4/ip_forward"; slashes, since interface names
// may hold dots), unless it already holds `value`. Network sysctls are per namespace. Error
// net.sysctl (names the sysctl an administrator can set instead).
Status write_sysctl(const std::string& key, const std::string& value);

// net.ipv6.conf.all.forwarding=1, which IPv6 pods need. Turning it on makes every interface
// with accept_ra=1 stop accepting router advertisements, so a host that takes its IPv6 route
// from RAs would lose it: when forwarding is off and an interface holds a route learned from
// an RA with accept_ra=1, nothing is written and the error (net.sysctl) names the interface
// and the fix (accept_ra=2 there, as libvirt asks too).
Status enable_ipv6_forwarding();

}  // namespace confpod::net
