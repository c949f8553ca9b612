#include "daemon/net/firewall.h"

#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <tuple>

namespace confpod::net {
namespace {

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

std::string dnat_rule(const PublishedPort& p) {
  std::string match =
      p.host_ip == 0 ? "fib daddr type local" : "ip daddr " + format_ipv4(p.host_ip);
  return match + " " + p.protocol + " dport " + std::to_string(p.host_port) + " dnat ip to " +
         format_ipv4(p.pod_address) + ":" + std::to_string(p.guest_port);
}

std::string format_mac(const std::array<std::uint8_t, 6>& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

std::string hex128(const std::array<std::uint8_t, 16>& bytes) {
  std::string out = "0x";
  char buf[3];
  for (std::uint8_t b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    out += buf;
  }
  return out;
}

void chain(std::string& out, const std::string& name, const std::string& hook,
           const std::vector<std::string>& rules) {
  out += "\tchain " + name + " {\n\t\t" + hook + "\n";
  for (const std::string& r : rules) out += "\t\t" + r + "\n";
  out += "\t}\n";
}

}  // namespace

std::string render_ruleset(const FirewallModel& model) {
  std::vector<FirewallNetwork> nets = model.networks;
  std::sort(nets.begin(), nets.end(),
            [](const FirewallNetwork& a, const FirewallNetwork& b) { return a.bridge < b.bridge; });
  std::vector<FirewallPod> pods = model.pods;
  std::sort(pods.begin(), pods.end(),
            [](const FirewallPod& a, const FirewallPod& b) { return a.tap < b.tap; });
  std::vector<PublishedPort> ports = model.ports;
  std::sort(ports.begin(), ports.end(), [](const PublishedPort& a, const PublishedPort& b) {
    return std::tie(a.protocol, a.host_port, a.host_ip) <
           std::tie(b.protocol, b.host_port, b.host_ip);
  });

  std::vector<std::string> pre, output, post, input, forward;
  // The KBS forward first: nothing published can capture the guests' way to their secrets.
  if (model.kbs) {
    for (const FirewallNetwork& n : nets) {
      pre.push_back("iifname " + quoted(n.bridge) + " ip daddr " + format_ipv4(gateway4(n.subnet)) +
                    " tcp dport " + std::to_string(model.kbs->guest_port) + " dnat ip to " +
                    format_ipv4(model.kbs->address) + ":" + std::to_string(model.kbs->port));
    }
  }
  // Pods' DNS on their gateway is the host's resolver: no published port takes it.
  for (const FirewallNetwork& n : nets) {
    pre.push_back("iifname " + quoted(n.bridge) + " ip daddr " + format_ipv4(gateway4(n.subnet)) +
                  " meta l4proto { tcp, udp } th dport 53 accept");
  }
  for (const PublishedPort& p : ports) {
    pre.push_back(dnat_rule(p));
    output.push_back(dnat_rule(p));
  }
  for (const FirewallNetwork& n : nets) {
    const std::string b = quoted(n.bridge);
    const std::string gw = format_ipv4(gateway4(n.subnet));
    const std::string s = format(n.subnet);
    // Host-local clients of a published port (their source is 127.0.0.1, which a pod cannot
    // answer) and pods reaching a published port of their own network through the host.
    post.push_back("ip saddr 127.0.0.0/8 oifname " + b + " masquerade");
    post.push_back("iifname " + b + " oifname " + b + " ct status dnat masquerade");
    if (n.masquerade) {
      post.push_back("ip saddr " + s + " ip daddr != " + s + " oifname != " + b + " masquerade");
      if (n.subnet6) {
        const std::string s6 = format(*n.subnet6);
        post.push_back("ip6 saddr " + s6 + " ip6 daddr != " + s6 + " oifname != " + b +
                       " masquerade");
      }
    }
    // Only the network's own source addresses (the bridge table pins each tap to its own).
    input.push_back("iifname " + b + " ip saddr != " + s + " drop");
    if (n.subnet6) {
      input.push_back("iifname " + b + " ip6 saddr != { " + format(*n.subnet6) +
                      ", fe80::/10, :: } drop");
    } else {
      input.push_back("iifname " + b + " meta nfproto ipv6 drop");
    }
    input.push_back("iifname " + b + " ct state established,related accept");
    if (model.kbs) {
      input.push_back("iifname " + b + " ct status dnat ip daddr " +
                      format_ipv4(model.kbs->address) + " tcp dport " +
                      std::to_string(model.kbs->port) + " accept");
    }
    input.push_back("iifname " + b + " ip daddr " + gw +
                    " meta l4proto { tcp, udp } th dport 53 accept");
    if (n.subnet6) {
      const std::string gw6 = format_ipv6(gateway6(*n.subnet6));
      input.push_back("iifname " + b + " ip6 daddr " + gw6 +
                      " meta l4proto { tcp, udp } th dport 53 accept");
      // Neighbour discovery with the gateway (IPv6 does not work without it), and ping.
      input.push_back("iifname " + b +
                      " icmpv6 type { nd-router-solicit, nd-neighbor-solicit, "
                      "nd-neighbor-advert } accept");
      input.push_back("iifname " + b + " ip6 daddr " + gw6 + " icmpv6 type echo-request accept");
    }
    input.push_back("iifname " + b + " drop");
  }
  // Spoofed sources first; then into a pod network (for every network), then out of it: a
  // packet from network A to network B meets B's drop before A's egress accept.
  for (const FirewallNetwork& n : nets) {
    const std::string b = quoted(n.bridge);
    forward.push_back("iifname " + b + " ip saddr != " + format(n.subnet) + " drop");
    if (n.subnet6) {
      forward.push_back("iifname " + b + " ip6 saddr != " + format(*n.subnet6) + " drop");
    } else {
      forward.push_back("iifname " + b + " meta nfproto ipv6 drop");
    }
  }
  for (const FirewallNetwork& n : nets) {
    const std::string b = quoted(n.bridge);
    forward.push_back("oifname " + b + " ct state established,related accept");
    forward.push_back("oifname " + b + " ct status dnat accept");
    forward.push_back("oifname " + b + " iifname " + b + " accept");
    forward.push_back("oifname " + b + " drop");
  }
  for (const FirewallNetwork& n : nets) {
    // Replies of pods (to clients of their published ports) leave even without masquerade.
    forward.push_back("iifname " + quoted(n.bridge) + " ct state established,related accept");
    forward.push_back("iifname " + quoted(n.bridge) + (n.masquerade ? " accept" : " drop"));
  }

  std::string out = std::string("table ") + kTableFamily + " " + kTableName + " {\n";
  chain(out, "prerouting", "type nat hook prerouting priority dstnat; policy accept;", pre);
  chain(out, "output", "type nat hook output priority -100; policy accept;", output);
  chain(out, "postrouting", "type nat hook postrouting priority srcnat; policy accept;", post);
  chain(out, "input", "type filter hook input priority filter; policy accept;", input);
  chain(out, "forward", "type filter hook forward priority filter; policy accept;", forward);
  out += "}\n";

  std::vector<std::string> ports_rules;
  for (const FirewallPod& p : pods) {
    const std::string t = "iifname " + quoted(p.tap) + " ";
    const std::string mac = format_mac(p.mac);
    const std::string a = format_ipv4(p.address);
    ports_rules.push_back(t + "ether saddr != " + mac + " drop");
    ports_rules.push_back(t + "ether type != { ip, arp" + (p.address6 ? ", ip6" : "") + " } drop");
    ports_rules.push_back(t + "ip saddr != " + a + " drop");
    ports_rules.push_back(t + "arp saddr ether != " + mac + " drop");
    ports_rules.push_back(t + "arp saddr ip != { " + a + ", 0.0.0.0 } drop");
    if (p.address6) {
      const auto link_local = link_local_for(p.mac);
      ports_rules.push_back(t + "ip6 saddr != { " + format_ipv6(*p.address6) + ", " +
                            format_ipv6(link_local) + ", :: } drop");
      ports_rules.push_back(t + "icmpv6 type { nd-router-advert, nd-redirect } drop");
      // The target of a neighbour advertisement (after type, code, checksum and flags).
      ports_rules.push_back(t + "icmpv6 type nd-neighbor-advert @th,64,128 != " +
                            hex128(*p.address6) + " @th,64,128 != " + hex128(link_local) + " drop");
    }
  }
  if (!ports_rules.empty()) {
    out += std::string("table ") + kBridgeTableFamily + " " + kTableName + " {\n";
    chain(out, "prerouting", "type filter hook prerouting priority filter; policy accept;",
          ports_rules);
    out += "}\n";
  }
  return out;
}

void Firewall::CtxFree::operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }

Result<Firewall> Firewall::open() {
  std::unique_ptr<nft_ctx, CtxFree> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return make_error("net.firewall", "nft_ctx_new failed");
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  return Firewall(std::move(ctx));
}

Firewall::Firewall(Firewall&&) noexcept = default;
Firewall& Firewall::operator=(Firewall&&) noexcept = default;
Firewall::~Firewall() = default;

Result<std::string> Firewall::run(const std::string& commands) {
  int rc = nft_run_cmd_from_buffer(ctx_.get(), commands.c_str());
  std::string output = nft_ctx_get_output_buffer(ctx_.get());
  std::string errors = nft_ctx_get_error_buffer(ctx_.get());
  if (rc != 0) {
    if (errors.find("Operation not permitted") != std::string::npos)
      return make_error("net.permission",
                        "nftables: operation not permitted (bridge networking needs "
                        "CAP_NET_ADMIN)");
    return make_error("net.firewall", "nftables refused the change: " +
                                          (errors.empty() ? std::string("(no message)") : errors));
  }
  return output;
}

namespace {

// "add" makes each delete succeed when the table is not there yet.
std::string delete_our_tables() {
  std::string out;
  for (const char* family : {kTableFamily, kBridgeTableFamily}) {
    const std::string table = std::string(family) + " " + kTableName;
    out += "add table " + table + "\ndelete table " + table + "\n";
  }
  return out;
}

}  // namespace

Status Firewall::apply(const FirewallModel& model) {
  if (model.empty()) return remove();
  // One transaction: if the new tables are refused, the old ones stay.
  auto done = run(delete_our_tables() + render_ruleset(model));
  return done.ok() ? ok_status() : done.take_error();
}

Status Firewall::remove() {
  auto done = run(delete_our_tables());
  return done.ok() ? ok_status() : done.take_error();
}

Result<std::optional<std::string>> Firewall::current() {
  auto listed = run("list tables");
  if (!listed.ok()) return listed.take_error();
  std::string out;
  for (const char* family : {kTableFamily, kBridgeTableFamily}) {
    const std::string table = std::string(family) + " " + kTableName;
    if (listed->find("table " + table + "\n") == std::string::npos) continue;
    CONFPOD_ASSIGN_OR_RETURN(std::string text, run("list table " + table));
    out += text;
  }
  if (out.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(out));
}

Result<NftMonitor> NftMonitor::open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER));
  if (!fd)
    return make_error("net.firewall", std::string("netlink socket: ") + std::strerror(errno));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = 1u << (NFNLGRP_NFTABLES - 1);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    return make_error(err == EPERM ? "net.permission" : "net.firewall",
                      std::string("subscribe to nftables changes: ") + std::strerror(err));
  }
  return NftMonitor(std::move(fd));
}

bool NftMonitor::drain() {
  bool any = false;
  char buf[8192];
  while (true) {
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      any = true;
      continue;
    }
    // ENOBUFS: notifications were lost, which still means something changed.
    if (n < 0 && errno == ENOBUFS) {
      any = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return any;
  }
}

}  // namespace confpod::net
