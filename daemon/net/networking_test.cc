// Networking against the real kernel and a real SQLite store, in a network namespace of the
// test's own: addresses, ports, links and the nftables table through a pod's life and a
// daemon restart.
#include "daemon/net/networking.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "attest/base/unique_fd.h"
#include "daemon/net/links.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"

namespace confpod::net {
namespace {

spec::Port port(std::uint16_t host, std::uint16_t guest, std::string protocol = "tcp",
                std::string host_ip = "0.0.0.0") {
  return spec::Port{host, guest, std::move(protocol), std::move(host_ip)};
}

class NetworkingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::Store::open(dir_.path() + "/confpod.db");
    ASSERT_TRUE(s.ok()) << s.error().describe();
    store_.emplace(std::move(*s));
  }
  NetworkingOptions options() {
    NetworkingOptions o;
    NetworkDef d;  // default: confpod0, 10.89.0.0/24
    d.dns = {"10.89.0.1"};
    o.config_networks.push_back(d);
    NetworkDef back;
    back.name = "back";
    back.bridge = "cpback";
    back.subnet = "10.90.0.0/24";
    back.subnet6 = "fd00:90::/64";
    back.masquerade = false;
    o.config_networks.push_back(back);
    o.kbs = KbsForward{8081, 0x7f000001u, 8081};
    o.user_kbs_url = "http://10.0.2.2:8081";
    return o;
  }
  std::unique_ptr<Networking> make() {
    auto n = Networking::create(options(), *store_);
    EXPECT_TRUE(n.ok()) << n.error().describe();
    return n.ok() ? std::move(*n) : nullptr;
  }
  Lease add(Networking& n, const std::string& pod, const std::string& network,
            std::vector<spec::Port> ports = {}) {
    auto lease = n.reserve(pod, network, ports);
    EXPECT_TRUE(lease.ok()) << lease.error().describe();
    if (!lease.ok()) return {};
    Status added = n.add_pod(pod, *lease, ports);
    EXPECT_TRUE(added.ok()) << added.error().describe();
    return *lease;
  }

  testing::TempDir dir_;
  std::optional<store::Store> store_;
};

TEST_F(NetworkingTest, LeasesAreLowestFreeAndNameEverythingTheGuestGets) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  Lease a = add(*n, "a", "");  // the default network
  Lease b = add(*n, "b", "default");
  Lease c = add(*n, "c", "back");
  EXPECT_EQ(a.network, "default");
  EXPECT_EQ(a.address, "10.89.0.2");
  EXPECT_EQ(b.address, "10.89.0.3");
  EXPECT_EQ(c.address, "10.90.0.2");
  EXPECT_EQ(c.address6, "fd00:90::2");
  EXPECT_EQ(a.mac, "02:cf:0a:59:00:02");

  auto guest = n->guest_network(c);
  ASSERT_TRUE(guest.ok());
  EXPECT_EQ(guest->kind, spec::PodNetwork::Kind::kTap);
  EXPECT_EQ(guest->tap, "cpt0a5a0002");
  EXPECT_EQ(guest->address, "10.90.0.2/24");
  EXPECT_EQ(guest->gateway, "10.90.0.1");
  EXPECT_EQ(guest->address6, "fd00:90::2/64");
  EXPECT_EQ(guest->gateway6, "fd00:90::1");
  EXPECT_EQ(n->kbs_url(a), "http://10.89.0.1:8081");
  EXPECT_EQ(n->kbs_url(Lease{"user", "", "", ""}), "http://10.0.2.2:8081");
  EXPECT_EQ(n->kbs_url(Lease{"none", "", "", ""}), "");
  EXPECT_EQ(n->guest_network(Lease{"none", "", "", ""})->kind, spec::PodNetwork::Kind::kNone);

  // Removing a frees its address for the next pod; b keeps its own.
  ASSERT_TRUE(n->remove_pod("a").ok());
  EXPECT_EQ(add(*n, "d", "default").address, "10.89.0.2");
}

TEST_F(NetworkingTest, PortsPublishedTwiceOrBoundOnTheHostAreRefusedByName) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  add(*n, "web", "default", {port(8080, 80)});
  auto again = n->reserve("web2", "default", {port(8080, 8080)});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "net.port_in_use");
  EXPECT_NE(again.error().message.find("already published by pod web"), std::string::npos);
  // Another protocol, or another port, is fine; a specific address clashes with 0.0.0.0.
  EXPECT_TRUE(n->reserve("web2", "default", {port(8080, 80, "udp")}).ok());
  EXPECT_FALSE(n->reserve("web2", "default", {port(8080, 80, "tcp", "127.0.0.1")}).ok());

  // A socket of some host program holds 127.0.0.1:<p>.
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd.get(), 1), 0);
  socklen_t len = sizeof sa;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  const std::uint16_t bound = ntohs(sa.sin_port);
  auto host = n->reserve("web3", "default", {port(bound, 80)});
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.error().code, "net.port_in_use");
  EXPECT_NE(host.error().message.find("in use on the host"), std::string::npos);

  auto nowhere = n->reserve("web4", "default", {port(9999, 80, "tcp", "192.0.2.55")});
  ASSERT_FALSE(nowhere.ok());
  EXPECT_NE(nowhere.error().message.find("not an address of this host"), std::string::npos);
  auto none = n->reserve("web5", "none", {port(9998, 80)});
  ASSERT_FALSE(none.ok());
  auto missing = n->reserve("web6", "nosuch", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "net.not_found");
}

TEST_F(NetworkingTest, PrepareWiresTheHostAndRemoveLeavesNothing) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  Lease web = add(*n, "web", "default", {port(8080, 80)});
  auto links = Links::open();
  ASSERT_TRUE(links.ok());
  Status prepared = n->prepare("web");
  ASSERT_TRUE(prepared.ok()) << prepared.error().describe();
  EXPECT_TRUE(links->is_up("confpod0"));
  EXPECT_EQ(links->master_of("cpt0a590002"), std::optional<std::string>("confpod0"));
  auto fw = Firewall::open();
  auto table = fw->current();
  ASSERT_TRUE(table.ok() && table->has_value());
  EXPECT_NE((*table)->find("dnat ip to 10.89.0.2:80"), std::string::npos);

  n->vm_exited("web");
  EXPECT_FALSE(links->exists("cpt0a590002"));
  EXPECT_TRUE((*fw->current())->find("10.89.0.2:80") != std::string::npos);  // until removed

  ASSERT_TRUE(n->remove_pod("web").ok());
  table = fw->current();
  ASSERT_TRUE(table.ok());
  EXPECT_FALSE(table->has_value()) << **table;
  EXPECT_TRUE(links->names_with_prefix(kTapPrefix)->empty());
}

TEST_F(NetworkingTest, RecoverRebuildsTheSameTableAndDropsStaleTaps) {
  CONFPOD_REQUIRE_NETNS();
  std::string before;
  {
    auto n = make();
    add(*n, "a", "default", {port(8080, 80)});
    add(*n, "b", "back", {port(5353, 53, "udp")});
    ASSERT_TRUE(n->prepare("a").ok());
    ASSERT_TRUE(n->prepare("b").ok());
    before = **Firewall::open()->current();
  }
  // The daemon died (kill -9): the table and both taps are still there. It comes back
  // knowing a's VM still runs but b's has ended.
  auto fw = Firewall::open();
  ASSERT_TRUE(fw->remove().ok());  // and someone flushed the table meanwhile
  auto n = make();
  // A third pod ran on a network that has since left confpod.toml: no rules cover its
  // bridge any more, so its tap must go although its VM runs.
  auto orphan_links = Links::open();
  ASSERT_TRUE(orphan_links->ensure_tap("cpt0a620002", "confpod0").ok());
  std::vector<PodNet> pods = {
      {"gone", Lease{"retired", "10.98.0.2", "", "02:cf:0a:62:00:02"}, {}, true},
      {"a", Lease{"default", "10.89.0.2", "", "02:cf:0a:59:00:02"}, {port(8080, 80)}, true},
      {"b",
       Lease{"back", "10.90.0.2", "fd00:90::2", "02:cf:0a:5a:00:02"},
       {port(5353, 53, "udp")},
       false},
  };
  Status recovered = n->recover(pods);
  ASSERT_TRUE(recovered.ok()) << recovered.error().describe();
  EXPECT_EQ(**fw->current(), before);
  auto links = Links::open();
  EXPECT_TRUE(links->exists("cpt0a590002"));
  EXPECT_FALSE(links->exists("cpt0a5a0002"));
  EXPECT_FALSE(links->exists("cpt0a620002"));
  // The recovered leases count: the next pod on "default" gets .3.
  EXPECT_EQ(add(*n, "c", "default").address, "10.89.0.3");
}

TEST_F(NetworkingTest, TablesFlushedFromOutsideAreRestored) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  add(*n, "a", "default", {port(8080, 80)});
  ASSERT_TRUE(n->prepare("a").ok());
  auto fw = Firewall::open();
  const std::string written = **fw->current();
  EXPECT_NE(written.find("table bridge confpod"), std::string::npos);
  // Nothing changed: verify reads, writes nothing.
  ASSERT_TRUE(n->verify_firewall().ok());
  EXPECT_EQ(n->firewall_restores(), 0u);

  // `nft flush ruleset` (a firewall service reload does the same).
  ASSERT_EQ(testing::run_process({"/usr/sbin/nft", "flush", "ruleset"}).exit_code, 0);
  EXPECT_FALSE(fw->current()->has_value());
  ASSERT_TRUE(n->verify_firewall().ok());
  EXPECT_EQ(**fw->current(), written);
  EXPECT_EQ(n->firewall_restores(), 1u);

  // A rule slipped into our table is gone again at the next start.
  ASSERT_EQ(testing::run_process({"/usr/sbin/nft", "insert", "rule", "inet", "confpod", "input",
                                  "iifname", "\"confpod0\"", "accept"})
                .exit_code,
            0);
  ASSERT_TRUE(n->prepare("a").ok());
  EXPECT_EQ(**fw->current(), written);
  EXPECT_EQ(n->firewall_restores(), 2u);
  ASSERT_TRUE(n->remove_pod("a").ok());
  EXPECT_FALSE(fw->current()->has_value());
}

TEST_F(NetworkingTest, APodCannotSendAsAnotherAddressOrMac) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  Lease a = add(*n, "a", "default");  // 10.89.0.2
  Lease b = add(*n, "b", "default");  // 10.89.0.3
  // Stand-ins for the two VMs: a veth named as the pod's tap, its other end in a namespace of
  // its own with the pod's MAC and address, as the agent configures them.
  testing::NamedNetns pod_a("poda"), pod_b("podb");
  auto plug = [](const testing::NamedNetns& ns, const Lease& l) {
    const std::string tap = tap_name_for(*parse_ipv4(l.address));
    testing::ip({"link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns.name()});
    testing::ip({"-n", ns.name(), "link", "set", "eth0", "address", l.mac, "up"});
    testing::ip({"-n", ns.name(), "addr", "add", l.address + "/24", "dev", "eth0"});
  };
  plug(pod_a, a);
  plug(pod_b, b);
  ASSERT_TRUE(n->prepare("a").ok());
  ASSERT_TRUE(n->prepare("b").ok());
  // Both ports forward before anything is sent, so a refusal below is the rules' doing (here
  // a port forwards about a second after prepare(); a ping sent sooner once failed in CI).
  for (const Lease* l : {&a, &b}) {
    const std::string tap = tap_name_for(*parse_ipv4(l->address));
    ASSERT_TRUE(testing::wait_until(
        [&] {
          auto shown = testing::run_process({"/usr/sbin/bridge", "-j", "link", "show", "dev", tap});
          return shown.out.find("\"state\":\"forwarding\"") != std::string::npos;
        },
        std::chrono::seconds(10)))
        << tap << " never became a forwarding port of the bridge";
  }
  // A reach is a reply to probes sent once a second for up to 10 s; a refusal is three probes
  // a second apart, none answered.
  auto a_reaches_b = [&] {
    return testing::run_process(
               pod_a.exec({"/bin/busybox", "ping", "-c", "1", "-w", "10", b.address}))
               .exit_code == 0;
  };
  auto a_is_refused = [&] {
    return testing::run_process(
               pod_a.exec({"/bin/busybox", "ping", "-c", "3", "-W", "1", b.address}))
               .exit_code != 0;
  };
  auto a_uses = [&](const std::string& address, const std::string& mac) {
    testing::ip({"-n", pod_a.name(), "addr", "flush", "dev", "eth0"});
    testing::ip({"-n", pod_a.name(), "link", "set", "eth0", "address", mac});
    testing::ip({"-n", pod_a.name(), "addr", "add", address + "/24", "dev", "eth0"});
  };
  // What the kernel saw, for a failure's message.
  auto state = [&] {
    std::string shown;
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {"/usr/sbin/bridge", "link", "show"},
             {"/usr/sbin/bridge", "fdb", "show", "br", "confpod0"},
             pod_a.exec({"/usr/sbin/ip", "neigh", "show"}),
             pod_b.exec({"/usr/sbin/ip", "neigh", "show"})})
      shown += testing::run_process(argv).out;
    return shown;
  };
  EXPECT_TRUE(a_reaches_b()) << state();  // same network: reachable
  a_uses("10.89.0.9", a.mac);
  EXPECT_TRUE(a_is_refused()) << "a spoofed source address left the tap";
  a_uses(a.address, "02:cf:0a:59:00:09");
  EXPECT_TRUE(a_is_refused()) << "a spoofed MAC left the tap";
  a_uses(a.address, a.mac);
  EXPECT_TRUE(a_reaches_b()) << state();
  ASSERT_TRUE(n->remove_pod("a").ok());
  ASSERT_TRUE(n->remove_pod("b").ok());
}

TEST_F(NetworkingTest, PortsThatWouldTakeThePodsSideOfTheHostAreRefused) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  // The gateway (or any address of a pod network) as host_ip.
  auto gateway = n->reserve("p", "default", {port(8000, 80, "tcp", "10.89.0.1")});
  ASSERT_FALSE(gateway.ok());
  EXPECT_EQ(gateway.error().code, "net.invalid");
  EXPECT_NE(gateway.error().message.find("is in pod network default"), std::string::npos);
  auto other = n->reserve("p", "default", {port(8000, 80, "tcp", "10.90.0.9")});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("is in pod network back"), std::string::npos)
      << other.error().message;
  // The port pods reach the KBS on.
  auto kbs = n->reserve("p", "default", {port(8081, 80)});
  ASSERT_FALSE(kbs.ok());
  EXPECT_EQ(kbs.error().code, "net.port_in_use");
  EXPECT_NE(kbs.error().message.find("the port pods reach the KBS on"), std::string::npos);
  EXPECT_TRUE(n->reserve("p", "default", {port(8081, 80, "udp")}).ok());
}

TEST_F(NetworkingTest, AddressesAreUniqueAcrossEveryNetwork) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  // A pod from a stored network that the configuration now overlaps still holds its address.
  ASSERT_TRUE(n->add_pod("old", Lease{"gone", "10.89.0.2", "", "02:cf:0a:59:00:02"}, {}).ok());
  EXPECT_EQ(add(*n, "new", "default").address, "10.89.0.3");
}

TEST_F(NetworkingTest, NetworksCreatedOverTheApiAreStoredCheckedAndRemovable) {
  CONFPOD_REQUIRE_NETNS();
  auto n = make();
  NetworkDef d;
  d.name = "lab";
  d.bridge = "cplab";
  d.subnet = "10.91.0.0/24";
  auto made = n->create_network(d);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  d.name = "lab2";
  d.bridge = "cplab2";
  d.subnet = "10.91.0.0/16";
  auto overlap = n->create_network(d);
  ASSERT_FALSE(overlap.ok());
  EXPECT_EQ(overlap.error().code, "net.overlap");

  add(*n, "p", "lab");
  ASSERT_TRUE(n->prepare("p").ok());
  Status busy = n->remove_network("lab");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, "net.in_use");
  EXPECT_NE(busy.error().message.find("p"), std::string::npos);
  EXPECT_EQ(n->remove_network("default").error().code, "net.config");
  EXPECT_EQ(n->remove_network("nosuch").error().code, "net.not_found");

  // A new daemon sees it from the store.
  auto again = make();
  ASSERT_NE(again->find("lab"), nullptr);
  EXPECT_EQ(again->find("lab")->def.subnet, "10.91.0.0/24");

  ASSERT_TRUE(n->remove_pod("p").ok());
  ASSERT_TRUE(n->remove_network("lab").ok());
  EXPECT_FALSE(Links::open()->exists("cplab"));
  EXPECT_EQ(make()->find("lab"), nullptr);

  // A subnet the host reaches already, or a bridge name some other interface has.
  testing::ip({"link", "add", "cpnic", "type", "veth", "peer", "name", "cpnicp"});
  testing::ip({"addr", "add", "10.96.0.9/16", "dev", "cpnic"});
  d.name = "lab3";
  d.bridge = "cplab3";
  d.subnet = "10.96.1.0/24";
  auto routed = n->create_network(d);
  ASSERT_FALSE(routed.ok());
  EXPECT_EQ(routed.error().code, "net.route_conflict");
  d.subnet = "10.97.0.0/24";
  d.bridge = "cpnic";
  auto foreign = n->create_network(d);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, "net.foreign_link");
  EXPECT_EQ(n->find("lab3"), nullptr);
  ASSERT_TRUE(Links::open()->remove("cpnic").ok());
}

}  // namespace
}  // namespace confpod::net
