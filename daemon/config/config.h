// The host-wide daemon configuration: /etc/confpod/confpod.toml (docs/config.md documents
// every key with its default). Written by the host admin, but still parsed strictly: an
// unknown key, a wrong type or a relative path is an error naming the key and line, so a
// typo never silently falls back to a default.
//
// Errors: config.read (file unreadable), config.invalid ("line N: key: what is wrong").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "daemon/net/network_def.h"
#include "daemon/spec/vm_from_spec.h"

namespace confpod::config {

struct KbsConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:8080";  // host:port the embedded KBS serves on
  // HTTPS: PEM certificate chain and private key (both or neither). Without them the KBS
  // serves plain HTTP, which is refused off loopback unless allow_plain_http.
  std::string tls_cert;
  std::string tls_key;
  bool allow_plain_http = false;
  // The KBS URL pods are given in their init-data. Empty: the embedded KBS as a guest on QEMU
  // user networking reaches it (http(s)://10.0.2.2:<listen port>). Set it when the KBS runs
  // elsewhere (confpodd --kbs-only on a trusted machine) or guests use bridge networking.
  std::string guest_url;
  // SNP evidence is refused unless the collateral store holds a current AMD CRL for its
  // product (signed by the pinned ARK) that does not revoke its ASK/VCEK. Off: a CRL there is
  // still checked, and a missing one is no error (docs/collateral.md).
  bool require_crl = false;
};

// Prometheus metrics (docs/operations.md): off unless `listen` is set, and then only on a
// loopback address (127.0.0.0/8, [::1], localhost): a site's node exporter or an SSH tunnel
// reaches it, nothing else.
struct MetricsConfig {
  std::string listen;  // host:port; empty: no metrics listener
};

// Guest networks (docs/network.md).
struct NetworkConfig {
  net::NetworkDef default_network;        // [network]: "default", bridge confpod0, 10.89.0.0/24
  std::vector<net::NetworkDef> networks;  // [[networks]]
  // The network of a pod whose spec names none: a declared network, "user" (QEMU user-mode
  // networking, unprivileged) or "none".
  std::string pod_network = std::string(net::kDefaultNetwork);
};
inline constexpr std::size_t kMaxNetworks = 64;

struct DaemonConfig {
  std::string state_dir = "/var/lib/confpod";  // the SQLite database lives here
  std::string backend = "qemu";                // "qemu" | "libvirt"
  std::string libvirt_uri = "qemu:///system";
  // The user libvirt runs QEMU as, when it is not root and cannot enter confpodd's 0700 pod
  // directories (a session libvirtd; a system one with DAC and no descriptor passing): the
  // pod's vm/ directory is given to this user. Empty: nothing is handed over.
  std::string libvirt_qemu_user;
  // [vmm] channel: how confpodd reaches a pod's agent (docs/vmm.md): "virtio-serial", "vsock"
  // (vhost-vsock-pci, needs /dev/vhost-vsock) or "auto" (vsock where /dev/vhost-vsock exists,
  // virtio-serial elsewhere). Decided per pod at CreatePod and kept with it.
  std::string channel = "auto";
  // [vmm] vsock_cid_first: pods on vsock get guest CIDs from here up, one per pod, kept in
  // SQLite. CIDs are host-wide: keep the range clear of other VMs' (libvirt's automatic
  // CIDs start at 3).
  std::uint32_t vsock_cid_first = 10000;
  // qemu binary, firmware per TEE, guest kernel/initrd, accel, runtime_dir,
  // allow_insecure_tee, cbitpos/reduced_phys_bits, tdx qgs socket: what vm_config_from_spec
  // needs. runtime_dir is host.runtime_dir.
  spec::HostDefaults host;
  // When guest_kernel and guest_initrd are both empty, confpodd builds the guest image at
  // start-up with this builder and agent (daemon/pods/guest_image.h) into <state_dir>/guest.
  std::string guest_builder = "/usr/libexec/confpod/build-initramfs";
  std::string guest_agent = "/usr/libexec/confpod/confpod-agent";
  KbsConfig kbs;
  MetricsConfig metrics;
  NetworkConfig network;
  unsigned stop_timeout_seconds = 30;  // StopPod: ACPI powerdown grace before SIGKILL
  // A started pod whose agent has not said hello by then is failed (its VM killed).
  unsigned agent_hello_timeout_seconds = 120;
};

inline constexpr std::string_view kDefaultConfigPath = "/etc/confpod/confpod.toml";

// Parses TOML text; `origin` names the file in errors.
Result<DaemonConfig> parse_config(std::string_view toml_text, std::string_view origin);
// Reads and parses the file. A missing file at kDefaultConfigPath yields the defaults; a
// missing file given explicitly is config.read.
Result<DaemonConfig> load_config(const std::string& path);

}  // namespace confpod::config
