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

namespace confpod::net {

struct NlSockFree {
  void operator()(nl_sock* sock) const;
};
using NlSockPtr = std::unique_ptr<nl_sock, NlSockFree>;

class Links {
 public:
  // A NETLINK_ROUTE socket.
  static Result<Links> open();

  // Creates the bridge if absent, gives it `gateway4`/prefix (and `gateway6`/prefix), and
  // brings it up. Existing addresses are kept: a restart finds the bridge as it left it.
  Status ensure_bridge(const std::string& name, std::uint32_t gateway4, unsigned prefix4,
                       const std::optional<std::array<std::uint8_t, 16>>& gateway6,
                       unsigned prefix6);
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
  Status set_up_and_master(const std::string& name, int master_ifindex);
  NlSockPtr sock_;
};

// Writes `value` to /proc/sys/<key> ("net/ipv4/ip_forward"; slashes, since interface names
// may hold dots), unless it already holds `value`. Network sysctls are per namespace. Error
// net.sysctl (names the sysctl an administrator can set instead).
Status write_sysctl(const std::string& key, const std::string& value);

}  // namespace confpod::net
