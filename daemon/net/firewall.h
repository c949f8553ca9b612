// The nftables tables confpodd owns: `table inet confpod` (routing between pods, the host and
// the uplink) and `table bridge confpod` (what each pod's tap may put on its bridge), rebuilt
// whole from the daemon's state (networks, pods, published ports) and replaced in one atomic
// transaction through libnftables on every change. No other table is touched, and nothing is
// appended to: the tables are the pure function render_ruleset() of the model, so after a
// restart the daemon writes exactly the tables it had (docs/network.md explains each rule).
//
// inet confpod
//   prerouting/output (nat)  guests' gateway:kbs_port -> the KBS on the host (first, so no
//                            published port can take it); published ports: DNAT
//                            host_ip:host_port -> pod:guest_port
//   postrouting (nat)        masquerade pod egress (per network), host-local and hairpin
//                            clients of published ports
//   input (filter)           from a pod network only its own source addresses, and of those
//                            only the KBS, DNS on the gateway, neighbour discovery and ping of
//                            the IPv6 gateway; everything else addressed to the host is dropped
//   forward (filter)         into a pod network: replies, published ports, its own pods;
//                            out of it: the uplink when masquerading; nothing between networks
// bridge confpod
//   prerouting (filter)      per tap: only the pod's MAC, IPv4 address (IP and ARP) and IPv6
//                            addresses (its own and its link-local), only IPv4/ARP/IPv6 frames,
//                            no router advertisements or redirects, neighbour advertisements
//                            only for its own addresses: a pod cannot pose as another pod or
//                            as the gateway
//
// Errors: net.firewall (libnftables refused the ruleset; the message has nft's error text),
// net.permission (no CAP_NET_ADMIN).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "daemon/net/address.h"

struct nft_ctx;

namespace confpod::net {

inline constexpr const char* kTableFamily = "inet";
inline constexpr const char* kBridgeTableFamily = "bridge";
inline constexpr const char* kTableName = "confpod";

struct FirewallNetwork {
  std::string bridge;
  Ipv4Net subnet;
  std::optional<Ipv6Net> subnet6;
  bool masquerade = true;
  bool operator==(const FirewallNetwork&) const = default;
};

struct PublishedPort {
  std::string protocol = "tcp";  // tcp | udp
  std::uint32_t host_ip = 0;     // 0: every local address of the host
  std::uint16_t host_port = 0;
  std::uint32_t pod_address = 0;  // the pod's IPv4 address
  std::uint16_t guest_port = 0;
  bool operator==(const PublishedPort&) const = default;
};

// Where guests' KBS traffic to their gateway goes: the KBS's own listen address.
struct KbsForward {
  std::uint16_t guest_port = 0;  // the port guests use on their gateway (the listen port)
  std::uint32_t address = 0;     // the KBS's address on the host (127.0.0.1 for a wildcard)
  std::uint16_t port = 0;
  bool operator==(const KbsForward&) const = default;
};

// A pod on a bridge network: what its tap may send.
struct FirewallPod {
  std::string tap;
  std::array<std::uint8_t, 6> mac{};
  std::uint32_t address = 0;
  std::optional<std::array<std::uint8_t, 16>> address6;  // only when its network has subnet6
  bool operator==(const FirewallPod&) const = default;
};

struct FirewallModel {
  std::vector<FirewallNetwork> networks;  // networks with pods
  std::vector<FirewallPod> pods;
  std::vector<PublishedPort> ports;
  std::optional<KbsForward> kbs;
  bool empty() const { return networks.empty() && ports.empty(); }
};

// Both tables as nft text, deterministic: networks by bridge name, pods by tap, ports by
// (protocol, port, host_ip). Ends with a newline.
std::string render_ruleset(const FirewallModel& model);

class Firewall {
 public:
  static Result<Firewall> open();
  Firewall(Firewall&&) noexcept;
  Firewall& operator=(Firewall&&) noexcept;
  ~Firewall();

  // Replaces both tables with render_ruleset(model) in one transaction (an empty model
  // deletes them). On failure the previous tables stay as they were.
  Status apply(const FirewallModel& model);
  // Deletes both tables; absent tables are fine.
  Status remove();
  // Our tables as nft lists them (inet, then bridge); nullopt when neither is there.
  Result<std::optional<std::string>> current();

 private:
  struct CtxFree {
    void operator()(nft_ctx* ctx) const;
  };
  explicit Firewall(std::unique_ptr<nft_ctx, CtxFree> ctx) : ctx_(std::move(ctx)) {}
  Result<std::string> run(const std::string& commands);
  std::unique_ptr<nft_ctx, CtxFree> ctx_;
};

// A NETLINK_NETFILTER socket subscribed to nftables change notifications: readable whenever
// a table in this network namespace changes (ours included), so the daemon can check its
// tables at once instead of failing open until its next change after `nft flush ruleset` or
// a firewall service reload. Needs CAP_NET_ADMIN.
class NftMonitor {
 public:
  static Result<NftMonitor> open();
  int fd() const { return fd_.get(); }
  // Reads every pending notification; true when there was at least one.
  bool drain();

 private:
  explicit NftMonitor(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace confpod::net
