// The nftables table: rendered from a model, applied atomically through libnftables in a
// network namespace of the test's own.
#include "daemon/net/firewall.h"

#include <gtest/gtest.h>

#include "tests/support/netns.h"

namespace confpod::net {
namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

FirewallModel two_networks() {
  FirewallModel m;
  m.networks.push_back({"confpod0", *parse_subnet4("10.89.0.0/24"), std::nullopt, true});
  m.networks.push_back(
      {"cpback", *parse_subnet4("10.90.0.0/24"), *parse_subnet6("fd00:90::/64"), false});
  m.ports.push_back({"tcp", 0, 8080, *parse_ipv4("10.89.0.2"), 80});
  m.ports.push_back({"udp", *parse_ipv4("192.0.2.7"), 5353, *parse_ipv4("10.90.0.2"), 53});
  m.pods.push_back(
      {"cpt0a590002", *parse_mac("02:cf:0a:59:00:02"), *parse_ipv4("10.89.0.2"), std::nullopt});
  m.pods.push_back({"cpt0a5a0002", *parse_mac("02:cf:0a:5a:00:02"), *parse_ipv4("10.90.0.2"),
                    parse_ipv6("fd00:90::2")});
  m.kbs = KbsForward{8081, 0x7f000001u, 8081};
  return m;
}

TEST(FirewallRender, PublishedPortsKbsIsolationAndMasquerade) {
  const std::string t = render_ruleset(two_networks());
  EXPECT_TRUE(has(t, "table inet confpod {"));
  EXPECT_TRUE(has(t, "fib daddr type local tcp dport 8080 dnat ip to 10.89.0.2:80"));
  EXPECT_TRUE(has(t, "ip daddr 192.0.2.7 udp dport 5353 dnat ip to 10.90.0.2:53"));
  EXPECT_TRUE(
      has(t, "iifname \"confpod0\" ip daddr 10.89.0.1 tcp dport 8081 dnat ip to 127.0.0.1:8081"));
  EXPECT_TRUE(
      has(t, "ip saddr 10.89.0.0/24 ip daddr != 10.89.0.0/24 oifname != \"confpod0\" masquerade"));
  // masquerade = false: no egress NAT and the uplink is closed.
  EXPECT_FALSE(has(t, "ip saddr 10.90.0.0/24 ip daddr"));
  EXPECT_TRUE(has(t, "iifname \"cpback\" drop\n"));
  EXPECT_TRUE(has(t, "iifname \"confpod0\" accept\n"));
  // Host protection: the KBS and DNS on the gateway, nothing else.
  EXPECT_TRUE(
      has(t, "iifname \"confpod0\" ct status dnat ip daddr 127.0.0.1 tcp dport 8081 accept"));
  EXPECT_TRUE(has(
      t, "iifname \"confpod0\" ip daddr 10.89.0.1 meta l4proto { tcp, udp } th dport 53 accept"));
  // IPv6 from the host's side only for neighbour discovery and a ping of the gateway.
  EXPECT_FALSE(has(t, "meta l4proto ipv6-icmp accept"));
  EXPECT_TRUE(has(t,
                  "iifname \"cpback\" icmpv6 type { nd-router-solicit, nd-neighbor-solicit, "
                  "nd-neighbor-advert } accept"));
  EXPECT_TRUE(has(t, "iifname \"cpback\" ip6 daddr fd00:90::1 icmpv6 type echo-request accept"));
  // Sources: a network's own only; no IPv6 at all from a network without subnet6.
  EXPECT_TRUE(has(t, "iifname \"confpod0\" ip saddr != 10.89.0.0/24 drop"));
  EXPECT_TRUE(has(t, "iifname \"confpod0\" meta nfproto ipv6 drop"));
  EXPECT_TRUE(has(t, "iifname \"cpback\" ip6 saddr != fd00:90::/64 drop"));
  // The KBS forward and the gateway's DNS come before every published port.
  EXPECT_LT(t.find("dnat ip to 127.0.0.1:8081"), t.find("dnat ip to 10.89.0.2:80"));
  const std::string dns =
      "iifname \"cpback\" ip daddr 10.90.0.1 meta l4proto { tcp, udp } th dport 53 accept";
  ASSERT_NE(t.find(dns), std::string::npos) << t;
  EXPECT_LT(t.find(dns), t.find("dnat ip to 10.90.0.2:53"));
  // Between networks: each network's inbound drop comes before any egress accept.
  EXPECT_LT(t.find("oifname \"cpback\" drop"), t.find("\t\tiifname \"confpod0\" accept"));
  EXPECT_LT(t.find("oifname \"confpod0\" drop"), t.find("\t\tiifname \"confpod0\" accept"));
}

TEST(FirewallRender, EachTapMaySendOnlyAsItsPod) {
  const std::string t = render_ruleset(two_networks());
  const std::string bridge = t.substr(t.find("table bridge confpod {"));
  const std::string a = "iifname \"cpt0a590002\" ";
  EXPECT_TRUE(has(bridge, a + "ether saddr != 02:cf:0a:59:00:02 drop"));
  EXPECT_TRUE(has(bridge, a + "ether type != { ip, arp } drop"));  // no IPv6 on its network
  EXPECT_TRUE(has(bridge, a + "ip saddr != 10.89.0.2 drop"));
  EXPECT_TRUE(has(bridge, a + "arp saddr ether != 02:cf:0a:59:00:02 drop"));
  EXPECT_TRUE(has(bridge, a + "arp saddr ip != { 10.89.0.2, 0.0.0.0 } drop"));
  const std::string b = "iifname \"cpt0a5a0002\" ";
  EXPECT_TRUE(has(bridge, b + "ether type != { ip, arp, ip6 } drop"));
  EXPECT_TRUE(has(bridge, b + "ip6 saddr != { fd00:90::2, fe80::cf:aff:fe5a:2, :: } drop"));
  EXPECT_TRUE(has(bridge, b + "icmpv6 type { nd-router-advert, nd-redirect } drop"));
  EXPECT_TRUE(has(bridge, b + "icmpv6 type nd-neighbor-advert @th,64,128 != "
                              "0xfd000090000000000000000000000002 @th,64,128 != "
                              "0xfe8000000000000000cf0afffe5a0002 drop"));
}

TEST(FirewallRender, IsAFunctionOfTheModelNotOfItsOrder) {
  FirewallModel a = two_networks();
  FirewallModel b = a;
  std::reverse(b.networks.begin(), b.networks.end());
  std::reverse(b.ports.begin(), b.ports.end());
  std::reverse(b.pods.begin(), b.pods.end());
  EXPECT_EQ(render_ruleset(a), render_ruleset(b));
}

TEST(Firewall, AppliesReplacesAndRemovesTheTable) {
  CONFPOD_REQUIRE_NETNS();
  auto fw = Firewall::open();
  ASSERT_TRUE(fw.ok()) << fw.error().describe();
  auto before = fw->current();
  ASSERT_TRUE(before.ok()) << before.error().describe();
  EXPECT_FALSE(before->has_value());

  Status applied = fw->apply(two_networks());
  ASSERT_TRUE(applied.ok()) << applied.error().describe();
  auto now = fw->current();
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_TRUE(has(**now, "dnat ip to 10.89.0.2:80"));
  EXPECT_TRUE(has(**now, "dnat ip to 10.90.0.2:53"));
  // The kernel took the bridge table too, neighbour-advertisement target match included.
  EXPECT_TRUE(has(**now, "table bridge confpod"));
  EXPECT_TRUE(has(**now, "ether saddr != 02:cf:0a:5a:00:02 drop"));
  EXPECT_TRUE(has(**now, "@th,64,128 != 0xfd000090000000000000000000000002"));

  FirewallModel smaller = two_networks();
  smaller.ports.pop_back();
  ASSERT_TRUE(fw->apply(smaller).ok());
  now = fw->current();
  EXPECT_TRUE(has(**now, "dnat ip to 10.89.0.2:80"));
  EXPECT_FALSE(has(**now, "10.90.0.2:53"));  // replaced, not appended to

  ASSERT_TRUE(fw->apply(FirewallModel{}).ok());  // empty model: no table
  now = fw->current();
  ASSERT_TRUE(now.ok());
  EXPECT_FALSE(now->has_value());
  EXPECT_TRUE(fw->remove().ok());  // absent is fine
}

TEST(Firewall, TheMonitorSeesEveryChangeOfAnyTable) {
  CONFPOD_REQUIRE_NETNS();
  auto monitor = NftMonitor::open();
  ASSERT_TRUE(monitor.ok()) << monitor.error().describe();
  monitor->drain();
  EXPECT_FALSE(monitor->drain());
  auto fw = Firewall::open();
  ASSERT_TRUE(fw->apply(two_networks()).ok());
  EXPECT_TRUE(monitor->drain());
  EXPECT_FALSE(monitor->drain());
  ASSERT_TRUE(fw->remove().ok());  // as `nft flush ruleset` would
  EXPECT_TRUE(monitor->drain());
}

TEST(Firewall, ARefusedRulesetLeavesThePreviousTable) {
  CONFPOD_REQUIRE_NETNS();
  auto fw = Firewall::open();
  ASSERT_TRUE(fw.ok());
  ASSERT_TRUE(fw->apply(two_networks()).ok());
  auto good = fw->current();
  FirewallModel bad = two_networks();
  bad.ports.push_back({"sctp-ish", 0, 9, 1, 9});  // nft has no such protocol keyword
  Status refused = fw->apply(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "net.firewall");
  auto after = fw->current();
  EXPECT_EQ(*after, *good);
  ASSERT_TRUE(fw->remove().ok());
}

}  // namespace
}  // namespace confpod::net
