#include "daemon/net/firewall.h"

#include <nftables/libnftables.h>

#include <algorithm>
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
  std::vector<PublishedPort> ports = model.ports;
  std::sort(ports.begin(), ports.end(), [](const PublishedPort& a, const PublishedPort& b) {
    return std::tie(a.protocol, a.host_port, a.host_ip) <
           std::tie(b.protocol, b.host_port, b.host_ip);
  });

  std::vector<std::string> pre, output, post, input, forward;
  for (const PublishedPort& p : ports) {
    pre.push_back(dnat_rule(p));
    output.push_back(dnat_rule(p));
  }
  for (const FirewallNetwork& n : nets) {
    const std::string b = quoted(n.bridge);
    const std::string gw = format_ipv4(gateway4(n.subnet));
    if (model.kbs) {
      pre.push_back("iifname " + b + " ip daddr " + gw + " tcp dport " +
                    std::to_string(model.kbs->guest_port) + " dnat ip to " +
                    format_ipv4(model.kbs->address) + ":" + std::to_string(model.kbs->port));
    }
    // Host-local clients of a published port (their source is 127.0.0.1, which a pod cannot
    // answer) and pods reaching a published port of their own network through the host.
    post.push_back("ip saddr 127.0.0.0/8 oifname " + b + " masquerade");
    post.push_back("iifname " + b + " oifname " + b + " ct status dnat masquerade");
    if (n.masquerade) {
      const std::string s = format(n.subnet);
      post.push_back("ip saddr " + s + " ip daddr != " + s + " oifname != " + b + " masquerade");
      if (n.subnet6) {
        const std::string s6 = format(*n.subnet6);
        post.push_back("ip6 saddr " + s6 + " ip6 daddr != " + s6 + " oifname != " + b +
                       " masquerade");
      }
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
      input.push_back("iifname " + b + " ip6 daddr " + format_ipv6(gateway6(*n.subnet6)) +
                      " meta l4proto { tcp, udp } th dport 53 accept");
      // Neighbour discovery with the gateway: IPv6 does not work without it.
      input.push_back("iifname " + b + " meta l4proto ipv6-icmp accept");
    }
    input.push_back("iifname " + b + " drop");
  }
  // Into a pod network first (for every network), then out of it: a packet from network A to
  // network B meets B's drop before A's egress accept.
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

Status Firewall::apply(const FirewallModel& model) {
  if (model.empty()) return remove();
  // "add" makes the delete succeed when there is no table yet; all three are one
  // transaction, so the old table stays if the new one is refused.
  const std::string table = std::string(kTableFamily) + " " + kTableName;
  auto done = run("add table " + table + "\ndelete table " + table + "\n" + render_ruleset(model));
  return done.ok() ? ok_status() : done.take_error();
}

Status Firewall::remove() {
  const std::string table = std::string(kTableFamily) + " " + kTableName;
  auto done = run("add table " + table + "\ndelete table " + table + "\n");
  return done.ok() ? ok_status() : done.take_error();
}

Result<std::optional<std::string>> Firewall::current() {
  auto listed = run("list tables");
  if (!listed.ok()) return listed.take_error();
  const std::string needle = std::string("table ") + kTableFamily + " " + kTableName + "\n";
  if (listed->find(needle) == std::string::npos) return std::optional<std::string>();
  CONFPOD_ASSIGN_OR_RETURN(std::string table,
                           run(std::string("list table ") + kTableFamily + " " + kTableName));
  return std::optional<std::string>(std::move(table));
}

}  // namespace confpod::net
