// Guest networking for the pod manager: which network each pod is on, its address, its
// published ports, and the host side that makes them real (bridges, taps, the nftables
// table). The one header daemon/pods calls; everything runs on confpodd's event-loop thread.
//
// Life of a pod on a bridge network (docs/network.md):
//   CreatePod  reserve()  -> network chosen, ports checked, lowest free address; the manager
//                            stores it in the pod's row (the address is the lease: unique)
//              add_pod()  -> counted; the firewall gains its published ports
//   StartPod   prepare()  -> bridge (with the gateway address), forwarding sysctls, the pod's
//                            tap on the bridge, firewall; returns what QEMU and init-data get
//   VM exit    vm_exited() -> the tap goes
//   RemovePod  remove_pod() -> tap and firewall rules go; the address is free again
//   restart    recover()  -> taps of pods whose VM is not running go, the table is rebuilt
//                            from the store: the same table as before a kill -9
// Pods on "user" (QEMU user-mode) or "none" touch nothing on the host.
//
// Errors: net.not_found (no such network), net.port_in_use (a host port published by another
// pod or bound on the host), net.exhausted (no free address), net.in_use (network rm with
// pods on it), net.config (a network of confpod.toml cannot be removed), and those of
// network_def.h, links.h and firewall.h.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "daemon/net/firewall.h"
#include "daemon/net/links.h"
#include "daemon/net/network_def.h"
#include "daemon/spec/spec.h"
#include "daemon/spec/vm_from_spec.h"
#include "daemon/store/store.h"

namespace confpod::net {

// A pod's place on the network, as its store row keeps it.
struct Lease {
  std::string network;   // a network name, "user" or "none"
  std::string address;   // bridge networks: IPv4 address
  std::string address6;  // bridge networks with subnet6
  std::string mac;
  bool operator==(const Lease&) const = default;
};

struct NetworkingOptions {
  std::vector<NetworkDef> config_networks;  // [network] first, then [[networks]]
  std::string pod_network = std::string(kDefaultNetwork);
  // The embedded KBS as guests on a bridge reach it: gateway:kbs_guest_port is forwarded to
  // kbs_address:kbs_port on the host. Unset: the KBS is not embedded (or guests use
  // kbs_guest_url).
  std::optional<KbsForward> kbs;
  bool kbs_tls = false;
  std::string kbs_guest_url;  // [kbs] guest_url: when set, every pod uses it as is
  std::string user_kbs_url;   // the embedded KBS as QEMU user networking shows it (10.0.2.2)
  bool vhost_net = false;     // the host has /dev/vhost-net
};

// A pod as recover() sees it.
struct PodNet {
  std::string name;
  Lease lease;
  std::vector<spec::Port> ports;
  bool vm_running = false;
};

class Networking {
 public:
  // Loads the networks created over D-Bus from `store` (which must outlive this object).
  static Result<std::unique_ptr<Networking>> create(NetworkingOptions options, store::Store& store);

  // Every network, declared ones first (in order), then stored ones by name.
  const std::vector<Network>& networks() const { return networks_; }
  const Network* find(std::string_view name) const;
  // Names of the pods on network `name`, sorted.
  std::vector<std::string> pods_on(std::string_view name) const;
  const std::string& pod_network_default() const { return options_.pod_network; }

  // Stores a new network (net.invalid, net.exists, net.overlap). Its bridge appears with
  // its first running pod.
  Result<Network> create_network(const NetworkDef& def);
  // net.not_found, net.config, net.in_use; deletes the bridge when it exists.
  Status remove_network(std::string_view name);

  // CreatePod: the network (`requested`, or the default when empty), its published ports
  // checked against every other pod's and against sockets bound on the host, an address.
  // Changes nothing.
  Result<Lease> reserve(const std::string& pod, const std::string& requested,
                        const std::vector<spec::Port>& ports);
  // After the row with `lease` is stored: counts the pod and applies the firewall. On an
  // error nothing was changed and the caller removes the row again.
  Status add_pod(const std::string& pod, const Lease& lease, std::vector<spec::Port> ports);
  // What the pod's VM and init-data get; touches nothing.
  Result<spec::PodNetwork> guest_network(const Lease& lease) const;
  // The KBS URL for a pod on `lease` ("" when there is none).
  std::string kbs_url(const Lease& lease) const;
  // StartPod, before QEMU: bridge, sysctls, tap, firewall.
  Status prepare(const std::string& pod);
  // The VM is gone: its tap goes (errors are logged, not returned: nothing depends on it).
  void vm_exited(const std::string& pod);
  // RemovePod: the tap and the pod's rules go.
  Status remove_pod(const std::string& pod);
  // Daemon start, with every pod from the store.
  Status recover(const std::vector<PodNet>& pods);

  // The tables as they should be now (tests, diagnostics).
  FirewallModel firewall_model() const;
  // Checks that the kernel still holds the tables last written and restores them when not
  // (an outside `nft flush ruleset`, a firewall service reload). Cheap when nothing was
  // written. The manager calls it on every nftables change notification (NftMonitor).
  Status verify_firewall();
  // How often verify_firewall() or a start found the tables changed and restored them.
  unsigned firewall_restores() const { return restores_; }
  // Published ports of `pod` with the address they reach.
  std::vector<spec::Port> ports_of(const std::string& pod) const;

 private:
  Networking(NetworkingOptions options, store::Store& store)
      : options_(std::move(options)), store_(store) {}
  // Writes the tables when the model changed; with `verify`, also when the kernel no longer
  // holds what was last written (someone flushed or edited them).
  Status apply_firewall(bool verify = false);
  // Opens the netlink socket on first use (pods on "user" never need one).
  Status open_links();
  Status ensure_links(const Network& network);
  Status check_port_free_on_host(const spec::Port& port) const;
  Status check_port_address(const std::string& pod, const spec::Port& port) const;

  struct PodEntry {
    Lease lease;
    std::vector<spec::Port> ports;
  };

  NetworkingOptions options_;
  store::Store& store_;
  std::vector<Network> networks_;
  std::map<std::string, PodEntry, std::less<>> pods_;
  std::optional<Firewall> firewall_;  // opened on first use: pods on "user" never need it
  std::optional<Links> links_;
  std::set<std::string> sysctls_done_;          // bridges whose sysctls are written this run
  std::optional<std::string> applied_;          // the ruleset last written (nullopt: not this run)
  std::optional<std::string> applied_listing_;  // how nft listed it right after
  unsigned restores_ = 0;
};

}  // namespace confpod::net
