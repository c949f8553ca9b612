// Links against the real kernel, in a network namespace of the test's own.
#include "daemon/net/links.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/netns.h"

namespace confpod::net {
namespace {

TEST(Links, BridgeWithGatewayIsCreatedOnceAndUp) {
  CONFPOD_REQUIRE_NETNS();
  auto links = Links::open();
  ASSERT_TRUE(links.ok()) << links.error().describe();
  const auto gw6 = parse_ipv6("fd00:89::1");
  ASSERT_TRUE(
      links->ensure_bridge("cpbr0", "default", *parse_subnet4("10.89.0.0/24"), gw6, 64).ok());
  EXPECT_TRUE(links->exists("cpbr0"));
  EXPECT_TRUE(links->is_up("cpbr0"));
  // A second call (a daemon restart) finds it as it is.
  Status again = links->ensure_bridge("cpbr0", "default", *parse_subnet4("10.89.0.0/24"), gw6, 64);
  EXPECT_TRUE(again.ok()) << again.error().describe();
  ASSERT_TRUE(links->remove("cpbr0").ok());
  EXPECT_FALSE(links->exists("cpbr0"));
}

TEST(Links, PersistentTapOnTheBridgeAndGoneAfterRemove) {
  CONFPOD_REQUIRE_NETNS();
  auto links = Links::open();
  ASSERT_TRUE(links.ok());
  ASSERT_TRUE(
      links->ensure_bridge("cpbr1", "back", *parse_subnet4("10.90.0.0/24"), std::nullopt, 0).ok());
  Status tap = links->ensure_tap("cpt0a5a0002", "cpbr1");
  ASSERT_TRUE(tap.ok()) << tap.error().describe();
  EXPECT_EQ(links->master_of("cpt0a5a0002"), std::optional<std::string>("cpbr1"));
  EXPECT_TRUE(links->is_up("cpt0a5a0002"));
  EXPECT_TRUE(links->ensure_tap("cpt0a5a0002", "cpbr1").ok());  // idempotent
  auto names = links->names_with_prefix(kTapPrefix);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"cpt0a5a0002"});
  ASSERT_TRUE(links->remove("cpt0a5a0002").ok());
  EXPECT_FALSE(links->exists("cpt0a5a0002"));
  EXPECT_TRUE(links->remove("cpt0a5a0002").ok());  // absent is fine
  EXPECT_EQ(links->master_of("cpt0a5a0002"), std::nullopt);
  ASSERT_TRUE(links->remove("cpbr1").ok());
}

TEST(Links, BridgesAreMarkedAndForeignInterfacesAreNeverTakenOver) {
  CONFPOD_REQUIRE_NETNS();
  auto links = Links::open();
  ASSERT_TRUE(links.ok());
  const Ipv4Net subnet = *parse_subnet4("10.92.0.0/24");
  ASSERT_TRUE(links->ensure_bridge("cpbr2", "lab", subnet, std::nullopt, 0).ok());
  EXPECT_TRUE(links->is_our_bridge("cpbr2"));
  ASSERT_TRUE(links->remove("cpbr2").ok());

  // Not a bridge (eth0, lo, ...): refused, left alone.
  testing::ip({"link", "add", "cpdummy", "type", "veth", "peer", "name", "cpdummyp"});
  Status dummy = links->ensure_bridge("cpdummy", "lab", subnet, std::nullopt, 0);
  ASSERT_FALSE(dummy.ok());
  EXPECT_EQ(dummy.error().code, "net.foreign_link");
  EXPECT_NE(dummy.error().message.find("not a bridge (veth)"), std::string::npos)
      << dummy.error().message;
  EXPECT_FALSE(links->is_our_bridge("cpdummy"));
  Status lo = links->ensure_bridge("lo", "lab", subnet, std::nullopt, 0);
  EXPECT_EQ(lo.error().code, "net.foreign_link");

  // Somebody's bridge with a real port on it: refused, no address added.
  testing::ip({"link", "add", "adminbr", "type", "bridge"});
  testing::ip({"link", "set", "cpdummy", "master", "adminbr"});
  Status admin = links->ensure_bridge("adminbr", "lab", subnet, std::nullopt, 0);
  ASSERT_FALSE(admin.ok());
  EXPECT_EQ(admin.error().code, "net.foreign_link");
  EXPECT_NE(admin.error().message.find("member cpdummy"), std::string::npos);
  EXPECT_FALSE(links->is_our_bridge("adminbr"));

  // An empty unmarked bridge is somebody else's: refused.
  testing::ip({"link", "add", "cpold", "type", "bridge"});
  Status empty = links->ensure_bridge("cpold", "lab", subnet, std::nullopt, 0);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("does not carry the gateway address"), std::string::npos);
  // One carrying our gateway (an older confpodd's, unmarked) is adopted and marked.
  testing::ip({"addr", "add", "10.92.0.1/24", "dev", "cpold"});
  Status adopted = links->ensure_bridge("cpold", "lab", subnet, std::nullopt, 0);
  ASSERT_TRUE(adopted.ok()) << adopted.error().describe();
  EXPECT_TRUE(links->is_our_bridge("cpold"));
  for (const char* name : {"cpold", "adminbr", "cpdummy"}) ASSERT_TRUE(links->remove(name).ok());
}

TEST(Links, ASubnetTheHostAlreadyReachesIsRefused) {
  CONFPOD_REQUIRE_NETNS();
  auto links = Links::open();
  ASSERT_TRUE(links.ok());
  testing::ip({"link", "add", "cpuplink", "type", "veth", "peer", "name", "cpuplinkp"});
  testing::ip({"link", "set", "cpuplink", "up"});
  testing::ip({"addr", "add", "10.93.0.5/24", "dev", "cpuplink"});
  testing::ip({"route", "add", "10.94.0.0/16", "dev", "cpuplink"});

  Status on_address =
      links->ensure_bridge("cpbr3", "lab", *parse_subnet4("10.93.0.0/24"), std::nullopt, 0);
  ASSERT_FALSE(on_address.ok());
  EXPECT_EQ(on_address.error().code, "net.route_conflict");
  EXPECT_NE(on_address.error().message.find("address 10.93.0.5/24 on cpuplink"), std::string::npos)
      << on_address.error().message;
  EXPECT_FALSE(links->exists("cpbr3"));  // the bridge made for it went again
  auto routed = links->subnet_in_use(*parse_subnet4("10.94.7.0/24"), "cpbr3");
  ASSERT_TRUE(routed.ok());
  EXPECT_EQ(*routed, std::optional<std::string>("route 10.94.0.0/16 via cpuplink"));
  // The bridge's own address does not count against it (a restart).
  ASSERT_TRUE(
      links->ensure_bridge("cpbr3", "lab", *parse_subnet4("10.95.0.0/24"), std::nullopt, 0).ok());
  auto own = links->subnet_in_use(*parse_subnet4("10.95.0.0/24"), "cpbr3");
  ASSERT_TRUE(own.ok());
  EXPECT_EQ(*own, std::nullopt);
  ASSERT_TRUE(links->remove("cpbr3").ok());
  ASSERT_TRUE(links->remove("cpuplink").ok());
}

TEST(Links, Ipv6ForwardingIsNotTurnedOnUnderARouteLearnedFromRouterAdvertisements) {
  CONFPOD_REQUIRE_NETNS();
  auto links = Links::open();
  ASSERT_TRUE(links.ok());
  ASSERT_TRUE(write_sysctl("net/ipv6/conf/all/forwarding", "0").ok());
  testing::ip({"link", "add", "cpra", "type", "veth", "peer", "name", "cprap"});
  testing::ip({"link", "set", "cpra", "up"});
  testing::ip({"-6", "route", "add", "2001:db8:5::/64", "dev", "cpra", "proto", "ra"});
  ASSERT_TRUE(write_sysctl("net/ipv6/conf/cpra/accept_ra", "1").ok());
  Status refused = enable_ipv6_forwarding();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "net.sysctl");
  EXPECT_NE(refused.error().message.find("net.ipv6.conf.cpra.accept_ra=2"), std::string::npos)
      << refused.error().message;
  std::string value;
  std::ifstream("/proc/sys/net/ipv6/conf/all/forwarding") >> value;
  EXPECT_EQ(value, "0");
  // With accept_ra=2 the host keeps its RA routes under forwarding: allowed.
  ASSERT_TRUE(write_sysctl("net/ipv6/conf/cpra/accept_ra", "2").ok());
  Status allowed = enable_ipv6_forwarding();
  ASSERT_TRUE(allowed.ok()) << allowed.error().describe();
  std::ifstream("/proc/sys/net/ipv6/conf/all/forwarding") >> value;
  EXPECT_EQ(value, "1");
  ASSERT_TRUE(links->remove("cpra").ok());
}

TEST(Links, TapOnAMissingBridgeIsANamedError) {
  CONFPOD_REQUIRE_NETNS();
  auto links = Links::open();
  ASSERT_TRUE(links.ok());
  Status tap = links->ensure_tap("cpt01020304", "nosuchbridge");
  ASSERT_FALSE(tap.ok());
  EXPECT_EQ(tap.error().code, "net.link");
  EXPECT_NE(tap.error().message.find("nosuchbridge"), std::string::npos);
  EXPECT_FALSE(links->exists("cpt01020304"));
}

TEST(Links, SysctlsArePerNamespace) {
  CONFPOD_REQUIRE_NETNS();
  ASSERT_TRUE(write_sysctl("net/ipv4/ip_forward", "1").ok());
  std::ifstream in("/proc/sys/net/ipv4/ip_forward");
  std::string value;
  in >> value;
  EXPECT_EQ(value, "1");
  Status bad = write_sysctl("net/ipv4/conf/nosuchlink/route_localnet", "1");
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace confpod::net
