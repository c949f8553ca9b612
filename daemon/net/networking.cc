#include "daemon/net/networking.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "attest/base/unique_fd.h"
#include "daemon/pods/log.h"

namespace confpod::net {
namespace {

bool is_mode(std::string_view network) { return network == kModeUser || network == kModeNone; }

bool on_bridge(const Lease& lease) { return !lease.network.empty() && !is_mode(lease.network); }

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string port_text(const spec::Port& p) {
  return p.host_ip + ":" + std::to_string(p.host_port) + "/" + p.protocol;
}

}  // namespace

Result<std::unique_ptr<Networking>> Networking::create(NetworkingOptions options,
                                                       store::Store& store) {
  std::unique_ptr<Networking> self(new Networking(std::move(options), store));
  for (const NetworkDef& def : self->options_.config_networks) {
    CONFPOD_ASSIGN_OR_RETURN(Network n, validate_network(def));
    CONFPOD_TRY(check_compatible(n, self->networks_));
    n.def.from_config = true;
    self->networks_.push_back(std::move(n));
  }
  CONFPOD_ASSIGN_OR_RETURN(auto stored, store.list_networks());
  for (const store::NetworkRecord& r : stored) {
    NetworkDef def;
    def.name = r.name;
    def.bridge = r.bridge;
    def.subnet = r.subnet;
    def.subnet6 = r.subnet6;
    def.masquerade = r.masquerade;
    def.dns = dns_from_text(r.dns);
    def.from_config = false;
    auto n = validate_network(def);
    Status fits = n.ok() ? check_compatible(*n, self->networks_) : n.error();
    if (!fits.ok()) {
      // confpod.toml gained a network that clashes with one created earlier: the declared
      // one wins; the stored one stays in SQLite, unused, until removed.
      pods::log_error("stored network ignored",
                      {{"network", r.name}, {"error", fits.error().describe()}});
      continue;
    }
    self->networks_.push_back(std::move(*n));
  }
  return self;
}

const Network* Networking::find(std::string_view name) const {
  for (const Network& n : networks_)
    if (n.def.name == name) return &n;
  return nullptr;
}

std::vector<std::string> Networking::pods_on(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [pod, entry] : pods_)
    if (entry.lease.network == name) out.push_back(pod);
  return out;
}

Result<Network> Networking::create_network(const NetworkDef& requested) {
  NetworkDef def = requested;
  def.from_config = false;
  CONFPOD_ASSIGN_OR_RETURN(Network n, validate_network(def));
  CONFPOD_TRY(check_compatible(n, networks_));
  // Refused now rather than at the first pod's start: a subnet the host already reaches, or
  // a bridge name taken by an interface confpodd did not make. (An unprivileged daemon can
  // still read links; one that cannot open netlink at all learns it at the first start.)
  if (open_links().ok()) {
    CONFPOD_ASSIGN_OR_RETURN(auto in_use, links_->subnet_in_use(n.subnet, n.def.bridge));
    if (in_use)
      return make_error("net.route_conflict", "network " + n.def.name + ": subnet " + n.def.subnet +
                                                  " is already reachable on this host (" + *in_use +
                                                  ")");
    if (links_->exists(n.def.bridge) && !links_->is_our_bridge(n.def.bridge))
      return make_error("net.foreign_link", "network " + n.def.name + ": interface " +
                                                n.def.bridge +
                                                " exists and was not made by confpodd");
  }
  store::NetworkRecord record{n.def.name,    n.def.bridge,     n.def.subnet,
                              n.def.subnet6, n.def.masquerade, dns_to_text(n.def.dns)};
  Status stored = store_.insert_network(record);
  if (!stored.ok()) {
    if (stored.error().code == "store.exists")
      return make_error("net.exists", "a network named " + n.def.name + " already exists");
    return stored.take_error();
  }
  networks_.push_back(n);
  pods::log_info("network created",
                 {{"network", n.def.name}, {"bridge", n.def.bridge}, {"subnet", n.def.subnet}});
  return n;
}

Status Networking::remove_network(std::string_view name) {
  auto it = std::find_if(networks_.begin(), networks_.end(),
                         [&](const Network& n) { return n.def.name == name; });
  if (it == networks_.end())
    return make_error("net.not_found",
                      "no network named \"" + std::string(name.substr(0, 64)) + "\"");
  if (it->def.from_config)
    return make_error("net.config",
                      "network " + it->def.name + " is declared in confpod.toml; remove it there");
  if (auto pods = pods_on(name); !pods.empty())
    return make_error("net.in_use", "network " + it->def.name + " still has pods: " + joined(pods));
  CONFPOD_TRY(store_.remove_network(name));
  const std::string bridge = it->def.bridge;
  networks_.erase(it);
  sysctls_done_.erase(bridge);
  CONFPOD_TRY(open_links());
  // Only a bridge confpodd made and marked: never an interface that merely has the name.
  if (links_->is_our_bridge(bridge)) {
    CONFPOD_TRY(links_->remove(bridge));
  } else if (links_->exists(bridge)) {
    pods::log_warning("bridge not removed: not made by confpodd", {{"bridge", bridge}});
  }
  pods::log_info("network removed", {{"network", std::string(name)}});
  return ok_status();
}

Status Networking::check_port_free_on_host(const spec::Port& port) const {
  const bool udp = port.protocol == "udp";
  UniqueFd fd(::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
  if (!fd) return make_error("net.io", std::string("socket: ") + std::strerror(errno));
  // Connections in TIME_WAIT do not hold a port; a listener or a bound socket does.
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port.host_port);
  sa.sin_addr.s_addr = htonl(parse_ipv4(port.host_ip).value_or(0));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) return ok_status();
  const int err = errno;
  if (err == EADDRINUSE)
    return make_error("net.port_in_use", "host port " + port_text(port) + " is in use on the host");
  if (err == EADDRNOTAVAIL)
    return make_error("net.invalid", "host_ip " + port.host_ip + " is not an address of this host");
  // EACCES for ports below 1024 without CAP_NET_BIND_SERVICE: not a conflict.
  return ok_status();
}

Status Networking::check_port_address(const std::string& pod, const spec::Port& port) const {
  const std::uint32_t host_ip = parse_ipv4(port.host_ip).value_or(0);
  for (const Network& n : networks_) {
    // A pod network's address (the gateway above all) is the pods' side of the host: a port
    // published there would be reachable only from pods and could shadow the KBS or DNS.
    if (host_ip != 0 && n.subnet.contains(host_ip))
      return make_error("net.invalid", "pod " + pod + ": host_ip " + port.host_ip +
                                           " is in pod network " + n.def.name + " (" +
                                           n.def.subnet + "); publish on a host address");
  }
  if (options_.kbs && port.protocol == "tcp" && port.host_port == options_.kbs->guest_port &&
      options_.kbs_guest_url.empty())
    return make_error("net.port_in_use",
                      "host port " + port_text(port) + " is the port pods reach the KBS on");
  return ok_status();
}

Result<Lease> Networking::reserve(const std::string& pod, const std::string& requested,
                                  const std::vector<spec::Port>& ports) {
  Lease lease;
  lease.network = requested.empty() ? options_.pod_network : requested;
  if (lease.network == kModeNone && !ports.empty())
    return make_error("spec.invalid", "pod " + pod + " publishes ports but has network \"none\"");
  const Network* network = nullptr;
  if (!is_mode(lease.network)) {
    network = find(lease.network);
    if (network == nullptr)
      return make_error("net.not_found",
                        "pod " + pod + ": no network named \"" + lease.network + "\"");
  }
  for (const spec::Port& port : ports) {
    CONFPOD_TRY(check_port_address(pod, port));
    for (const auto& [other, entry] : pods_) {
      if (other == pod) continue;
      for (const spec::Port& taken : entry.ports)
        if (spec::ports_conflict(taken, port))
          return make_error("net.port_in_use", "host port " + port_text(port) +
                                                   " is already published by pod " + other);
    }
    CONFPOD_TRY(check_port_free_on_host(port));
  }
  if (network == nullptr) return lease;
  // Every pod's address, not only this network's: the store's unique index spans them all
  // (a stored network that confpod.toml now overlaps may still have pods).
  std::set<std::uint32_t> taken;
  for (const auto& [other, entry] : pods_)
    if (auto a = parse_ipv4(entry.lease.address)) taken.insert(*a);
  auto address = allocate4(network->subnet, taken);
  if (!address)
    return make_error("net.exhausted", "network " + network->def.name + " (" + network->def.subnet +
                                           ") has no free address left");
  lease.address = format_ipv4(*address);
  lease.mac = mac_for(*address);
  if (network->subnet6)
    lease.address6 = format_ipv6(address6_for(network->subnet, *network->subnet6, *address));
  return lease;
}

Status Networking::add_pod(const std::string& pod, const Lease& lease,
                           std::vector<spec::Port> ports) {
  pods_[pod] = PodEntry{lease, std::move(ports)};
  if (!on_bridge(lease)) return ok_status();
  Status applied = apply_firewall();
  if (!applied.ok()) pods_.erase(pod);
  return applied;
}

Result<spec::PodNetwork> Networking::guest_network(const Lease& lease) const {
  spec::PodNetwork out;
  if (lease.network.empty() || lease.network == kModeUser) return out;
  if (lease.network == kModeNone) {
    out.kind = spec::PodNetwork::Kind::kNone;
    out.address.clear();
    out.gateway.clear();
    out.dns.clear();
    return out;
  }
  const Network* network = find(lease.network);
  if (network == nullptr)
    return make_error("net.not_found", "no network named \"" + lease.network + "\"");
  auto address = parse_ipv4(lease.address);
  if (!address || !network->subnet.contains(*address))
    return make_error("net.invalid", "address " + lease.address + " is not in network " +
                                         network->def.name + " (" + network->def.subnet + ")");
  out.kind = spec::PodNetwork::Kind::kTap;
  out.tap = tap_name_for(*address);
  out.mac = lease.mac.empty() ? mac_for(*address) : lease.mac;
  out.address = lease.address + "/" + std::to_string(network->subnet.prefix);
  out.gateway = format_ipv4(network->gateway());
  if (network->subnet6 && !lease.address6.empty()) {
    out.address6 = lease.address6 + "/" + std::to_string(network->subnet6->prefix);
    out.gateway6 = format_ipv6(gateway6(*network->subnet6));
  }
  out.dns = network->def.dns;
  out.vhost = options_.vhost_net;
  return out;
}

std::string Networking::kbs_url(const Lease& lease) const {
  if (!options_.kbs_guest_url.empty()) return options_.kbs_guest_url;
  if (lease.network.empty() || lease.network == kModeUser) return options_.user_kbs_url;
  if (lease.network == kModeNone || !options_.kbs) return "";
  const Network* network = find(lease.network);
  if (network == nullptr) return "";
  return std::string(options_.kbs_tls ? "https://" : "http://") + format_ipv4(network->gateway()) +
         ":" + std::to_string(options_.kbs->guest_port);
}

Status Networking::open_links() {
  if (links_) return ok_status();
  CONFPOD_ASSIGN_OR_RETURN(Links links, Links::open());
  links_.emplace(std::move(links));
  return ok_status();
}

Status Networking::ensure_links(const Network& network) {
  CONFPOD_TRY(open_links());
  std::optional<std::array<std::uint8_t, 16>> gw6;
  if (network.subnet6) gw6 = gateway6(*network.subnet6);
  CONFPOD_TRY(links_->ensure_bridge(network.def.bridge, network.def.name, network.subnet, gw6,
                                    network.subnet6 ? network.subnet6->prefix : 0));
  if (!sysctls_done_.contains(network.def.bridge)) {
    // Routing between the bridge and the uplink, and (for the KBS forward to the host's
    // loopback and host-local clients of published ports) 127/8 on the bridge.
    CONFPOD_TRY(write_sysctl("net/ipv4/ip_forward", "1"));
    CONFPOD_TRY(write_sysctl("net/ipv4/conf/" + network.def.bridge + "/route_localnet", "1"));
    if (network.subnet6) CONFPOD_TRY(enable_ipv6_forwarding());
    sysctls_done_.insert(network.def.bridge);
  }
  return ok_status();
}

Status Networking::prepare(const std::string& pod) {
  auto it = pods_.find(pod);
  if (it == pods_.end() || !on_bridge(it->second.lease)) return ok_status();
  const Network* network = find(it->second.lease.network);
  if (network == nullptr)
    return make_error("net.not_found",
                      "pod " + pod + ": no network named \"" + it->second.lease.network + "\"");
  CONFPOD_ASSIGN_OR_RETURN(spec::PodNetwork guest, guest_network(it->second.lease));
  CONFPOD_TRY(ensure_links(*network));
  // A start that fails here leaves no tap behind (a tap that was there stays: recover() or
  // vm_exited() own it).
  const bool had_tap = links_->exists(guest.tap);
  Status wired = links_->ensure_tap(guest.tap, network->def.bridge);
  // Every start also checks that the tables are still as written (not flushed meanwhile).
  if (wired.ok()) wired = apply_firewall(true);
  if (!wired.ok() && !had_tap) (void)links_->remove(guest.tap);
  return wired;
}

void Networking::vm_exited(const std::string& pod) {
  auto it = pods_.find(pod);
  if (it == pods_.end() || !on_bridge(it->second.lease)) return;
  auto address = parse_ipv4(it->second.lease.address);
  if (!address) return;
  if (!open_links().ok()) return;
  Status removed = links_->remove(tap_name_for(*address));
  if (!removed.ok())
    pods::log_warning("cannot remove tap", {{"pod", pod}, {"error", removed.error().describe()}});
}

Status Networking::remove_pod(const std::string& pod) {
  auto it = pods_.find(pod);
  if (it == pods_.end()) return ok_status();
  const bool bridged = on_bridge(it->second.lease);
  if (bridged) vm_exited(pod);
  pods_.erase(it);
  // When this fails the pod's rules stay until the next write succeeds (the next change, or
  // the next nftables notification); they name an address no pod has.
  return bridged ? apply_firewall() : ok_status();
}

Status Networking::recover(const std::vector<PodNet>& pods) {
  pods_.clear();
  std::set<std::string> live_taps;
  bool any_bridged = false;
  for (const PodNet& p : pods) {
    pods_[p.name] = PodEntry{p.lease, p.ports};
    if (!on_bridge(p.lease)) continue;
    any_bridged = true;
    if (find(p.lease.network) == nullptr) {
      // Its network left confpod.toml while the pod ran: there are no rules for that bridge
      // any more, so the VM is cut off (its tap goes) rather than left on an open bridge.
      pods::log_error("pod's network is gone; its VM loses its link",
                      {{"pod", p.name}, {"network", p.lease.network}});
      continue;
    }
    if (auto a = parse_ipv4(p.lease.address); a && p.vm_running) live_taps.insert(tap_name_for(*a));
  }
  // Taps of VMs that are gone (the daemon died before it could remove them, or the VM ended
  // while it was down). Only read when nothing is bridged: an unprivileged daemon with pods on
  // "user" never needs netlink.
  auto links = Links::open();
  if (links.ok()) {
    links_.emplace(std::move(*links));
    auto taps = links_->names_with_prefix(kTapPrefix);
    if (taps.ok()) {
      for (const std::string& tap : *taps) {
        if (live_taps.contains(tap)) continue;
        Status removed = links_->remove(tap);
        if (!removed.ok())
          pods::log_warning("cannot remove stale tap",
                            {{"tap", tap}, {"error", removed.error().describe()}});
        else
          pods::log_info("removed stale tap", {{"tap", tap}});
      }
    }
  } else if (any_bridged) {
    return links.take_error();
  }
  Status applied = apply_firewall(true);
  if (!applied.ok() && any_bridged) return applied;
  if (!applied.ok())
    pods::log_warning("cannot check the nftables table", {{"error", applied.error().describe()}});
  return ok_status();
}

FirewallModel Networking::firewall_model() const {
  FirewallModel model;
  std::set<std::string> used;
  for (const auto& [pod, entry] : pods_) {
    if (!on_bridge(entry.lease) || find(entry.lease.network) == nullptr) continue;
    used.insert(entry.lease.network);
    auto address = parse_ipv4(entry.lease.address);
    if (!address) continue;
    FirewallPod fp;
    fp.tap = tap_name_for(*address);
    fp.mac = parse_mac(entry.lease.mac).value_or(*parse_mac(mac_for(*address)));
    fp.address = *address;
    if (!entry.lease.address6.empty()) fp.address6 = parse_ipv6(entry.lease.address6);
    model.pods.push_back(fp);
    for (const spec::Port& p : entry.ports) {
      PublishedPort pp;
      pp.protocol = p.protocol;
      pp.host_ip = parse_ipv4(p.host_ip).value_or(0);
      pp.host_port = p.host_port;
      pp.pod_address = *address;
      pp.guest_port = p.guest_port;
      model.ports.push_back(pp);
    }
  }
  for (const Network& n : networks_)
    if (used.contains(n.def.name))
      model.networks.push_back({n.def.bridge, n.subnet, n.subnet6, n.def.masquerade});
  if (options_.kbs_guest_url.empty()) model.kbs = options_.kbs;
  return model;
}

std::vector<spec::Port> Networking::ports_of(const std::string& pod) const {
  auto it = pods_.find(pod);
  return it == pods_.end() ? std::vector<spec::Port>() : it->second.ports;
}

Status Networking::apply_firewall(bool verify) {
  FirewallModel model = firewall_model();
  const std::string text = model.empty() ? std::string() : render_ruleset(model);
  if (applied_ && *applied_ == text && (!verify || text.empty())) return ok_status();
  if (!firewall_) {
    CONFPOD_ASSIGN_OR_RETURN(Firewall fw, Firewall::open());
    firewall_.emplace(std::move(fw));
  }
  if (applied_ && *applied_ == text) {
    auto listing = firewall_->current();
    if (listing.ok() && *listing == applied_listing_) return ok_status();
    pods::log_warning("nftables tables of confpodd changed from outside; restoring them",
                      {{"table", std::string(kTableFamily) + " " + kTableName}});
    ++restores_;
  }
  // On a failure below applied_ keeps what was last written, so the next change or
  // notification tries again (a failed restore never stops the watching).
  if (model.empty()) {
    // Only delete a table that is there: a daemon without bridged pods writes nothing.
    CONFPOD_ASSIGN_OR_RETURN(auto current, firewall_->current());
    if (current) CONFPOD_TRY(firewall_->remove());
  } else {
    CONFPOD_TRY(firewall_->apply(model));
  }
  CONFPOD_ASSIGN_OR_RETURN(applied_listing_, firewall_->current());
  applied_ = text;
  return ok_status();
}

Status Networking::verify_firewall() {
  if (!applied_ || applied_->empty()) return ok_status();  // nothing of ours to keep
  return apply_firewall(true);
}

}  // namespace confpod::net
