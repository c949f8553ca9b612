#include "daemon/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "attest/base/path.h"
#include "daemon/spec/toml_util.h"

namespace confpod::config {
namespace {

constexpr std::size_t kMaxConfigBytes = 1 << 20;
constexpr std::size_t kMaxStringBytes = 4096;
// x86 COMMAND_LINE_SIZE: a longer command line is cut by the guest kernel, after measurement.
constexpr std::size_t kMaxCmdlineBytes = 2048;
constexpr std::uint64_t kSnpPolicyReservedMbo = 1ull << 17;
constexpr std::uint64_t kSnpPolicyDebug = 1ull << 19;
constexpr std::uint64_t kTdxAttributeDebug = 1ull << 0;

// Every problem is "config.invalid" with "<origin>: line N: key.path: what is wrong".
class Parser {
 public:
  explicit Parser(std::string_view origin) : origin_(origin) {}

  Error invalid(std::uint32_t line, const std::string& path, const std::string& message) const {
    return make_error("config.invalid", origin_ + ": line " + std::to_string(line == 0 ? 1 : line) +
                                            ": " + path + ": " + message);
  }

  Result<DaemonConfig> parse_root(const toml::table& root) const;

 private:
  Status read_network(const toml::table& t, const std::string& prefix, net::NetworkDef& def) const;
  static std::uint32_t line_of(const toml::node& node) { return node.source().begin.line; }

  static std::string join(const std::string& prefix, std::string_view key) {
    return spec::toml_util::join(prefix, key);
  }

  Error wrong_type(const toml::node& node, const std::string& path,
                   std::string_view expected) const {
    return invalid(line_of(node), path,
                   "must be " + std::string(expected) + ", got " +
                       std::string(spec::toml_util::type_name(node.type())));
  }

  // Unknown keys are errors: a misspelt key must not silently leave its default in place.
  Status check_keys(const toml::table& table, const std::string& prefix,
                    std::initializer_list<std::string_view> allowed) const {
    if (auto unknown = spec::toml_util::unknown_key(table, allowed))
      return invalid(unknown->line, join(prefix, unknown->key), "unknown key");
    return ok_status();
  }

  // A sub-table ([name]); null when absent.
  Result<const toml::table*> sub_table(const toml::table& root, std::string_view key) const {
    const toml::node* node = root.get(key);
    if (node == nullptr) return static_cast<const toml::table*>(nullptr);
    const auto* table = node->as_table();
    if (table == nullptr)
      return wrong_type(*node, std::string(key), "a table ([" + std::string(key) + "])");
    return table;
  }

  // Sets `out` when the key is present. Strings are single-line text: they end up in argv,
  // XML and log lines.
  Status get_string(const toml::table& t, const std::string& prefix, std::string_view key,
                    std::string& out, std::size_t max_bytes = kMaxStringBytes) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return ok_status();
    const std::string path = join(prefix, key);
    const auto* s = node->as_string();
    if (s == nullptr) return wrong_type(*node, path, "a string");
    const std::string& v = s->get();
    if (v.size() > max_bytes)
      return invalid(line_of(*node), path, "longer than " + std::to_string(max_bytes) + " bytes");
    for (unsigned char c : v)
      if (c < 0x20 || c == 0x7f)
        return invalid(line_of(*node), path, "contains a control character");
    out = v;
    return ok_status();
  }

  Status get_bool(const toml::table& t, const std::string& prefix, std::string_view key,
                  bool& out) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return ok_status();
    const auto* b = node->as_boolean();
    if (b == nullptr) return wrong_type(*node, join(prefix, key), "a boolean (true or false)");
    out = b->get();
    return ok_status();
  }

  template <class Int>
  Status get_int(const toml::table& t, const std::string& prefix, std::string_view key,
                 std::int64_t min, std::int64_t max, Int& out) const {
    const toml::node* node = t.get(key);
    if (node == nullptr) return ok_status();
    const std::string path = join(prefix, key);
    const auto* i = node->as_integer();
    if (i == nullptr) return wrong_type(*node, path, "an integer");
    const std::int64_t v = i->get();
    if (v < min || v > max)
      return invalid(line_of(*node), path,
                     "must be " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
                         std::to_string(v));
    out = static_cast<Int>(v);
    return ok_status();
  }

  // Absolute and normalized (no //, . or .. segments, no trailing /), so one file has one
  // spelling. `optional`: "" means "not set".
  Status get_path(const toml::table& t, const std::string& prefix, std::string_view key,
                  std::string& out, bool optional) const {
    std::string value = out;
    CONFPOD_TRY(get_string(t, prefix, key, value));
    const toml::node* node = t.get(key);
    if (node == nullptr) return ok_status();
    if (value.empty() && optional) {
      out.clear();
      return ok_status();
    }
    if (auto problem = normalized_path_problem(value))
      return invalid(line_of(*node), join(prefix, key), *problem);
    out = std::move(value);
    return ok_status();
  }

  // One of `choices`, named in the error.
  Status get_enum(const toml::table& t, const std::string& prefix, std::string_view key,
                  std::initializer_list<std::string_view> choices, std::string& out) const {
    std::string value = out;
    CONFPOD_TRY(get_string(t, prefix, key, value));
    const toml::node* node = t.get(key);
    if (node == nullptr) return ok_status();
    std::string list;
    for (std::string_view c : choices) {
      if (c == value) {
        out = std::move(value);
        return ok_status();
      }
      list += (list.empty() ? "" : " or ") + std::string(c);
    }
    return invalid(line_of(*node), join(prefix, key),
                   "must be " + list + ", got \"" + value + "\"");
  }

  std::string origin_;
};

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// A decimal number in [0, max]: digits only (at most 5), no sign, no leading zero.
std::optional<unsigned> parse_decimal(std::string_view s, unsigned max) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s.front() == '0')) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

// Dotted-quad IPv4, strictly: leading zeros would be octal to inet_aton and decimal to us.
// host:port with host a dotted-quad IPv4, [IPv6] or a DNS name, port 1..65535.
std::optional<std::string> listen_problem(std::string_view s) {
  const std::size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return "must be host:port";
  std::string_view host = s.substr(0, colon);
  auto port = parse_decimal(s.substr(colon + 1), 65535);
  if (!port || *port == 0) return "port must be 1..65535";
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 4) return "IPv6 host must be [address]";
    for (char c : host.substr(1, host.size() - 2))
      if (!(is_alnum(c) || c == ':' || c == '.')) return "IPv6 host must be [address]";
    return std::nullopt;
  }
  if (host.size() > 253) return "host name longer than 253 bytes";
  for (char c : host)
    if (!(is_alnum(c) || c == '.' || c == '-'))
      return "host must be an IPv4 address, [IPv6 address] or DNS name";
  return std::nullopt;
}

// 127.0.0.0/8 as a dotted quad, [::1] or localhost (the KBS may serve plain HTTP there).
bool is_loopback_listen(std::string_view s) {
  const std::size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = s.substr(0, colon);
  if (host == "localhost" || host == "[::1]") return true;
  if (host.substr(0, 4) != "127.") return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

bool is_cpu_model(std::string_view s) {
  for (char c : s)
    if (!(is_alnum(c) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

// A POSIX-style user name (what useradd accepts by default).
bool is_user_name(std::string_view s) {
  if (s.empty() || !(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-'))
      return false;
  return true;
}

// The keys a network table shares with [[networks]]: bridge, subnet, subnet6, masquerade,
// dns. Validation of the values is net::validate_network's.
Status Parser::read_network(const toml::table& t, const std::string& prefix,
                            net::NetworkDef& def) const {
  CONFPOD_TRY(get_string(t, prefix, "bridge", def.bridge, 64));
  CONFPOD_TRY(get_string(t, prefix, "subnet", def.subnet, 64));
  CONFPOD_TRY(get_string(t, prefix, "subnet6", def.subnet6, 64));
  CONFPOD_TRY(get_bool(t, prefix, "masquerade", def.masquerade));
  if (const toml::node* node = t.get("dns")) {
    const auto* list = node->as_array();
    if (list == nullptr) return wrong_type(*node, join(prefix, "dns"), "an array of addresses");
    def.dns.clear();
    for (std::size_t i = 0; i < list->size(); ++i) {
      const auto* server = list->get(i)->as_string();
      if (server == nullptr)
        return wrong_type(*list->get(i), join(prefix, "dns"), "an array of address strings");
      def.dns.push_back(server->get().substr(0, 64));
      if (!net::parse_ipv4(def.dns.back()) && !net::parse_ipv6(def.dns.back()))
        return invalid(line_of(*list->get(i)), join(prefix, "dns"),
                       "\"" + def.dns.back() + "\" is not an IPv4 or IPv6 address");
    }
    if (def.dns.size() > 3)
      return invalid(line_of(*node), join(prefix, "dns"), "at most 3 servers");
  }
  // Each field where it is written; what spans fields is validate_network's.
  if (const toml::node* node = t.get("bridge"); node && !net::is_valid_ifname(def.bridge))
    return invalid(line_of(*node), join(prefix, "bridge"),
                   "must be an interface name of 1..15 [A-Za-z0-9_.-], got \"" + def.bridge + "\"");
  if (const toml::node* node = t.get("subnet")) {
    auto subnet = net::parse_subnet4(def.subnet);
    if (!subnet.ok())
      return invalid(line_of(*node), join(prefix, "subnet"), subnet.error().message);
  }
  if (const toml::node* node = t.get("subnet6"); node && !def.subnet6.empty()) {
    auto subnet6 = net::parse_subnet6(def.subnet6);
    if (!subnet6.ok())
      return invalid(line_of(*node), join(prefix, "subnet6"), subnet6.error().message);
  }
  return ok_status();
}

Result<DaemonConfig> Parser::parse_root(const toml::table& root) const {
  CONFPOD_TRY(check_keys(root, "",
                         {"state_dir",
                          "runtime_dir",
                          "backend",
                          "libvirt_uri",
                          "qemu",
                          "accel",
                          "cpu_model",
                          "guest_kernel",
                          "guest_initrd",
                          "guest_builder",
                          "guest_agent",
                          "kernel_cmdline",
                          "allow_insecure_tee",
                          "stop_timeout_seconds",
                          "agent_hello_timeout_seconds",
                          "firmware",
                          "snp",
                          "tdx",
                          "kbs",
                          "metrics",
                          "vmm",
                          "network",
                          "networks"}));
  DaemonConfig c;
  spec::HostDefaults& h = c.host;

  CONFPOD_TRY(get_path(root, "", "state_dir", c.state_dir, false));
  CONFPOD_TRY(get_path(root, "", "runtime_dir", h.runtime_dir, false));
  // [vmm] backend and libvirt_uri; the top-level keys of earlier versions are still read
  // (an equal value in both places is fine, two different ones are refused).
  CONFPOD_ASSIGN_OR_RETURN(const toml::table* vmm, sub_table(root, "vmm"));
  if (vmm != nullptr)
    CONFPOD_TRY(
        check_keys(*vmm, "vmm",
                   {"backend", "libvirt_uri", "libvirt_qemu_user", "channel", "vsock_cid_first"}));
  // `read` reads and checks `key` of one table (the top level, or [vmm] under prefix "vmm").
  auto read_vmm_key = [&](std::string_view key, std::string& value, const auto& read) -> Status {
    CONFPOD_TRY(read(root, std::string(), value));
    if (vmm == nullptr || vmm->get(key) == nullptr) return ok_status();
    const std::string top_level = value;
    CONFPOD_TRY(read(*vmm, std::string("vmm"), value));
    if (const toml::node* old = root.get(key); old != nullptr && top_level != value)
      return invalid(
          line_of(*old), std::string(key),
          "differs from vmm." + std::string(key) + " (\"" + value + "\"); keep one, in [vmm]");
    return ok_status();
  };
  CONFPOD_TRY(read_vmm_key("backend", c.backend,
                           [&](const toml::table& t, const std::string& prefix, std::string& out) {
                             return get_enum(t, prefix, "backend", {"qemu", "libvirt"}, out);
                           }));
  CONFPOD_TRY(read_vmm_key(
      "libvirt_uri", c.libvirt_uri,
      [&](const toml::table& t, const std::string& prefix, std::string& out) -> Status {
        CONFPOD_TRY(get_string(t, prefix, "libvirt_uri", out));
        const toml::node* n = t.get("libvirt_uri");
        if (n == nullptr) return ok_status();
        const std::size_t sep = out.find("://");
        bool ok = sep != std::string::npos && sep > 0;
        for (char ch : out) ok = ok && ch != ' ';
        if (!ok)
          return invalid(
              line_of(*n), join(prefix, "libvirt_uri"),
              "must be a libvirt URI driver[+transport]://[host]/path, got \"" + out + "\"");
        return ok_status();
      }));
  if (vmm != nullptr) {
    CONFPOD_TRY(get_string(*vmm, "vmm", "libvirt_qemu_user", c.libvirt_qemu_user, 32));
    if (const toml::node* n = vmm->get("libvirt_qemu_user");
        n && !c.libvirt_qemu_user.empty() && !is_user_name(c.libvirt_qemu_user))
      return invalid(
          line_of(*n), "vmm.libvirt_qemu_user",
          "must be a user name of [a-z_][a-z0-9_-]*, got \"" + c.libvirt_qemu_user + "\"");
    CONFPOD_TRY(get_enum(*vmm, "vmm", "channel", {"auto", "virtio-serial", "vsock"}, c.channel));
    // 0-2 are the hypervisor, loopback and host; leave room above the first for every pod.
    CONFPOD_TRY(get_int(*vmm, "vmm", "vsock_cid_first", 3, 0xFFFF0000ll, c.vsock_cid_first));
  }
  CONFPOD_TRY(get_path(root, "", "qemu", h.qemu_binary, false));
  CONFPOD_TRY(get_enum(root, "", "accel", {"auto", "kvm", "tcg"}, h.accel));
  CONFPOD_TRY(get_string(root, "", "cpu_model", h.cpu_model, 64));
  if (const toml::node* n = root.get("cpu_model"); n && !is_cpu_model(h.cpu_model))
    return invalid(line_of(*n), "cpu_model",
                   "must be a QEMU CPU model name of [A-Za-z0-9._-], got \"" + h.cpu_model + "\"");
  CONFPOD_TRY(get_path(root, "", "guest_kernel", h.kernel, true));
  CONFPOD_TRY(get_path(root, "", "guest_initrd", h.initrd, true));
  CONFPOD_TRY(get_path(root, "", "guest_builder", c.guest_builder, false));
  CONFPOD_TRY(get_path(root, "", "guest_agent", c.guest_agent, false));
  CONFPOD_TRY(get_string(root, "", "kernel_cmdline", h.kernel_cmdline, kMaxCmdlineBytes));
  CONFPOD_TRY(get_bool(root, "", "allow_insecure_tee", h.allow_insecure_tee));
  CONFPOD_TRY(get_int(root, "", "stop_timeout_seconds", 1, 3600, c.stop_timeout_seconds));
  CONFPOD_TRY(
      get_int(root, "", "agent_hello_timeout_seconds", 10, 3600, c.agent_hello_timeout_seconds));
  // TCG emulates a CPU without SEV-SNP or TDX: only TEE "none" could ever start on it.
  if (h.accel == "tcg" && !h.allow_insecure_tee)
    return invalid(line_of(*root.get("accel")), "accel",
                   "tcg cannot run SEV-SNP or TDX guests; it needs allow_insecure_tee = true");

  CONFPOD_ASSIGN_OR_RETURN(const toml::table* firmware, sub_table(root, "firmware"));
  if (firmware != nullptr) {
    CONFPOD_TRY(check_keys(*firmware, "firmware", {"snp", "tdx", "none"}));
    CONFPOD_TRY(get_path(*firmware, "firmware", "snp", h.firmware_snp, true));
    CONFPOD_TRY(get_path(*firmware, "firmware", "tdx", h.firmware_tdx, true));
    CONFPOD_TRY(get_path(*firmware, "firmware", "none", h.firmware_none, true));
  }

  CONFPOD_ASSIGN_OR_RETURN(const toml::table* snp, sub_table(root, "snp"));
  if (snp != nullptr) {
    CONFPOD_TRY(check_keys(*snp, "snp", {"cbitpos", "reduced_phys_bits", "policy"}));
    CONFPOD_TRY(get_int(*snp, "snp", "cbitpos", 32, 63, h.cbitpos));
    CONFPOD_TRY(get_int(*snp, "snp", "reduced_phys_bits", 1, 63, h.reduced_phys_bits));
    CONFPOD_TRY(get_int(*snp, "snp", "policy", 0, INT64_MAX, h.snp_policy));
    if (const toml::node* n = snp->get("policy")) {
      if ((h.snp_policy & kSnpPolicyReservedMbo) == 0)
        return invalid(line_of(*n), "snp.policy", "bit 17 is reserved and must be 1");
      // Debugging exposes guest memory to the host; it is a per-launch opt-in
      // (--allow-debug), never a host-wide default.
      if (h.snp_policy & kSnpPolicyDebug)
        return invalid(line_of(*n), "snp.policy",
                       "allows debugging (bit 19); debug guests are opt-in per launch only");
    }
  }

  CONFPOD_ASSIGN_OR_RETURN(const toml::table* tdx, sub_table(root, "tdx"));
  if (tdx != nullptr) {
    CONFPOD_TRY(check_keys(*tdx, "tdx", {"attributes", "qgs_socket"}));
    CONFPOD_TRY(get_int(*tdx, "tdx", "attributes", 0, INT64_MAX, h.tdx_attributes));
    if (const toml::node* n = tdx->get("attributes"); n && (h.tdx_attributes & kTdxAttributeDebug))
      return invalid(line_of(*n), "tdx.attributes",
                     "allows debugging (bit 0); debug guests are opt-in per launch only");
    CONFPOD_TRY(get_path(*tdx, "tdx", "qgs_socket", h.tdx_qgs_socket, true));
  }

  CONFPOD_ASSIGN_OR_RETURN(const toml::table* metrics, sub_table(root, "metrics"));
  if (metrics != nullptr) {
    CONFPOD_TRY(check_keys(*metrics, "metrics", {"listen"}));
    CONFPOD_TRY(get_string(*metrics, "metrics", "listen", c.metrics.listen, 260));
    if (const toml::node* n = metrics->get("listen"); n && !c.metrics.listen.empty()) {
      if (auto problem = listen_problem(c.metrics.listen))
        return invalid(line_of(*n), "metrics.listen",
                       *problem + ", got \"" + c.metrics.listen + "\"");
      if (!is_loopback_listen(c.metrics.listen))
        return invalid(line_of(*n), "metrics.listen",
                       "must be a loopback address (127.0.0.1, [::1], localhost): metrics are "
                       "local only, got \"" +
                           c.metrics.listen + "\"");
    }
  }

  CONFPOD_ASSIGN_OR_RETURN(const toml::table* kbs, sub_table(root, "kbs"));
  if (kbs != nullptr) {
    CONFPOD_TRY(check_keys(*kbs, "kbs",
                           {"enabled", "listen", "tls_cert", "tls_key", "allow_plain_http",
                            "guest_url", "require_crl"}));
    CONFPOD_TRY(get_bool(*kbs, "kbs", "enabled", c.kbs.enabled));
    CONFPOD_TRY(get_string(*kbs, "kbs", "listen", c.kbs.listen, 260));
    if (const toml::node* n = kbs->get("listen")) {
      if (auto problem = listen_problem(c.kbs.listen))
        return invalid(line_of(*n), "kbs.listen", *problem + ", got \"" + c.kbs.listen + "\"");
    }
    CONFPOD_TRY(get_path(*kbs, "kbs", "tls_cert", c.kbs.tls_cert, true));
    CONFPOD_TRY(get_path(*kbs, "kbs", "tls_key", c.kbs.tls_key, true));
    CONFPOD_TRY(get_bool(*kbs, "kbs", "allow_plain_http", c.kbs.allow_plain_http));
    CONFPOD_TRY(get_bool(*kbs, "kbs", "require_crl", c.kbs.require_crl));
    CONFPOD_TRY(get_string(*kbs, "kbs", "guest_url", c.kbs.guest_url, 260));
    if (const toml::node* n = kbs->get("guest_url"); n && !c.kbs.guest_url.empty() &&
                                                     !c.kbs.guest_url.starts_with("http://") &&
                                                     !c.kbs.guest_url.starts_with("https://"))
      return invalid(line_of(*n), "kbs.guest_url",
                     "must start with http:// or https://, got \"" + c.kbs.guest_url + "\"");
    if (c.kbs.tls_cert.empty() != c.kbs.tls_key.empty()) {
      const toml::node* n = kbs->get(c.kbs.tls_cert.empty() ? "tls_key" : "tls_cert");
      return invalid(line_of(*n), c.kbs.tls_cert.empty() ? "kbs.tls_key" : "kbs.tls_cert",
                     "tls_cert and tls_key must be set together");
    }
    if (c.kbs.enabled && c.kbs.tls_cert.empty() && !c.kbs.allow_plain_http &&
        !is_loopback_listen(c.kbs.listen)) {
      const toml::node* n = kbs->get("listen");
      return invalid(n ? line_of(*n) : line_of(*kbs), "kbs.listen",
                     "plain HTTP off loopback exposes session cookies and tokens: set tls_cert "
                     "and tls_key, listen on loopback, or set allow_plain_http = true");
    }
  }

  // The URL pods use for the KBS: set, or the embedded KBS as QEMU user networking shows the
  // host's loopback to a guest (10.0.2.2).
  if (!c.kbs.guest_url.empty()) {
    h.kbs_guest_url = c.kbs.guest_url;
  } else if (c.kbs.enabled) {
    const std::string port = c.kbs.listen.substr(c.kbs.listen.rfind(':') + 1);
    h.kbs_guest_url = (c.kbs.tls_cert.empty() ? "http://10.0.2.2:" : "https://10.0.2.2:") + port;
  }

  // [network] declares the default network; [[networks]] more, each its own bridge.
  CONFPOD_ASSIGN_OR_RETURN(const toml::table* network, sub_table(root, "network"));
  if (network != nullptr) {
    CONFPOD_TRY(
        check_keys(*network, "network",
                   {"bridge", "subnet", "subnet6", "masquerade", "dns", "pod_network", "mode"}));
    CONFPOD_TRY(read_network(*network, "network", c.network.default_network));
    CONFPOD_TRY(get_string(*network, "network", "pod_network", c.network.pod_network, 64));
    // `mode` ("user" | "bridge") is the key before named networks: it still means what it
    // meant, as the default network of pods that name none.
    if (const toml::node* mode = network->get("mode")) {
      std::string value;
      CONFPOD_TRY(get_enum(*network, "network", "mode", {"user", "bridge"}, value));
      if (network->get("pod_network") != nullptr)
        return invalid(line_of(*mode), "network.mode",
                       "is replaced by network.pod_network; set only pod_network");
      c.network.pod_network =
          value == "user" ? std::string(net::kModeUser) : c.network.default_network.name;
    }
  }
  std::vector<net::Network> declared;
  {
    auto parsed = net::validate_network(c.network.default_network);
    if (!parsed.ok())
      return invalid(network ? line_of(*network) : 1, "network", parsed.error().message);
    declared.push_back(std::move(*parsed));
  }
  if (const toml::node* node = root.get("networks")) {
    const auto* list = node->as_array();
    if (list == nullptr || !list->is_array_of_tables())
      return wrong_type(*node, "networks", "an array of tables ([[networks]])");
    if (list->size() > kMaxNetworks)
      return invalid(line_of(*node), "networks",
                     "more than " + std::to_string(kMaxNetworks) + " networks");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const toml::table& t = *list->get(i)->as_table();
      const std::string prefix = "networks[" + std::to_string(i) + "]";
      CONFPOD_TRY(
          check_keys(t, prefix, {"name", "bridge", "subnet", "subnet6", "masquerade", "dns"}));
      if (t.get("name") == nullptr || t.get("bridge") == nullptr || t.get("subnet") == nullptr)
        return invalid(line_of(t), prefix, "name, bridge and subnet are required");
      net::NetworkDef def;
      CONFPOD_TRY(get_string(t, prefix, "name", def.name, 64));
      CONFPOD_TRY(read_network(t, prefix, def));
      auto parsed = net::validate_network(def);
      if (!parsed.ok()) return invalid(line_of(t), prefix, parsed.error().message);
      if (Status ok = net::check_compatible(*parsed, declared); !ok.ok())
        return invalid(line_of(t), prefix, ok.error().message);
      declared.push_back(std::move(*parsed));
      c.network.networks.push_back(declared.back().def);
    }
  }
  c.network.default_network = declared.front().def;
  const std::string& pod_network = c.network.pod_network;
  if (pod_network != net::kModeUser && pod_network != net::kModeNone &&
      std::none_of(declared.begin(), declared.end(),
                   [&](const net::Network& n) { return n.def.name == pod_network; }))
    return invalid(
        network && network->get("pod_network") ? line_of(*network->get("pod_network")) : 1,
        "network.pod_network",
        "must be \"user\", \"none\" or a declared network, got \"" + pod_network + "\"");
  return c;
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

Error read_error(const std::string& path, const std::string& what) {
  return make_error("config.read", path + ": " + what);
}

}  // namespace

Result<DaemonConfig> parse_config(std::string_view toml_text, std::string_view origin) {
  Parser parser(origin);
  if (toml_text.size() > kMaxConfigBytes)
    return parser.invalid(1, "file", "larger than " + std::to_string(kMaxConfigBytes) + " bytes");
  toml::table root;
  // toml++ reports syntax errors by exception; this is the edge where they become Errors.
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    return parser.invalid(e.source().begin.line, "syntax", std::string(e.description()));
  }
  return parser.parse_root(root);
}

Result<DaemonConfig> load_config(const std::string& path) {
  FdCloser file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
  if (file.fd < 0) {
    const int err = errno;
    // Only the well-known path may be absent: a path someone typed must exist.
    if (err == ENOENT && path == kDefaultConfigPath) return DaemonConfig{};
    return read_error(path, std::strerror(err));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) return read_error(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return read_error(path, "not a regular file");
  std::string text;
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(file.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return read_error(path, std::strerror(errno));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    // Past the limit parse_config refuses it anyway; stop reading a runaway file early.
    if (text.size() > kMaxConfigBytes) break;
  }
  return parse_config(text, path);
}

}  // namespace confpod::config
