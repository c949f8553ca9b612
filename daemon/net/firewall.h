// The nftables table confpodd owns: `table inet confpod`, rebuilt whole from the daemon's
// state (networks, pod addresses, published ports) and replaced in one atomic transaction
// through libnftables on every change. No other table is touched, and nothing is appended
// to: the table is the pure function render_ruleset() of the model, so after a restart the
// daemon writes exactly the table it had (docs/network.md explains each rule).
//
//   prerouting/output (nat)  published ports: DNAT host_ip:host_port -> pod:guest_port;
//                            guests' gateway:kbs_port -> the KBS on the host
//   postrouting (nat)        masquerade pod egress (per network), host-local and hairpin
//                            clients of published ports
//   input (filter)           from a pod network only the KBS, DNS on the gateway, ICMPv6;
//                            everything else addressed to the host is dropped
//   forward (filter)         into a pod network: replies, published ports, its own pods;
//                            out of it: the uplink when masquerading; nothing between networks
//
// Errors: net.firewall (libnftables refused the ruleset; the message has nft's error text),
// net.permission (no CAP_NET_ADMIN).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "daemon/net/address.h"

struct nft_ctx;

namespace confpod::net {

inline constexpr const char* kTableFamily = "inet";
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

struct FirewallModel {
  std::vector<FirewallNetwork> networks;  // only networks whose bridge exists
  std::vector<PublishedPort> ports;
  std::optional<KbsForward> kbs;
  bool empty() const { return networks.empty() && ports.empty(); }
};

// The table as nft text, deterministic: networks by bridge name, ports by (protocol, port,
// host_ip). Ends with a newline.
std::string render_ruleset(const FirewallModel& model);

class Firewall {
 public:
  static Result<Firewall> open();
  Firewall(Firewall&&) noexcept;
  Firewall& operator=(Firewall&&) noexcept;
  ~Firewall();

  // Replaces the table with render_ruleset(model) in one transaction (an empty model deletes
  // it). On failure the previous table stays as it was.
  Status apply(const FirewallModel& model);
  // Deletes the table; an absent table is fine.
  Status remove();
  // `nft list table inet confpod` as nft prints it; nullopt when there is no table.
  Result<std::optional<std::string>> current();

 private:
  struct CtxFree {
    void operator()(nft_ctx* ctx) const;
  };
  explicit Firewall(std::unique_ptr<nft_ctx, CtxFree> ctx) : ctx_(std::move(ctx)) {}
  Result<std::string> run(const std::string& commands);
  std::unique_ptr<nft_ctx, CtxFree> ctx_;
};

}  // namespace confpod::net
