#include "daemon/net/address.h"

#include <gtest/gtest.h>

namespace confpod::net {
namespace {

TEST(Address, ParsesAndFormatsSubnets) {
  auto net = parse_subnet4("10.89.0.0/24");
  ASSERT_TRUE(net.ok()) << net.error().describe();
  EXPECT_EQ(format(*net), "10.89.0.0/24");
  EXPECT_EQ(format_ipv4(gateway4(*net)), "10.89.0.1");
  EXPECT_EQ(format_ipv4(net->broadcast()), "10.89.0.255");
  auto net6 = parse_subnet6("fd00:89::/64");
  ASSERT_TRUE(net6.ok()) << net6.error().describe();
  EXPECT_EQ(format(*net6), "fd00:89::/64");
  EXPECT_EQ(format_ipv6(gateway6(*net6)), "fd00:89::1");
}

TEST(Address, RefusesBadSubnetsNamingTheProblem) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"10.89.0.0", "must be IPv4 CIDR"},
      {"10.89.0/24", "not a dotted-quad"},
      {"10.89.0.0/33", "prefix length is not 0..32"},
      {"10.89.0.0/31", "8..30"},
      {"10.0.0.0/4", "8..30"},
      {"10.89.0.1/24", "host bits set; the network is 10.89.0.0/24"},
      {"010.89.0.0/24", "not a dotted-quad"},
  };
  for (const Case& c : cases) {
    auto r = parse_subnet4(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error().code, "net.invalid");
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(parse_subnet6("fd00:89::/48").ok());   // fewer than 64 bits of prefix
  EXPECT_FALSE(parse_subnet6("fd00:89::1/64").ok());  // host bits
  EXPECT_FALSE(parse_subnet6("10.0.0.0/64").ok());
}

TEST(Address, Overlaps) {
  auto a = *parse_subnet4("10.89.0.0/24");
  EXPECT_TRUE(overlaps(a, *parse_subnet4("10.89.0.0/16")));
  EXPECT_TRUE(overlaps(a, *parse_subnet4("10.89.0.128/25")));
  EXPECT_FALSE(overlaps(a, *parse_subnet4("10.89.1.0/24")));
  EXPECT_TRUE(overlaps(*parse_subnet6("fd00::/64"), *parse_subnet6("fd00::/96")));
  EXPECT_FALSE(overlaps(*parse_subnet6("fd00::/64"), *parse_subnet6("fd00:0:0:1::/64")));
}

TEST(Address, AllocatesLowestFreeSkippingGatewayAndBroadcast) {
  auto net = *parse_subnet4("10.89.0.0/29");  // .1 gateway, .2-.6 pods, .7 broadcast
  std::set<std::uint32_t> taken;
  for (int i = 2; i <= 6; ++i) {
    auto a = allocate4(net, taken);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(format_ipv4(*a), "10.89.0." + std::to_string(i));
    taken.insert(*a);
  }
  EXPECT_FALSE(allocate4(net, taken).has_value());
  taken.erase(*parse_ipv4("10.89.0.4"));
  EXPECT_EQ(format_ipv4(*allocate4(net, taken)), "10.89.0.4");
}

TEST(Address, NamesFollowFromTheAddress) {
  const std::uint32_t a = *parse_ipv4("10.89.0.2");
  EXPECT_EQ(tap_name_for(a), "cpt0a590002");
  EXPECT_LE(tap_name_for(0xffffffffu).size(), 15u);
  EXPECT_EQ(mac_for(a), "02:cf:0a:59:00:02");
  EXPECT_EQ(
      format_ipv6(address6_for(*parse_subnet4("10.89.0.0/24"), *parse_subnet6("fd00:89::/64"), a)),
      "fd00:89::2");
  EXPECT_EQ(format_ipv6(address6_for(*parse_subnet4("10.0.0.0/8"), *parse_subnet6("fd00::/64"),
                                     *parse_ipv4("10.1.2.3"))),
            "fd00::1:203");
}

TEST(Address, Names) {
  EXPECT_TRUE(is_valid_network_name("backend"));
  EXPECT_TRUE(is_valid_network_name("net-2.a_b"));
  EXPECT_FALSE(is_valid_network_name(""));
  EXPECT_FALSE(is_valid_network_name("-x"));
  EXPECT_FALSE(is_valid_network_name("a/b"));
  EXPECT_FALSE(is_valid_network_name(std::string(33, 'a')));
  EXPECT_TRUE(is_valid_ifname("confpod0"));
  EXPECT_FALSE(is_valid_ifname("sixteen-chars-xx"));
  EXPECT_FALSE(is_valid_ifname("a b"));
}

TEST(Address, MacsAndTheLinkLocalAddressTheGuestDerivesFromThem) {
  auto mac = parse_mac("02:CF:0a:59:00:02");
  ASSERT_TRUE(mac.has_value());
  EXPECT_EQ(*mac, (std::array<std::uint8_t, 6>{0x02, 0xcf, 0x0a, 0x59, 0x00, 0x02}));
  // The universal/local bit flips (02 -> 00) and ff:fe goes in the middle.
  EXPECT_EQ(format_ipv6(link_local_for(*mac)), "fe80::cf:aff:fe59:2");
  for (const char* bad : {"", "02:cf:0a:59:00", "02:cf:0a:59:00:0g", "02-cf-0a-59-00-02",
                          "02:cf:0a:59:00:02:", "002:cf:0a:59:00:2"})
    EXPECT_FALSE(parse_mac(bad).has_value()) << bad;
}

}  // namespace
}  // namespace confpod::net
