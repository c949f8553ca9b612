#include "daemon/net/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

#include "attest/base/bytes.h"

namespace confpod::net {
namespace {

Error invalid(std::string message) { return make_error("net.invalid", std::move(message)); }

std::optional<unsigned> parse_prefix(std::string_view text, unsigned max) {
  if (text.empty() || text.size() > 3) return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  return v;
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool name_ok(std::string_view name, std::size_t max) {
  if (name.empty() || name.size() > max) return false;
  if (name[0] == '-' || name[0] == '.' || name[0] == '_') return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

// Bits [prefix, 128) of `a` zero?
bool host_bits_zero(const std::array<std::uint8_t, 16>& a, unsigned prefix) {
  for (unsigned bit = prefix; bit < 128; ++bit)
    if (a[bit / 8] & (0x80u >> (bit % 8))) return false;
  return true;
}

std::array<std::uint8_t, 16> masked(std::array<std::uint8_t, 16> a, unsigned prefix) {
  for (unsigned bit = prefix; bit < 128; ++bit) a[bit / 8] &= ~(0x80u >> (bit % 8));
  return a;
}

}  // namespace

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
  // inet_pton accepts exactly the dotted quad (no octal, no short forms).
  if (text.empty() || text.size() > 15) return std::nullopt;
  std::string s(text);
  in_addr addr{};
  if (::inet_pton(AF_INET, s.c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

std::string format_ipv4(std::uint32_t address) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", address >> 24, (address >> 16) & 255,
                (address >> 8) & 255, address & 255);
  return buf;
}

std::optional<std::array<std::uint8_t, 16>> parse_ipv6(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  std::string s(text);
  std::array<std::uint8_t, 16> out{};
  if (::inet_pton(AF_INET6, s.c_str(), out.data()) != 1) return std::nullopt;
  return out;
}

std::string format_ipv6(const std::array<std::uint8_t, 16>& address) {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, address.data(), buf, sizeof buf);
  return buf;
}

Result<Ipv4Net> parse_subnet4(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string shown = "\"" + std::string(text.substr(0, 64)) + "\"";
  if (slash == std::string_view::npos)
    return invalid("subnet " + shown + " must be IPv4 CIDR a.b.c.d/N");
  auto addr = parse_ipv4(text.substr(0, slash));
  if (!addr) return invalid("subnet " + shown + ": the address is not a dotted-quad IPv4");
  auto prefix = parse_prefix(text.substr(slash + 1), 32);
  if (!prefix) return invalid("subnet " + shown + ": the prefix length is not 0..32");
  // /30 leaves the gateway and one pod; shorter than /8 is a typo, not a pod subnet.
  if (*prefix < 8 || *prefix > 30)
    return invalid("subnet " + shown + ": prefix length must be 8..30");
  Ipv4Net net{*addr, *prefix};
  if ((*addr & ~net.mask()) != 0)
    return invalid("subnet " + shown + " has host bits set; the network is " +
                   format(Ipv4Net{*addr & net.mask(), *prefix}));
  return net;
}

Result<Ipv6Net> parse_subnet6(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string shown = "\"" + std::string(text.substr(0, 64)) + "\"";
  if (slash == std::string_view::npos)
    return invalid("subnet6 " + shown + " must be IPv6 CIDR prefix/N");
  auto addr = parse_ipv6(text.substr(0, slash));
  if (!addr) return invalid("subnet6 " + shown + ": the address is not IPv6");
  auto prefix = parse_prefix(text.substr(slash + 1), 128);
  if (!prefix) return invalid("subnet6 " + shown + ": the prefix length is not 0..128");
  // Pod addresses mirror the IPv4 host offset, so at least 8 host bits are needed; /64 is
  // what SLAAC-minded tools expect.
  if (*prefix < 64 || *prefix > 120)
    return invalid("subnet6 " + shown + ": prefix length must be 64..120");
  if (!host_bits_zero(*addr, *prefix))
    return invalid("subnet6 " + shown + " has host bits set; the network is " +
                   format(Ipv6Net{masked(*addr, *prefix), *prefix}));
  return Ipv6Net{*addr, *prefix};
}

std::string format(const Ipv4Net& net) {
  return format_ipv4(net.address) + "/" + std::to_string(net.prefix);
}
std::string format(const Ipv6Net& net) {
  return format_ipv6(net.address) + "/" + std::to_string(net.prefix);
}

bool overlaps(const Ipv4Net& a, const Ipv4Net& b) {
  const unsigned p = std::min(a.prefix, b.prefix);
  const std::uint32_t mask = p == 0 ? 0 : ~0u << (32 - p);
  return (a.address & mask) == (b.address & mask);
}

bool overlaps(const Ipv6Net& a, const Ipv6Net& b) {
  const unsigned p = std::min(a.prefix, b.prefix);
  return masked(a.address, p) == masked(b.address, p);
}

std::uint32_t gateway4(const Ipv4Net& net) { return net.address + 1; }

std::array<std::uint8_t, 16> gateway6(const Ipv6Net& net) {
  auto a = net.address;
  a[15] |= 1;
  return a;
}

std::optional<std::uint32_t> allocate4(const Ipv4Net& net, const std::set<std::uint32_t>& taken) {
  const std::uint32_t last = net.broadcast();
  for (std::uint32_t a = gateway4(net) + 1; a < last; ++a)
    if (!taken.contains(a)) return a;
  return std::nullopt;
}

std::array<std::uint8_t, 16> address6_for(const Ipv4Net& net4, const Ipv6Net& net6,
                                          std::uint32_t address4) {
  std::uint32_t offset = address4 - net4.address;
  std::array<std::uint8_t, 16> host{};
  for (int i = 15; i >= 12; --i) {
    host[i] = static_cast<std::uint8_t>(offset & 0xff);
    offset >>= 8;
  }
  // Only the host bits of subnet6 (network validation requires enough of them).
  for (unsigned bit = 0; bit < net6.prefix; ++bit) host[bit / 8] &= ~(0x80u >> (bit % 8));
  auto a = net6.address;
  for (int i = 0; i < 16; ++i) a[i] |= host[i];
  return a;
}

std::string tap_name_for(std::uint32_t address4) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "cpt%08x", address4);
  return buf;
}

std::string mac_for(std::uint32_t address4) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "02:cf:%02x:%02x:%02x:%02x", address4 >> 24,
                (address4 >> 16) & 255, (address4 >> 8) & 255, address4 & 255);
  return buf;
}

std::optional<std::array<std::uint8_t, 6>> parse_mac(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  std::string digits;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i % 3 == 2) {
      if (text[i] != ':') return std::nullopt;
    } else {
      digits += text[i];
    }
  }
  auto bytes = from_hex(digits);
  if (!bytes.ok()) return std::nullopt;
  std::array<std::uint8_t, 6> mac{};
  std::copy(bytes->begin(), bytes->end(), mac.begin());
  return mac;
}

std::array<std::uint8_t, 16> link_local_for(const std::array<std::uint8_t, 6>& mac) {
  // fe80::/64 + the MAC split by ff:fe, with the universal/local bit flipped (RFC 4291 App. A).
  return {0xfe,   0x80,   0,
          0,      0,      0,
          0,      0,      static_cast<std::uint8_t>(mac[0] ^ 0x02),
          mac[1], mac[2], 0xff,
          0xfe,   mac[3], mac[4],
          mac[5]};
}

bool is_valid_network_name(std::string_view name) { return name_ok(name, 32); }
bool is_valid_ifname(std::string_view name) { return name_ok(name, 15); }

}  // namespace confpod::net
