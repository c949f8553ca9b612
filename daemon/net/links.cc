#include "daemon/net/links.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "attest/base/unique_fd.h"

namespace confpod::net {
namespace {

struct LinkPut {
  void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
struct AddrPut {
  void operator()(rtnl_addr* addr) const { rtnl_addr_put(addr); }
};
using AddrPtr = std::unique_ptr<rtnl_addr, AddrPut>;
struct NlAddrPut {
  void operator()(nl_addr* addr) const { nl_addr_put(addr); }
};
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrPut>;
struct CacheFree {
  void operator()(nl_cache* cache) const { nl_cache_free(cache); }
};
using CachePtr = std::unique_ptr<nl_cache, CacheFree>;

// libnl reports errors as -NLE_*; NLE_PERM is the missing CAP_NET_ADMIN.
Error nl_error(const std::string& what, int err) {
  if (err == -NLE_PERM)
    return make_error("net.permission", what +
                                            ": permission denied (bridge networking needs "
                                            "CAP_NET_ADMIN; network = \"user\" does not)");
  return make_error("net.link", what + ": " + nl_geterror(err));
}

Error errno_error(const std::string& what, int err) {
  if (err == EPERM || err == EACCES)
    return make_error("net.permission", what + ": " + std::strerror(err) +
                                            " (bridge networking needs CAP_NET_ADMIN)");
  return make_error("net.link", what + ": " + std::strerror(err));
}

Status add_address(nl_sock* sock, int ifindex, int family, const void* bytes, unsigned size,
                   unsigned prefix, const std::string& link_name) {
  NlAddrPtr local(nl_addr_build(family, bytes, size));
  AddrPtr addr(rtnl_addr_alloc());
  if (!local || !addr) return make_error("net.link", "out of memory");
  nl_addr_set_prefixlen(local.get(), static_cast<int>(prefix));
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  rtnl_addr_set_family(addr.get(), family);
  int err = rtnl_addr_set_local(addr.get(), local.get());
  if (err == 0) {
    rtnl_addr_set_prefixlen(addr.get(), static_cast<int>(prefix));
    // IPv6 on a bridge: no duplicate address detection, the address is ours at once.
    if (family == AF_INET6) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
    err = rtnl_addr_add(sock, addr.get(), 0);
  }
  if (err < 0 && err != -NLE_EXIST) return nl_error("add address to " + link_name, err);
  return ok_status();
}

}  // namespace

void NlSockFree::operator()(nl_sock* sock) const { nl_socket_free(sock); }

Result<Links> Links::open() {
  NlSockPtr sock(nl_socket_alloc());
  if (!sock) return make_error("net.link", "nl_socket_alloc: out of memory");
  int err = nl_connect(sock.get(), NETLINK_ROUTE);
  if (err < 0) return nl_error("netlink connect", err);
  return Links(std::move(sock));
}

Result<int> Links::ifindex_of(const std::string& name) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  LinkPtr link(raw);
  if (err < 0) return nl_error("link " + name, err);
  return rtnl_link_get_ifindex(link.get());
}

bool Links::exists(const std::string& name) { return ifindex_of(name).ok(); }

std::optional<std::string> Links::master_of(const std::string& name) {
  rtnl_link* raw = nullptr;
  if (rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw) < 0) return std::nullopt;
  LinkPtr link(raw);
  int master = rtnl_link_get_master(link.get());
  if (master <= 0) return std::string();
  rtnl_link* raw_master = nullptr;
  if (rtnl_link_get_kernel(sock_.get(), master, nullptr, &raw_master) < 0) return std::string();
  LinkPtr master_link(raw_master);
  return std::string(rtnl_link_get_name(master_link.get()));
}

bool Links::is_up(const std::string& name) {
  rtnl_link* raw = nullptr;
  if (rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw) < 0) return false;
  LinkPtr link(raw);
  return (rtnl_link_get_flags(link.get()) & IFF_UP) != 0;
}

Status Links::set_up_and_master(const std::string& name, int master_ifindex) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  LinkPtr link(raw);
  if (err < 0) return nl_error("link " + name, err);
  LinkPtr change(rtnl_link_alloc());
  if (!change) return make_error("net.link", "out of memory");
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (master_ifindex > 0) rtnl_link_set_master(change.get(), master_ifindex);
  err = rtnl_link_change(sock_.get(), link.get(), change.get(), 0);
  if (err < 0) return nl_error("set " + name + " up", err);
  return ok_status();
}

bool Links::is_our_bridge(const std::string& name) {
  rtnl_link* raw = nullptr;
  if (rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw) < 0) return false;
  LinkPtr link(raw);
  const char* type = rtnl_link_get_type(link.get());
  const char* alias = rtnl_link_get_ifalias(link.get());
  return type != nullptr && std::string_view(type) == "bridge" && alias != nullptr &&
         std::string_view(alias).starts_with(kBridgeAlias);
}

Status Links::check_adoptable(rtnl_link* link, const std::string& name, std::uint32_t gateway4) {
  const char* type = rtnl_link_get_type(link);
  if (type == nullptr || std::string_view(type) != "bridge")
    return make_error("net.foreign_link",
                      "interface " + name + " exists and is not a bridge (" +
                          (type ? std::string(type) : std::string("a device")) +
                          "); confpodd never takes over an interface it did not make: choose "
                          "another bridge name");
  const char* alias = rtnl_link_get_ifalias(link);
  if (alias != nullptr && std::string_view(alias).starts_with(kBridgeAlias)) return ok_status();
  const int ifindex = rtnl_link_get_ifindex(link);
  std::string foreign;
  bool has_gateway = false;
  nl_cache* raw_links = nullptr;
  int err = rtnl_link_alloc_cache(sock_.get(), AF_UNSPEC, &raw_links);
  CachePtr links(raw_links);
  if (err < 0) return nl_error("list links", err);
  for (nl_object* obj = nl_cache_get_first(links.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    auto* member = reinterpret_cast<rtnl_link*>(obj);
    const char* member_name = rtnl_link_get_name(member);
    if (rtnl_link_get_master(member) == ifindex && member_name != nullptr &&
        !std::string_view(member_name).starts_with(kTapPrefix))
      foreign = "it has member " + std::string(member_name);
  }
  nl_cache* raw_addrs = nullptr;
  err = rtnl_addr_alloc_cache(sock_.get(), &raw_addrs);
  CachePtr addrs(raw_addrs);
  if (err < 0) return nl_error("list addresses", err);
  for (nl_object* obj = nl_cache_get_first(addrs.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    auto* addr = reinterpret_cast<rtnl_addr*>(obj);
    if (rtnl_addr_get_ifindex(addr) != ifindex || rtnl_addr_get_family(addr) != AF_INET) continue;
    nl_addr* local = rtnl_addr_get_local(addr);
    std::uint32_t be = 0;
    if (local == nullptr || nl_addr_get_len(local) != 4) continue;
    std::memcpy(&be, nl_addr_get_binary_addr(local), 4);
    if (ntohl(be) != gateway4)
      foreign = "it has address " + format_ipv4(ntohl(be));
    else
      has_gateway = true;
  }
  // An empty bridge is somebody's until it carries our gateway: only what an earlier confpodd
  // left (its gateway address on it) is adopted.
  if (foreign.empty() && !has_gateway) foreign = "it does not carry the gateway address";
  if (!foreign.empty())
    return make_error("net.foreign_link",
                      "bridge " + name + " exists and was not made by confpodd (" + foreign +
                          "); confpodd never takes over an interface it did not make: choose "
                          "another bridge name");
  return ok_status();
}

Result<std::vector<std::string>> Links::links_with_ra_routes() {
  nl_cache* raw_routes = nullptr;
  int err = rtnl_route_alloc_cache(sock_.get(), AF_INET6, 0, &raw_routes);
  CachePtr routes(raw_routes);
  if (err < 0) return nl_error("list IPv6 routes", err);
  std::vector<std::string> names;
  for (nl_object* obj = nl_cache_get_first(routes.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    auto* route = reinterpret_cast<rtnl_route*>(obj);
    if (rtnl_route_get_protocol(route) != RTPROT_RA) continue;
    rtnl_nexthop* hop = rtnl_route_nexthop_n(route, 0);
    rtnl_link* raw = nullptr;
    if (hop == nullptr ||
        rtnl_link_get_kernel(sock_.get(), rtnl_route_nh_get_ifindex(hop), nullptr, &raw) < 0)
      continue;
    LinkPtr link(raw);
    std::string name = rtnl_link_get_name(link.get());
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

Result<std::optional<std::string>> Links::subnet_in_use(const Ipv4Net& subnet,
                                                        const std::string& bridge) {
  auto found = ifindex_of(bridge);
  const int bridge_index = found.ok() ? *found : 0;
  auto link_name = [&](int ifindex) {
    rtnl_link* raw = nullptr;
    if (ifindex <= 0 || rtnl_link_get_kernel(sock_.get(), ifindex, nullptr, &raw) < 0)
      return std::string("?");
    LinkPtr link(raw);
    return std::string(rtnl_link_get_name(link.get()));
  };
  nl_cache* raw_addrs = nullptr;
  int err = rtnl_addr_alloc_cache(sock_.get(), &raw_addrs);
  CachePtr addrs(raw_addrs);
  if (err < 0) return nl_error("list addresses", err);
  for (nl_object* obj = nl_cache_get_first(addrs.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    auto* addr = reinterpret_cast<rtnl_addr*>(obj);
    if (rtnl_addr_get_family(addr) != AF_INET || rtnl_addr_get_ifindex(addr) == bridge_index)
      continue;
    nl_addr* local = rtnl_addr_get_local(addr);
    if (local == nullptr || nl_addr_get_len(local) != 4) continue;
    std::uint32_t be = 0;
    std::memcpy(&be, nl_addr_get_binary_addr(local), 4);
    const unsigned prefix = static_cast<unsigned>(rtnl_addr_get_prefixlen(addr));
    Ipv4Net theirs{ntohl(be) & (prefix == 0 ? 0 : ~0u << (32 - prefix)), prefix};
    if (subnet.contains(ntohl(be)) || overlaps(theirs, subnet))
      return std::optional<std::string>("address " + format_ipv4(ntohl(be)) + "/" +
                                        std::to_string(prefix) + " on " +
                                        link_name(rtnl_addr_get_ifindex(addr)));
  }
  nl_cache* raw_routes = nullptr;
  err = rtnl_route_alloc_cache(sock_.get(), AF_INET, 0, &raw_routes);
  CachePtr routes(raw_routes);
  if (err < 0) return nl_error("list routes", err);
  for (nl_object* obj = nl_cache_get_first(routes.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    auto* route = reinterpret_cast<rtnl_route*>(obj);
    if (rtnl_route_get_table(route) != RT_TABLE_MAIN || rtnl_route_get_type(route) != RTN_UNICAST)
      continue;
    nl_addr* dst = rtnl_route_get_dst(route);
    if (dst == nullptr || nl_addr_get_len(dst) != 4) continue;
    const unsigned prefix = nl_addr_get_prefixlen(dst);
    if (prefix == 0) continue;  // the default route overlaps everything, and that is fine
    std::uint32_t be = 0;
    std::memcpy(&be, nl_addr_get_binary_addr(dst), 4);
    Ipv4Net theirs{ntohl(be) & (~0u << (32 - prefix)), prefix};
    if (!overlaps(theirs, subnet)) continue;
    rtnl_nexthop* hop = rtnl_route_nexthop_n(route, 0);
    const int oif = hop != nullptr ? rtnl_route_nh_get_ifindex(hop) : 0;
    if (oif == bridge_index && bridge_index != 0) continue;
    return std::optional<std::string>("route " + format(theirs) + " via " + link_name(oif));
  }
  return std::optional<std::string>();
}

Status Links::ensure_bridge(const std::string& name, const std::string& network,
                            const Ipv4Net& subnet,
                            const std::optional<std::array<std::uint8_t, 16>>& gateway6,
                            unsigned prefix6) {
  const std::uint32_t gateway = gateway4(subnet);
  const std::string alias = std::string(kBridgeAlias) + network;
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  LinkPtr existing(raw);
  if (err >= 0) {
    CONFPOD_TRY(check_adoptable(existing.get(), name, gateway));
  } else {
    LinkPtr bridge(rtnl_link_alloc());
    if (!bridge) return make_error("net.link", "out of memory");
    rtnl_link_set_name(bridge.get(), name.c_str());
    err = rtnl_link_set_type(bridge.get(), "bridge");
    if (err < 0) return nl_error("bridge " + name, err);
    err = rtnl_link_add(sock_.get(), bridge.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err == -NLE_EXIST) {
      // It appeared between the lookup and the add: somebody's until shown otherwise.
      rtnl_link* raw_other = nullptr;
      err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw_other);
      LinkPtr other(raw_other);
      if (err < 0) return nl_error("link " + name, err);
      CONFPOD_TRY(check_adoptable(other.get(), name, gateway));
    } else if (err < 0) {
      return nl_error("create bridge " + name, err);
    } else {
      // Made here: if anything below fails, it goes again (nothing half-made stays).
      Status rest = configure_bridge(name, network, subnet, gateway6, prefix6);
      if (!rest.ok()) (void)remove(name);
      return rest;
    }
  }
  return configure_bridge(name, network, subnet, gateway6, prefix6);
}

Status Links::configure_bridge(const std::string& name, const std::string& network,
                               const Ipv4Net& subnet,
                               const std::optional<std::array<std::uint8_t, 16>>& gateway6,
                               unsigned prefix6) {
  const std::uint32_t gateway = gateway4(subnet);
  const std::string alias = std::string(kBridgeAlias) + network;
  int err = 0;
  CONFPOD_ASSIGN_OR_RETURN(auto in_use, subnet_in_use(subnet, name));
  if (in_use)
    return make_error("net.route_conflict", "network " + network + ": subnet " + format(subnet) +
                                                " is already reachable on this host (" + *in_use +
                                                "); choose a subnet the host does not use");
  CONFPOD_ASSIGN_OR_RETURN(int ifindex, ifindex_of(name));
  const std::uint32_t be = htonl(gateway);
  CONFPOD_TRY(add_address(sock_.get(), ifindex, AF_INET, &be, 4, subnet.prefix, name));
  if (gateway6)
    CONFPOD_TRY(add_address(sock_.get(), ifindex, AF_INET6, gateway6->data(), 16, prefix6, name));
  // Up, and marked as ours: the mark is what lets a later run (or network rm) touch it.
  rtnl_link* raw_now = nullptr;
  err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw_now);
  LinkPtr now(raw_now);
  if (err < 0) return nl_error("link " + name, err);
  LinkPtr change(rtnl_link_alloc());
  if (!change) return make_error("net.link", "out of memory");
  rtnl_link_set_flags(change.get(), IFF_UP);
  const char* current_alias = rtnl_link_get_ifalias(now.get());
  if (current_alias == nullptr || alias != current_alias)
    rtnl_link_set_ifalias(change.get(), alias.c_str());
  err = rtnl_link_change(sock_.get(), now.get(), change.get(), 0);
  if (err < 0) return nl_error("set bridge " + name + " up", err);
  return ok_status();
}

Status Links::ensure_tap(const std::string& name, const std::string& bridge) {
  CONFPOD_ASSIGN_OR_RETURN(int bridge_index, ifindex_of(bridge));
  if (!exists(name)) {
    UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!tun) return errno_error("open /dev/net/tun for " + name, errno);
    ifreq req{};
    std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
    // QEMU attaches with IFF_VNET_HDR itself; the device type and IFF_NO_PI must match.
    req.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (::ioctl(tun.get(), TUNSETIFF, &req) != 0) return errno_error("create tap " + name, errno);
    if (::ioctl(tun.get(), TUNSETPERSIST, 1) != 0)
      return errno_error("make tap " + name + " persistent", errno);
  }
  return set_up_and_master(name, bridge_index);
}

Status Links::remove(const std::string& name) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  LinkPtr link(raw);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return ok_status();
  if (err < 0) return nl_error("link " + name, err);
  err = rtnl_link_delete(sock_.get(), link.get());
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV)
    return nl_error("delete link " + name, err);
  return ok_status();
}

Result<std::vector<std::string>> Links::names_with_prefix(std::string_view prefix) {
  nl_cache* raw = nullptr;
  int err = rtnl_link_alloc_cache(sock_.get(), AF_UNSPEC, &raw);
  CachePtr cache(raw);
  if (err < 0) return nl_error("list links", err);
  std::vector<std::string> names;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    const char* name = rtnl_link_get_name(reinterpret_cast<rtnl_link*>(obj));
    if (name != nullptr && std::string_view(name).starts_with(prefix)) names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status write_sysctl(const std::string& key, const std::string& value) {
  const std::string path = "/proc/sys/" + key;
  {
    std::ifstream in(path);
    std::string current;
    if (in >> current && current == value) return ok_status();  // already so: write nothing
  }
  std::ofstream out(path);
  out << value << '\n';
  out.flush();
  if (!out) {
    std::string name = key;
    std::replace(name.begin(), name.end(), '/', '.');
    return make_error("net.sysctl", "cannot write " + value + " to " + path + " (set sysctl " +
                                        name + "=" + value +
                                        " on this host, or let confpodd write it)");
  }
  return ok_status();
}

}  // namespace confpod::net

namespace confpod::net {

Status enable_ipv6_forwarding() {
  {
    std::ifstream in("/proc/sys/net/ipv6/conf/all/forwarding");
    std::string current;
    if (in >> current && current == "1") return ok_status();
  }
  CONFPOD_ASSIGN_OR_RETURN(Links links, Links::open());
  CONFPOD_ASSIGN_OR_RETURN(auto ra_links, links.links_with_ra_routes());
  for (const std::string& name : ra_links) {
    std::ifstream in("/proc/sys/net/ipv6/conf/" + name + "/accept_ra");
    std::string accept_ra;
    if (in >> accept_ra && accept_ra == "1")
      return make_error("net.sysctl",
                        "IPv6 pods need net.ipv6.conf.all.forwarding=1, which would make " + name +
                            " drop the IPv6 routes it learns from router advertisements; set "
                            "net.ipv6.conf." +
                            name + ".accept_ra=2 first (or forwarding=1 yourself)");
  }
  return write_sysctl("net/ipv6/conf/all/forwarding", "1");
}

}  // namespace confpod::net
