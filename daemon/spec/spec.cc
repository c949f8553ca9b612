#include "daemon/spec/spec.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <utility>

#include "attest/base/path.h"
#include "daemon/net/network_def.h"
#include "daemon/spec/toml_util.h"
#include "guest/protocol/capabilities.h"
#include "guest/protocol/init_data.h"

namespace confpod::spec {

bool ports_conflict(const Port& a, const Port& b) {
  return a.protocol == b.protocol && a.host_port == b.host_port &&
         (a.host_ip == b.host_ip || a.host_ip == "0.0.0.0" || b.host_ip == "0.0.0.0");
}

namespace {

// Every problem becomes "spec.invalid" with "line N: key.path: what is wrong".
Error invalid(std::uint32_t line, const std::string& path, const std::string& message) {
  return make_error("spec.invalid",
                    "line " + std::to_string(line == 0 ? 1 : line) + ": " + path + ": " + message);
}

std::uint32_t line_of(const toml::node& node) { return node.source().begin.line; }

using toml_util::join;

std::string indexed(const std::string& prefix, std::size_t i) {
  return prefix + "[" + std::to_string(i) + "]";
}

Error wrong_type(const toml::node& node, const std::string& path, std::string_view expected) {
  return invalid(line_of(node), path,
                 "must be " + std::string(expected) + ", got " +
                     std::string(toml_util::type_name(node.type())));
}

// Unknown keys are errors, not ignored: a misspelt "secrets" must not silently drop secrets.
Status check_keys(const toml::table& table, const std::string& prefix,
                  std::initializer_list<std::string_view> allowed) {
  if (auto unknown = toml_util::unknown_key(table, allowed))
    return invalid(unknown->line, join(prefix, unknown->key), "unknown key");
  return ok_status();
}

Status check_text(const toml::node& node, const std::string& path, std::string_view s) {
  if (s.size() > kMaxStringBytes)
    return invalid(line_of(node), path,
                   "longer than " + std::to_string(kMaxStringBytes) + " bytes");
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return invalid(line_of(node), path, "contains a control character");
  return ok_status();
}

Result<std::string> string_value(const toml::node& node, const std::string& path) {
  const auto* s = node.as_string();
  if (s == nullptr) return wrong_type(node, path, "a string");
  CONFPOD_TRY(check_text(node, path, s->get()));
  return s->get();
}

// A required or optional string key of `table` (whose own line names missing keys).
Result<std::optional<std::string>> optional_string(const toml::table& table,
                                                   const std::string& prefix,
                                                   std::string_view key) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return std::optional<std::string>();
  CONFPOD_ASSIGN_OR_RETURN(std::string value, string_value(*node, join(prefix, key)));
  return std::optional<std::string>(std::move(value));
}

Result<std::string> required_string(const toml::table& table, const std::string& prefix,
                                    std::string_view key) {
  CONFPOD_ASSIGN_OR_RETURN(auto value, optional_string(table, prefix, key));
  if (!value) return invalid(line_of(table), join(prefix, key), "required");
  return std::move(*value);
}

// An integer key within [min, max].
Result<std::optional<std::int64_t>> optional_int(const toml::table& table,
                                                 const std::string& prefix, std::string_view key,
                                                 std::int64_t min, std::int64_t max) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return std::optional<std::int64_t>();
  const std::string path = join(prefix, key);
  const auto* i = node->as_integer();
  if (i == nullptr) return wrong_type(*node, path, "an integer");
  std::int64_t v = i->get();
  if (v < min || v > max)
    return invalid(line_of(*node), path,
                   "must be " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
                       std::to_string(v));
  return std::optional<std::int64_t>(v);
}

Result<std::int64_t> required_int(const toml::table& table, const std::string& prefix,
                                  std::string_view key, std::int64_t min, std::int64_t max) {
  CONFPOD_ASSIGN_OR_RETURN(auto value, optional_int(table, prefix, key, min, max));
  if (!value) return invalid(line_of(table), join(prefix, key), "required");
  return *value;
}

// [a-z0-9][a-z0-9-]{0,62}: usable as a host name, a directory and a libvirt domain name.
bool is_pod_name(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

bool is_segment_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool is_env_key(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  if (s.front() >= '0' && s.front() <= '9') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

Status check_path(const toml::node& node, const std::string& path, std::string_view value,
                  bool allow_root) {
  if (auto problem = normalized_path_problem(value, allow_root))
    return invalid(line_of(node), path, *problem);
  return ok_status();
}

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<ImageRef> parse_image(const toml::node& node, const std::string& path,
                             std::string_view text) {
  constexpr std::string_view kTransport = "oci-archive:";
  if (text.substr(0, kTransport.size()) != kTransport)
    return invalid(line_of(node), path, "transport must be oci-archive (oci-archive:PATH@DIGEST)");
  std::string_view rest = text.substr(kTransport.size());
  const std::size_t at = rest.rfind('@');
  if (at == std::string_view::npos)
    return invalid(line_of(node), path, "must pin a digest: oci-archive:PATH@sha256:<64 hex>");
  ImageRef ref;
  ref.transport = "oci-archive";
  ref.path = std::string(rest.substr(0, at));
  ref.digest = std::string(rest.substr(at + 1));
  constexpr std::string_view kSha256 = "sha256:";
  if (ref.digest.size() != kSha256.size() + 64 ||
      ref.digest.compare(0, kSha256.size(), kSha256) != 0 ||
      !is_lower_hex(std::string_view(ref.digest).substr(kSha256.size())))
    return invalid(line_of(node), path, "digest must be sha256:<64 hex digits>");
  if (auto problem = normalized_path_problem(ref.path, false))
    return invalid(line_of(node), path, "archive path " + *problem);
  return ref;
}

Result<std::vector<std::string>> parse_command(const toml::node& node, const std::string& path) {
  const auto* array = node.as_array();
  if (array == nullptr) return wrong_type(node, path, "an array of strings");
  if (array->size() > kMaxCommandArgs)
    return invalid(line_of(node), path,
                   "more than " + std::to_string(kMaxCommandArgs) + " arguments");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    CONFPOD_ASSIGN_OR_RETURN(std::string arg, string_value(*array->get(i), indexed(path, i)));
    out.push_back(std::move(arg));
  }
  return out;
}

Result<std::map<std::string, std::string>> parse_env(const toml::node& node,
                                                     const std::string& path) {
  const auto* table = node.as_table();
  if (table == nullptr) return wrong_type(node, path, "a table of strings");
  if (table->size() > kMaxEnv)
    return invalid(line_of(node), path, "more than " + std::to_string(kMaxEnv) + " variables");
  std::map<std::string, std::string> out;
  for (auto&& [key, value] : *table) {
    const std::string key_path = join(path, key.str());
    if (!is_env_key(key.str()))
      return invalid(key.source().begin.line, key_path,
                     "variable names must match [A-Za-z_][A-Za-z0-9_]*");
    CONFPOD_ASSIGN_OR_RETURN(std::string v, string_value(value, key_path));
    out.emplace(std::string(key.str()), std::move(v));
  }
  return out;
}

// The elements of an array-of-tables key ([[containers]]), each checked to be a table.
Result<std::vector<const toml::table*>> table_array(const toml::table& root, std::string_view key,
                                                    std::size_t max) {
  std::vector<const toml::table*> out;
  const toml::node* node = root.get(key);
  if (node == nullptr) return out;
  const std::string path(key);
  const auto* array = node->as_array();
  if (array == nullptr) return wrong_type(*node, path, "an array of tables ([[" + path + "]])");
  if (array->size() > max)
    return invalid(line_of(*node), path, "more than " + std::to_string(max) + " entries");
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = *array->get(i);
    const auto* table = element.as_table();
    if (table == nullptr) return wrong_type(element, indexed(path, i), "a table");
    out.push_back(table);
  }
  return out;
}

Result<bool> optional_bool(const toml::table& t, const std::string& p, std::string_view key,
                           bool fallback) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return fallback;
  if (!n->is_boolean()) return wrong_type(*n, join(p, key), "a boolean (true or false)");
  return n->as_boolean()->get();
}

// A sorted, unique list of canonical capability names ("ALL" too where allowed).
Result<std::vector<std::string>> parse_capabilities(const toml::node& node, const std::string& path,
                                                    bool allow_all) {
  const auto* array = node.as_array();
  if (array == nullptr) return wrong_type(node, path, "an array of capability names");
  if (array->size() > static_cast<std::size_t>(guest::kLastCapability) + 1)
    return invalid(line_of(node), path, "more entries than there are capabilities");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    CONFPOD_ASSIGN_OR_RETURN(std::string name, string_value(*array->get(i), indexed(path, i)));
    std::string upper = name;
    for (char& c : upper) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    if (allow_all && upper == "ALL") {
      out.push_back("ALL");
      continue;
    }
    auto canonical = guest::canonical_capability(name);
    if (!canonical)
      return invalid(line_of(*array->get(i)), indexed(path, i),
                     "unknown capability \"" + name.substr(0, 64) +
                         "\" (names as in capabilities(7), e.g. NET_ADMIN or CAP_NET_ADMIN" +
                         (allow_all ? ", or ALL)" : ")"));
    out.push_back(*canonical);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<Container> parse_container(const toml::table& t, const std::string& p) {
  CONFPOD_TRY(check_keys(t, p,
                         {"name", "image", "command", "env", "workdir", "user", "read_only_rootfs",
                          "tmpfs", "cap_add", "cap_drop", "seccomp", "cpus", "memory_mib"}));
  Container c;
  CONFPOD_ASSIGN_OR_RETURN(c.name, required_string(t, p, "name"));
  if (!is_pod_name(c.name))
    return invalid(line_of(*t.get("name")), join(p, "name"), "must match [a-z0-9][a-z0-9-]{0,62}");
  CONFPOD_ASSIGN_OR_RETURN(std::string image, required_string(t, p, "image"));
  CONFPOD_ASSIGN_OR_RETURN(c.image, parse_image(*t.get("image"), join(p, "image"), image));
  if (const toml::node* n = t.get("command")) {
    CONFPOD_ASSIGN_OR_RETURN(c.command, parse_command(*n, join(p, "command")));
  }
  if (const toml::node* n = t.get("env")) {
    CONFPOD_ASSIGN_OR_RETURN(c.env, parse_env(*n, join(p, "env")));
  }
  CONFPOD_ASSIGN_OR_RETURN(auto workdir, optional_string(t, p, "workdir"));
  if (workdir) {
    CONFPOD_TRY(check_path(*t.get("workdir"), join(p, "workdir"), *workdir, true));
    c.workdir = *workdir;
  }
  CONFPOD_ASSIGN_OR_RETURN(auto user, optional_string(t, p, "user"));
  if (user) {
    if (!guest::is_container_user(*user))
      return invalid(line_of(*t.get("user")), join(p, "user"),
                     "must be uid[:gid] or name[:group] of [A-Za-z0-9_.-] (at most 32 each)");
    c.user = *user;
  }
  CONFPOD_ASSIGN_OR_RETURN(c.read_only_rootfs, optional_bool(t, p, "read_only_rootfs", false));
  if (const toml::node* n = t.get("tmpfs")) {
    const std::string path = join(p, "tmpfs");
    const auto* array = n->as_array();
    if (array == nullptr) return wrong_type(*n, path, "an array of directories");
    if (array->size() > kMaxTmpfs)
      return invalid(line_of(*n), path, "more than " + std::to_string(kMaxTmpfs) + " mounts");
    for (std::size_t i = 0; i < array->size(); ++i) {
      CONFPOD_ASSIGN_OR_RETURN(std::string dir, string_value(*array->get(i), indexed(path, i)));
      CONFPOD_TRY(check_path(*array->get(i), indexed(path, i), dir, false));
      if (std::find(c.tmpfs.begin(), c.tmpfs.end(), dir) != c.tmpfs.end())
        return invalid(line_of(*array->get(i)), indexed(path, i),
                       "duplicate mount \"" + dir + "\"");
      c.tmpfs.push_back(std::move(dir));
    }
  }
  if (const toml::node* n = t.get("cap_add")) {
    CONFPOD_ASSIGN_OR_RETURN(c.cap_add, parse_capabilities(*n, join(p, "cap_add"), false));
  }
  if (const toml::node* n = t.get("cap_drop")) {
    CONFPOD_ASSIGN_OR_RETURN(c.cap_drop, parse_capabilities(*n, join(p, "cap_drop"), true));
  }
  CONFPOD_ASSIGN_OR_RETURN(auto seccomp, optional_string(t, p, "seccomp"));
  if (seccomp) {
    if (*seccomp != "default" && *seccomp != "unconfined")
      return invalid(line_of(*t.get("seccomp")), join(p, "seccomp"),
                     "must be default or unconfined, got \"" + seccomp->substr(0, 64) + "\"");
    c.seccomp = *seccomp;
  }
  if (const toml::node* n = t.get("cpus")) {
    const std::string path = join(p, "cpus");
    double cpus = 0;
    if (const auto* f = n->as_floating_point())
      cpus = f->get();
    else if (const auto* i = n->as_integer())
      cpus = static_cast<double>(i->get());
    else
      return wrong_type(*n, path, "a number of CPUs (0.5, 2)");
    if (!(cpus >= 0.01 && cpus <= kMaxVcpus))
      return invalid(line_of(*n), path, "must be 0.01.." + std::to_string(kMaxVcpus));
    c.cpu_millis = static_cast<std::uint64_t>(std::llround(cpus * 1000));
  }
  CONFPOD_ASSIGN_OR_RETURN(auto memory, optional_int(t, p, "memory_mib", 4, kMaxMemoryMib));
  if (memory) c.memory_mib = static_cast<std::uint64_t>(*memory);
  return c;
}

Result<Secret> parse_secret(const toml::table& t, const std::string& p) {
  CONFPOD_TRY(check_keys(t, p, {"resource", "path", "env"}));
  Secret s;
  CONFPOD_ASSIGN_OR_RETURN(s.resource, required_string(t, p, "resource"));
  {
    // KBS resource URI path: exactly repository/type/tag, each a safe non-dot segment.
    std::vector<std::string_view> segments;
    std::string_view rest = s.resource;
    while (true) {
      const std::size_t slash = rest.find('/');
      segments.push_back(rest.substr(0, slash));
      if (slash == std::string_view::npos) break;
      rest = rest.substr(slash + 1);
    }
    bool ok = segments.size() == 3;
    for (std::string_view seg : segments) {
      ok = ok && !seg.empty() && seg != "." && seg != ".." && seg.size() <= 128;
      for (char c : seg) ok = ok && is_segment_char(c);
    }
    if (!ok)
      return invalid(line_of(*t.get("resource")), join(p, "resource"),
                     "must be repository/type/tag, each of [A-Za-z0-9._-]");
  }
  if (!t.contains("path") && !t.contains("env"))
    return invalid(line_of(t), join(p, "path"),
                   "required (or env, to get the secret in an environment variable)");
  if (t.contains("path") && t.contains("env"))
    return invalid(line_of(*t.get("env")), join(p, "env"),
                   "a secret goes to a file (path) or a variable (env), not both");
  if (t.contains("env")) {
    CONFPOD_ASSIGN_OR_RETURN(s.env, required_string(t, p, "env"));
    if (!is_env_key(s.env))
      return invalid(line_of(*t.get("env")), join(p, "env"),
                     "variable names must match [A-Za-z_][A-Za-z0-9_]*");
    return s;
  }
  CONFPOD_ASSIGN_OR_RETURN(s.path, required_string(t, p, "path"));
  CONFPOD_TRY(check_path(*t.get("path"), join(p, "path"), s.path, false));
  return s;
}

Result<Port> parse_port(const toml::table& t, const std::string& p) {
  CONFPOD_TRY(
      check_keys(t, p, {"host_port", "guest_port", "protocol", "host_ip", "host", "container"}));
  Port port;
  // `host` and `container` are the keys before guest networking (pods stored then still
  // parse); a table uses one spelling or the other.
  const bool old_keys = t.contains("host") || t.contains("container");
  if (old_keys && (t.contains("host_port") || t.contains("guest_port")))
    return invalid(line_of(t), p,
                   "use host_port/guest_port, or the older host/container, not both");
  CONFPOD_ASSIGN_OR_RETURN(std::int64_t host,
                           required_int(t, p, old_keys ? "host" : "host_port", 1, 65535));
  CONFPOD_ASSIGN_OR_RETURN(std::int64_t guest,
                           required_int(t, p, old_keys ? "container" : "guest_port", 1, 65535));
  port.host_port = static_cast<std::uint16_t>(host);
  port.guest_port = static_cast<std::uint16_t>(guest);
  CONFPOD_ASSIGN_OR_RETURN(auto host_ip, optional_string(t, p, "host_ip"));
  if (host_ip) {
    if (!net::parse_ipv4(*host_ip))
      return invalid(line_of(*t.get("host_ip")), join(p, "host_ip"),
                     "must be an IPv4 address of the host (0.0.0.0: all), got \"" +
                         host_ip->substr(0, 64) + "\"");
    port.host_ip = net::format_ipv4(*net::parse_ipv4(*host_ip));
  }
  CONFPOD_ASSIGN_OR_RETURN(auto protocol, optional_string(t, p, "protocol"));
  if (protocol) {
    if (*protocol != "tcp" && *protocol != "udp")
      return invalid(line_of(*t.get("protocol")), join(p, "protocol"),
                     "must be tcp or udp, got \"" + *protocol + "\"");
    port.protocol = *protocol;
  }
  return port;
}

// The VM from the containers' totals where [vm] leaves it open, and limits that fit it where
// [vm] sets it. Init containers run one at a time before the others: what the VM needs is
// the larger of the biggest init container and the sum of the others.
Status fit_vm(PodSpec& spec, bool vcpus_given, bool memory_given, std::uint32_t line) {
  std::uint64_t cpu_sum = 0, memory_sum = 0, cpu_init = 0, memory_init = 0;
  bool any_memory = false;
  for (const Container& c : spec.containers) {
    any_memory = any_memory || c.memory_mib != 0;
    if (c.init) {
      cpu_init = std::max(cpu_init, c.cpu_millis);
      memory_init = std::max(memory_init, c.memory_mib);
    } else {
      cpu_sum += c.cpu_millis;
      memory_sum += c.memory_mib;
    }
  }
  const std::uint64_t cpu_need = std::max(cpu_sum, cpu_init);
  const std::uint64_t memory_need = std::max(memory_sum, memory_init);
  if (!vcpus_given && cpu_need > 0)
    spec.vm.vcpus = static_cast<unsigned>(
        std::clamp<std::uint64_t>((cpu_need + 999) / 1000, kMinVcpus, kMaxVcpus));
  if (!memory_given && any_memory)
    spec.vm.memory_mib = static_cast<unsigned>(
        std::clamp<std::uint64_t>(memory_need + kGuestOverheadMib, kMinMemoryMib, kMaxMemoryMib));
  for (std::size_t i = 0; i < spec.containers.size(); ++i) {
    const Container& c = spec.containers[i];
    if (c.cpu_millis > std::uint64_t{spec.vm.vcpus} * 1000)
      return invalid(line, "containers",
                     "container \"" + c.name +
                         "\" asks for more cpus than vm.vcpus = " + std::to_string(spec.vm.vcpus));
  }
  if (memory_given && memory_need > 0 && memory_need + kGuestOverheadMib > spec.vm.memory_mib)
    return invalid(line, "vm.memory_mib",
                   std::to_string(spec.vm.memory_mib) + " MiB cannot hold the containers' " +
                       std::to_string(memory_need) + " MiB of memory limits and the guest's " +
                       std::to_string(kGuestOverheadMib) +
                       " MiB (leave [vm] memory_mib out to "
                       "have it computed)");
  return ok_status();
}

Result<PodSpec> parse_root(const toml::table& root) {
  CONFPOD_TRY(check_keys(root, "",
                         {"name", "tee", "restart", "allow_exec", "network", "vm",
                          "init_containers", "containers", "secrets", "ports"}));
  PodSpec spec;
  CONFPOD_ASSIGN_OR_RETURN(spec.name, required_string(root, "", "name"));
  if (!is_pod_name(spec.name))
    return invalid(line_of(*root.get("name")), "name", "must match [a-z0-9][a-z0-9-]{0,62}");

  // Required, never defaulted: "none" is insecure and must be written out.
  CONFPOD_ASSIGN_OR_RETURN(std::string tee, required_string(root, "", "tee"));
  if (tee == "snp")
    spec.tee = vmm::Tee::kSnp;
  else if (tee == "tdx")
    spec.tee = vmm::Tee::kTdx;
  else if (tee == "none")
    spec.tee = vmm::Tee::kNone;
  else
    return invalid(line_of(*root.get("tee")), "tee",
                   "must be snp, tdx or none, got \"" + tee + "\"");

  CONFPOD_ASSIGN_OR_RETURN(auto network, optional_string(root, "", "network"));
  if (network) {
    if (*network != net::kModeUser && *network != net::kModeNone &&
        !net::is_valid_network_name(*network))
      return invalid(line_of(*root.get("network")), "network",
                     "must be \"user\", \"none\" or a network name (1..32 of [A-Za-z0-9_.-]), "
                     "got \"" +
                         network->substr(0, 64) + "\"");
    spec.network = *network;
  }

  CONFPOD_ASSIGN_OR_RETURN(auto restart, optional_string(root, "", "restart"));
  if (restart) {
    if (*restart == "no")
      spec.restart = RestartPolicy::kNo;
    else if (*restart == "on-failure")
      spec.restart = RestartPolicy::kOnFailure;
    else if (*restart == "always")
      spec.restart = RestartPolicy::kAlways;
    else
      return invalid(line_of(*root.get("restart")), "restart",
                     "must be no, on-failure or always, got \"" + *restart + "\"");
  }

  if (const toml::node* n = root.get("allow_exec")) {
    if (!n->is_boolean()) return wrong_type(*n, "allow_exec", "a boolean (true or false)");
    spec.allow_exec = n->as_boolean()->get();
  }

  bool vcpus_given = false, memory_given = false;
  if (const toml::node* vm_node = root.get("vm")) {
    const auto* vm = vm_node->as_table();
    if (vm == nullptr) return wrong_type(*vm_node, "vm", "a table ([vm])");
    CONFPOD_TRY(check_keys(*vm, "vm", {"vcpus", "memory_mib"}));
    CONFPOD_ASSIGN_OR_RETURN(auto vcpus, optional_int(*vm, "vm", "vcpus", kMinVcpus, kMaxVcpus));
    if (vcpus) spec.vm.vcpus = static_cast<unsigned>(*vcpus);
    CONFPOD_ASSIGN_OR_RETURN(auto memory,
                             optional_int(*vm, "vm", "memory_mib", kMinMemoryMib, kMaxMemoryMib));
    if (memory) spec.vm.memory_mib = static_cast<unsigned>(*memory);
    vcpus_given = vcpus.has_value();
    memory_given = memory.has_value();
  }

  CONFPOD_ASSIGN_OR_RETURN(auto init_containers,
                           table_array(root, "init_containers", kMaxContainers));
  CONFPOD_ASSIGN_OR_RETURN(auto containers, table_array(root, "containers", kMaxContainers));
  if (containers.empty())
    return invalid(line_of(root), "containers", "at least one [[containers]] is required");
  if (init_containers.size() + containers.size() > kMaxContainers)
    return invalid(
        line_of(root), "containers",
        "more than " + std::to_string(kMaxContainers) + " containers and init containers together");
  std::set<std::string> container_names;
  for (const auto* list : {&init_containers, &containers}) {
    const bool init = list == &init_containers;
    const std::string key = init ? "init_containers" : "containers";
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string p = indexed(key, i);
      CONFPOD_ASSIGN_OR_RETURN(Container c, parse_container(*(*list)[i], p));
      if (!container_names.insert(c.name).second)
        return invalid(line_of(*(*list)[i]->get("name")), p + ".name",
                       "duplicate container name \"" + c.name + "\"");
      c.init = init;
      spec.containers.push_back(std::move(c));
    }
  }
  CONFPOD_TRY(fit_vm(spec, vcpus_given, memory_given, line_of(root)));

  CONFPOD_ASSIGN_OR_RETURN(auto secrets, table_array(root, "secrets", kMaxSecrets));
  std::set<std::string> secret_paths, secret_vars;
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    const std::string p = indexed("secrets", i);
    CONFPOD_ASSIGN_OR_RETURN(Secret s, parse_secret(*secrets[i], p));
    if (!s.path.empty() && !secret_paths.insert(s.path).second)
      return invalid(line_of(*secrets[i]->get("path")), p + ".path",
                     "duplicate secret path \"" + s.path + "\"");
    if (!s.env.empty() && !secret_vars.insert(s.env).second)
      return invalid(line_of(*secrets[i]->get("env")), p + ".env",
                     "duplicate secret variable \"" + s.env + "\"");
    spec.secrets.push_back(std::move(s));
  }

  CONFPOD_ASSIGN_OR_RETURN(auto ports, table_array(root, "ports", kMaxPorts));
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const std::string p = indexed("ports", i);
    CONFPOD_ASSIGN_OR_RETURN(Port port, parse_port(*ports[i], p));
    for (const Port& q : spec.ports)
      if (ports_conflict(q, port))
        return invalid(line_of(*ports[i]), p + ".host_port",
                       "duplicate host port " + std::to_string(port.host_port) + "/" +
                           port.protocol + " (also published by an earlier [[ports]])");
    spec.ports.push_back(std::move(port));
  }
  return spec;
}

// TOML basic string with every character that needs it escaped.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace

std::string to_string(RestartPolicy policy) {
  switch (policy) {
    case RestartPolicy::kNo:
      return "no";
    case RestartPolicy::kOnFailure:
      return "on-failure";
    case RestartPolicy::kAlways:
      return "always";
  }
  return "no";
}

std::vector<std::string> container_capabilities(const Container& container) {
  std::vector<std::string> caps;
  const bool drop_all = std::find(container.cap_drop.begin(), container.cap_drop.end(), "ALL") !=
                        container.cap_drop.end();
  if (!drop_all)
    for (const std::string& cap : guest::default_capabilities())
      if (std::find(container.cap_drop.begin(), container.cap_drop.end(), cap) ==
          container.cap_drop.end())
        caps.push_back(cap);
  for (const std::string& cap : container.cap_add)
    if (std::find(caps.begin(), caps.end(), cap) == caps.end()) caps.push_back(cap);
  std::sort(caps.begin(), caps.end());
  return caps;
}

std::string ImageRef::to_string() const { return transport + ":" + path + "@" + digest; }

Result<PodSpec> parse_pod_spec(std::string_view toml_text) {
  if (toml_text.size() > kMaxSpecBytes)
    return make_error("spec.invalid",
                      "line 1: spec: larger than " + std::to_string(kMaxSpecBytes) + " bytes");
  toml::table root;
  // toml++ reports syntax errors by exception; this is the edge where they become Errors.
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    return invalid(e.source().begin.line, "syntax", std::string(e.description()));
  }
  return parse_root(root);
}

std::string to_toml(const PodSpec& spec) {
  std::string out;
  out += "name = " + quote(spec.name) + "\n";
  out += "tee = " + quote(vmm::to_string(spec.tee)) + "\n";
  out += "restart = " + quote(to_string(spec.restart)) + "\n";
  out += std::string("allow_exec = ") + (spec.allow_exec ? "true" : "false") + "\n";
  if (!spec.network.empty()) out += "network = " + quote(spec.network) + "\n";
  out += "\n[vm]\n";
  out += "vcpus = " + std::to_string(spec.vm.vcpus) + "\n";
  out += "memory_mib = " + std::to_string(spec.vm.memory_mib) + "\n";
  for (const Container& c : spec.containers) {
    out += c.init ? "\n[[init_containers]]\n" : "\n[[containers]]\n";
    out += "name = " + quote(c.name) + "\n";
    out += "image = " + quote(c.image.to_string()) + "\n";
    out += "command = [";
    for (std::size_t i = 0; i < c.command.size(); ++i) out += (i ? ", " : "") + quote(c.command[i]);
    out += "]\n";
    out += "env = {";
    bool first = true;
    for (const auto& [key, value] : c.env) {
      out += (first ? " " : ", ") + key + " = " + quote(value);
      first = false;
    }
    out += c.env.empty() ? "}\n" : " }\n";
    out += "workdir = " + quote(c.workdir) + "\n";
    // The keys of confinement and limits only when they are not the defaults, so that specs
    // written before they existed keep their canonical text.
    auto list = [](const std::vector<std::string>& items) {
      std::string text = "[";
      for (std::size_t i = 0; i < items.size(); ++i) text += (i ? ", " : "") + quote(items[i]);
      return text + "]";
    };
    if (!c.user.empty()) out += "user = " + quote(c.user) + "\n";
    if (c.read_only_rootfs) out += "read_only_rootfs = true\n";
    if (!c.tmpfs.empty()) out += "tmpfs = " + list(c.tmpfs) + "\n";
    if (!c.cap_add.empty()) out += "cap_add = " + list(c.cap_add) + "\n";
    if (!c.cap_drop.empty()) out += "cap_drop = " + list(c.cap_drop) + "\n";
    if (c.seccomp != "default") out += "seccomp = " + quote(c.seccomp) + "\n";
    if (c.cpu_millis != 0) {
      char cpus[32];
      std::snprintf(cpus, sizeof cpus, "%llu.%03llu",
                    static_cast<unsigned long long>(c.cpu_millis / 1000),
                    static_cast<unsigned long long>(c.cpu_millis % 1000));
      out += std::string("cpus = ") + cpus + "\n";
    }
    if (c.memory_mib != 0) out += "memory_mib = " + std::to_string(c.memory_mib) + "\n";
  }
  for (const Secret& s : spec.secrets) {
    out += "\n[[secrets]]\n";
    out += "resource = " + quote(s.resource) + "\n";
    if (!s.env.empty())
      out += "env = " + quote(s.env) + "\n";
    else
      out += "path = " + quote(s.path) + "\n";
  }
  for (const Port& p : spec.ports) {
    out += "\n[[ports]]\n";
    out += "host_port = " + std::to_string(p.host_port) + "\n";
    out += "guest_port = " + std::to_string(p.guest_port) + "\n";
    out += "protocol = " + quote(p.protocol) + "\n";
    out += "host_ip = " + quote(p.host_ip) + "\n";
  }
  return out;
}

}  // namespace confpod::spec
