#include "daemon/net/network_def.h"

#include <gtest/gtest.h>

namespace confpod::net {
namespace {

NetworkDef def(std::string name, std::string bridge, std::string subnet) {
  NetworkDef d;
  d.name = std::move(name);
  d.bridge = std::move(bridge);
  d.subnet = std::move(subnet);
  return d;
}

TEST(NetworkDef, DefaultIsValid) {
  auto n = validate_network(NetworkDef{});
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(n->def.name, "default");
  EXPECT_EQ(n->def.bridge, "confpod0");
  EXPECT_EQ(format_ipv4(n->gateway()), "10.89.0.1");
}

TEST(NetworkDef, RefusesBadFieldsNamingThem) {
  struct Case {
    NetworkDef d;
    const char* says;
  };
  NetworkDef dns = NetworkDef{};
  dns.dns = {"8.8.8.8", "not-an-ip"};
  NetworkDef v6 = NetworkDef{};
  v6.subnet = "10.0.0.0/8";
  v6.subnet6 = "fd00::/120";
  Case cases[] = {
      {def("user", "br0", "10.1.0.0/24"), "not \"user\" or \"none\""},
      {def("a/b", "br0", "10.1.0.0/24"), "network name"},
      {def("n", "bridge-name-too-long", "10.1.0.0/24"), "bridge"},
      {def("n", "cpt0", "10.1.0.0/24"), "pod taps"},
      {def("n", "br0", "10.1.0.1/24"), "host bits"},
      {dns, "dns server \"not-an-ip\""},
      {v6, "fewer host bits"},
  };
  for (const Case& c : cases) {
    auto r = validate_network(c.d);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.error().code, "net.invalid");
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
}

TEST(NetworkDef, OverlapsAndDuplicatesAreRefused) {
  std::vector<Network> existing = {*validate_network(NetworkDef{})};
  auto same_name = validate_network(def("default", "br1", "10.90.0.0/24"));
  EXPECT_EQ(check_compatible(*same_name, existing).error().code, "net.exists");
  auto same_bridge = validate_network(def("b", "confpod0", "10.90.0.0/24"));
  EXPECT_EQ(check_compatible(*same_bridge, existing).error().code, "net.exists");
  auto overlap = validate_network(def("c", "br1", "10.89.0.0/16"));
  Status s = check_compatible(*overlap, existing);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "net.overlap");
  EXPECT_NE(s.error().message.find("overlaps 10.89.0.0/24 of network default"), std::string::npos);
  EXPECT_TRUE(check_compatible(*validate_network(def("d", "br1", "10.90.0.0/24")), existing).ok());
}

TEST(NetworkDef, DnsText) {
  EXPECT_EQ(dns_to_text({"10.0.0.1", "fd00::1"}), "10.0.0.1,fd00::1");
  EXPECT_EQ(dns_from_text("10.0.0.1,fd00::1"), (std::vector<std::string>{"10.0.0.1", "fd00::1"}));
  EXPECT_TRUE(dns_from_text("").empty());
}

}  // namespace
}  // namespace confpod::net
