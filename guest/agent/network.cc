#include "guest/agent/network.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "vmm/unique_fd.h"

namespace confpod::guest::agent {
namespace {

Error net_error(const std::string& what) {
  return make_error("agent.network", what + ": " + std::strerror(errno));
}

sockaddr_in inet_addr_of(std::uint32_t address) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = address;
  return sin;
}

Status name_interface(ifreq& ifr, const std::string& interface) {
  if (interface.empty() || interface.size() >= IFNAMSIZ || interface.find('/') != std::string::npos)
    return make_error("agent.network", "invalid interface name \"" + interface + "\"");
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, interface.data(), interface.size());
  return ok_status();
}

Status bring_up(int sock, const std::string& interface) {
  ifreq ifr;
  CONFPOD_TRY(name_interface(ifr, interface));
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) return net_error("SIOCGIFFLAGS " + interface);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) return net_error("SIOCSIFFLAGS " + interface);
  return ok_status();
}

Result<std::uint32_t> parse_ipv4(const std::string& text, const std::string& what) {
  in_addr addr{};
  if (::inet_pton(AF_INET, text.c_str(), &addr) != 1)
    return make_error("agent.network", what + " is not an IPv4 address: \"" + text + "\"");
  return addr.s_addr;
}

}  // namespace

Result<Ipv4Cidr> parse_ipv4_cidr(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos)
    return make_error("agent.network",
                      "address needs a prefix length (a.b.c.d/n): \"" + text + "\"");
  std::string prefix_text = text.substr(slash + 1);
  if (prefix_text.empty() || prefix_text.size() > 2 ||
      prefix_text.find_first_not_of("0123456789") != std::string::npos)
    return make_error("agent.network", "invalid prefix length in \"" + text + "\"");
  int prefix = std::stoi(prefix_text);
  if (prefix > 32) return make_error("agent.network", "prefix length above 32 in \"" + text + "\"");
  Ipv4Cidr cidr;
  CONFPOD_ASSIGN_OR_RETURN(cidr.address, parse_ipv4(text.substr(0, slash), "address"));
  std::uint32_t host_order = prefix == 0 ? 0u : ~0u << (32 - prefix);
  cidr.netmask = htonl(host_order);
  return cidr;
}

Status configure_network(const std::string& interface, const std::string& address,
                         const std::string& gateway) {
  CONFPOD_ASSIGN_OR_RETURN(Ipv4Cidr cidr, parse_ipv4_cidr(address));
  std::uint32_t gw = 0;
  if (!gateway.empty()) {
    CONFPOD_ASSIGN_OR_RETURN(gw, parse_ipv4(gateway, "gateway"));
  }
  vmm::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return net_error("socket");
  // Bringing lo up makes the kernel give it 127.0.0.1/8.
  CONFPOD_TRY(bring_up(sock.get(), "lo"));

  ifreq ifr;
  CONFPOD_TRY(name_interface(ifr, interface));
  sockaddr_in sin = inet_addr_of(cidr.address);
  std::memcpy(&ifr.ifr_addr, &sin, sizeof sin);
  if (::ioctl(sock.get(), SIOCSIFADDR, &ifr) != 0) return net_error("SIOCSIFADDR " + interface);
  sin = inet_addr_of(cidr.netmask);
  std::memcpy(&ifr.ifr_netmask, &sin, sizeof sin);
  if (::ioctl(sock.get(), SIOCSIFNETMASK, &ifr) != 0)
    return net_error("SIOCSIFNETMASK " + interface);
  CONFPOD_TRY(bring_up(sock.get(), interface));

  if (!gateway.empty()) {
    rtentry route{};
    sockaddr_in any = inet_addr_of(0);
    sockaddr_in via = inet_addr_of(gw);
    std::memcpy(&route.rt_dst, &any, sizeof any);
    std::memcpy(&route.rt_genmask, &any, sizeof any);
    std::memcpy(&route.rt_gateway, &via, sizeof via);
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    std::string dev = interface;  // rt_dev is a non-const char*
    route.rt_dev = dev.data();
    if (::ioctl(sock.get(), SIOCADDRT, &route) != 0 && errno != EEXIST)
      return net_error("SIOCADDRT default via " + gateway);
  }
  return ok_status();
}

}  // namespace confpod::guest::agent
