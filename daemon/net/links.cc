#include "daemon/net/links.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
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

Status Links::ensure_bridge(const std::string& name, std::uint32_t gateway4, unsigned prefix4,
                            const std::optional<std::array<std::uint8_t, 16>>& gateway6,
                            unsigned prefix6) {
  if (!exists(name)) {
    LinkPtr bridge(rtnl_link_alloc());
    if (!bridge) return make_error("net.link", "out of memory");
    rtnl_link_set_name(bridge.get(), name.c_str());
    int err = rtnl_link_set_type(bridge.get(), "bridge");
    if (err < 0) return nl_error("bridge " + name, err);
    err = rtnl_link_add(sock_.get(), bridge.get(), NLM_F_CREATE);
    if (err < 0 && err != -NLE_EXIST) return nl_error("create bridge " + name, err);
  }
  CONFPOD_ASSIGN_OR_RETURN(int ifindex, ifindex_of(name));
  const std::uint32_t be = htonl(gateway4);
  CONFPOD_TRY(add_address(sock_.get(), ifindex, AF_INET, &be, 4, prefix4, name));
  if (gateway6)
    CONFPOD_TRY(add_address(sock_.get(), ifindex, AF_INET6, gateway6->data(), 16, prefix6, name));
  return set_up_and_master(name, 0);
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
