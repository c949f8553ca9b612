// The ioctl network setup, exercised on lo inside a private network namespace.
#include "guest/agent/network.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace confpod::guest::agent {
namespace {

TEST(GuestAgentNetwork, ParsesCidr) {
  auto c = parse_ipv4_cidr("10.0.2.15/24");
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->address, inet_addr("10.0.2.15"));
  EXPECT_EQ(c->netmask, inet_addr("255.255.255.0"));
  EXPECT_EQ(parse_ipv4_cidr("10.0.0.1/0")->netmask, 0u);
  EXPECT_EQ(parse_ipv4_cidr("10.0.0.1/32")->netmask, 0xffffffffu);
  for (const char* bad :
       {"10.0.2.15", "10.0.2.15/33", "10.0.2/24", "10.0.2.15/", "a/24", "10.0.2.15/2x", "::1/64"}) {
    auto r = parse_ipv4_cidr(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "agent.network");
  }
}

TEST(GuestAgentNetwork, RefusesBadGatewayAndInterface) {
  EXPECT_FALSE(configure_network("eth0", "10.0.2.15/24", "10.0.2").ok());
  EXPECT_FALSE(configure_network("a-name-much-too-long-for-linux", "10.0.2.15/24", "").ok());
}

// In a new network namespace: lo gets an address, comes up, and gets a default route.
TEST(GuestAgentNetwork, ConfiguresInterfaceAndDefaultRoute) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (a network namespace)";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(10);
    if (!configure_network("lo", "127.0.0.7/8", "127.0.0.1").ok()) ::_exit(11);
    std::ifstream routes("/proc/net/route");
    std::stringstream all;
    all << routes.rdbuf();
    // Iface Destination Gateway ...: the default route via 127.0.0.1 (0100007F).
    if (all.str().find("lo\t00000000\t0100007F") == std::string::npos) ::_exit(12);
    if (configure_network("nosuchif0", "10.0.0.1/24", "").ok()) ::_exit(13);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace confpod::guest::agent
