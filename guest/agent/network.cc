#include "guest/agent/network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/ipv6.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "attest/base/unique_fd.h"

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
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
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

Result<std::string> interface_with_mac(const std::string& mac) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return net_error("socket");
  struct NameIndexFree {
    void operator()(struct if_nameindex* p) const { if_freenameindex(p); }
  };
  std::unique_ptr<struct if_nameindex, NameIndexFree> list(::if_nameindex());
  if (!list) return net_error("if_nameindex");
  for (struct if_nameindex* i = list.get(); i->if_index != 0; ++i) {
    ifreq ifr;
    if (!name_interface(ifr, i->if_name).ok()) continue;
    if (::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0) continue;
    char text[18];
    const auto* b = reinterpret_cast<const unsigned char*>(ifr.ifr_hwaddr.sa_data);
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
                  b[5]);
    if (mac == text) return std::string(i->if_name);
  }
  return make_error("agent.network", "no network interface has MAC " + mac);
}

Status configure_guest_network(const InitNetwork& network) {
  std::string current = network.interface;
  if (!network.mac.empty()) {
    CONFPOD_ASSIGN_OR_RETURN(current, interface_with_mac(network.mac));
  }
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return net_error("socket");
  if (current != network.interface) {
    // Renaming needs the link down; it is, until configure_network brings it up.
    ifreq ifr;
    CONFPOD_TRY(name_interface(ifr, current));
    if (network.interface.size() >= IFNAMSIZ)
      return make_error("agent.network", "invalid interface name \"" + network.interface + "\"");
    std::memcpy(ifr.ifr_newname, network.interface.c_str(), network.interface.size() + 1);
    if (::ioctl(sock.get(), SIOCSIFNAME, &ifr) != 0)
      return net_error("rename " + current + " to " + network.interface);
  }
  // The only addresses and routes are the attested ones: router advertisements and
  // redirects come from the host's network, which is hostile input to the guest. Set before
  // the link comes up, so no RA is ever acted on.
  for (const char* key : {"ipv6/conf/%s/accept_ra", "ipv6/conf/%s/autoconf",
                          "ipv6/conf/%s/accept_redirects", "ipv4/conf/%s/accept_redirects"}) {
    char path[128];
    std::snprintf(path, sizeof path, key, network.interface.c_str());
    UniqueFd f(::open(("/proc/sys/net/" + std::string(path)).c_str(), O_WRONLY | O_CLOEXEC));
    if (!f && errno == ENOENT) continue;  // a kernel without IPv6 takes no RA either
    if (!f || ::write(f.get(), "0\n", 2) != 2)
      return net_error(std::string("set net.") + path + " = 0");
  }
  CONFPOD_TRY(configure_network(network.interface, network.address, network.gateway));
  if (network.address6.empty()) return ok_status();

  const std::size_t slash = network.address6.find('/');
  in6_ifreq req{};
  if (slash == std::string::npos ||
      ::inet_pton(AF_INET6, network.address6.substr(0, slash).c_str(), &req.ifr6_addr) != 1)
    return make_error("agent.network", "address6 is not IPv6/len: \"" + network.address6 + "\"");
  req.ifr6_prefixlen = static_cast<std::uint32_t>(std::stoul(network.address6.substr(slash + 1)));
  req.ifr6_ifindex = static_cast<int>(::if_nametoindex(network.interface.c_str()));
  if (req.ifr6_ifindex == 0) return net_error("if_nametoindex " + network.interface);
  {
    // No duplicate address detection: the host hands out the addresses, and DAD would hold
    // the address back for a second or more.
    std::string dad = "/proc/sys/net/ipv6/conf/" + network.interface + "/accept_dad";
    UniqueFd f(::open(dad.c_str(), O_WRONLY | O_CLOEXEC));
    if (f) (void)!::write(f.get(), "0\n", 2);
  }
  UniqueFd sock6(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock6) return net_error("socket AF_INET6");
  if (::ioctl(sock6.get(), SIOCSIFADDR, &req) != 0 && errno != EEXIST)
    return net_error("SIOCSIFADDR (IPv6) " + network.interface);
  if (!network.gateway6.empty()) {
    in6_rtmsg route{};
    if (::inet_pton(AF_INET6, network.gateway6.c_str(), &route.rtmsg_gateway) != 1)
      return make_error("agent.network", "gateway6 is not IPv6: \"" + network.gateway6 + "\"");
    route.rtmsg_flags = RTF_UP | RTF_GATEWAY;
    route.rtmsg_metric = 1;
    route.rtmsg_ifindex = req.ifr6_ifindex;
    if (::ioctl(sock6.get(), SIOCADDRT, &route) != 0 && errno != EEXIST)
      return net_error("SIOCADDRT (IPv6) default via " + network.gateway6);
  }
  return ok_status();
}

namespace {

// Replaces <root>/etc/<name> with `content`: etc resolved inside the root, the file itself
// unlinked first and created with O_EXCL|O_NOFOLLOW (never written through a link).
Status write_in_etc(int root, const std::string& name, const std::string& content) {
  ::mkdirat(root, "etc", 0755);  // EEXIST (a directory, or a link resolved below) is fine
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd etc(static_cast<int>(::syscall(SYS_openat2, root, "etc", &how, sizeof how)));
  if (!etc) return net_error("open etc in the container root");
  if (::unlinkat(etc.get(), name.c_str(), 0) != 0 && errno != ENOENT)
    return net_error("unlink etc/" + name);
  UniqueFd file(::openat(etc.get(), name.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!file) return net_error("create etc/" + name);
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(file.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return net_error("write etc/" + name);
    done += static_cast<std::size_t>(n);
  }
  return ok_status();
}

}  // namespace

Status write_name_files(const std::string& rootfs, const InitNetwork& network,
                        const std::string& hostname) {
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return net_error("open " + rootfs);
  std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  if (!network.address.empty())
    hosts += network.address.substr(0, network.address.find('/')) + "\t" + hostname + "\n";
  else
    hosts += "127.0.1.1\t" + hostname + "\n";
  if (!network.address6.empty())
    hosts += network.address6.substr(0, network.address6.find('/')) + "\t" + hostname + "\n";
  CONFPOD_TRY(write_in_etc(root.get(), "hosts", hosts));
  if (network.dns.empty()) return ok_status();
  std::string resolv;
  for (const std::string& server : network.dns) resolv += "nameserver " + server + "\n";
  return write_in_etc(root.get(), "resolv.conf", resolv);
}

}  // namespace confpod::guest::agent
