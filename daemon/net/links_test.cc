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
  ASSERT_TRUE(links->ensure_bridge("cpbr0", *parse_ipv4("10.89.0.1"), 24, gw6, 64).ok());
  EXPECT_TRUE(links->exists("cpbr0"));
  EXPECT_TRUE(links->is_up("cpbr0"));
  // A second call (a daemon restart) finds it as it is.
  Status again = links->ensure_bridge("cpbr0", *parse_ipv4("10.89.0.1"), 24, gw6, 64);
  EXPECT_TRUE(again.ok()) << again.error().describe();
  ASSERT_TRUE(links->remove("cpbr0").ok());
  EXPECT_FALSE(links->exists("cpbr0"));
}

TEST(Links, PersistentTapOnTheBridgeAndGoneAfterRemove) {
  CONFPOD_REQUIRE_NETNS();
  auto links = Links::open();
  ASSERT_TRUE(links.ok());
  ASSERT_TRUE(links->ensure_bridge("cpbr1", *parse_ipv4("10.90.0.1"), 24, std::nullopt, 0).ok());
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
