#include "guest/protocol/init_data.h"

#include <arpa/inet.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "attest/base/path.h"
#include "guest/protocol/capabilities.h"
#include "guest/protocol/strict_json.h"

namespace confpod::guest {
namespace {

using detail::element_path;
using detail::member_path;
using detail::Members;
using detail::quote_value;
using nlohmann::json;

constexpr char kInvalid[] = "initdata.invalid";

Error invalid(const std::string& path, const std::string& problem) {
  return make_error(kInvalid, path + ": " + problem);
}

// --- the rules (the pod spec's, daemon/spec/spec.cc, where they overlap) ---------------------

// [a-z0-9][a-z0-9-]{0,62}: usable as a host name, a directory and a libvirt domain name.
bool is_pod_name(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}
constexpr char kPodNameRule[] = "must match [a-z0-9][a-z0-9-]{0,62}";

bool is_env_key(std::string_view s) {
  if (s.empty() || s.size() > 256) return false;
  if (s.front() >= '0' && s.front() <= '9') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

bool is_lower_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_image_digest(std::string_view s) {
  constexpr std::string_view kSha256 = "sha256:";
  return s.size() == kSha256.size() + 64 && s.substr(0, kSha256.size()) == kSha256 &&
         is_lower_hex(s.substr(kSha256.size()));
}

// [A-Za-z0-9_-]{1,20}: virtio-blk serials are at most 20 bytes.
bool is_disk_serial(std::string_view s) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

// [A-Za-z0-9_-]{1,15}: a Linux interface name (IFNAMSIZ 16 with the NUL), never "." or "..".
bool is_interface_name(std::string_view s) {
  if (s.empty() || s.size() > 15) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

bool is_segment_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// KBS resource URI path: exactly repository/type/tag, each a safe non-dot segment.
bool is_resource(std::string_view s) {
  std::size_t segments = 0;
  while (true) {
    const std::size_t slash = s.find('/');
    std::string_view seg = s.substr(0, slash);
    if (seg.empty() || seg == "." || seg == ".." || seg.size() > 128) return false;
    for (char c : seg)
      if (!is_segment_char(c)) return false;
    ++segments;
    if (slash == std::string_view::npos) break;
    s = s.substr(slash + 1);
  }
  return segments == 3;
}

// Strict dotted quad: four decimal octets 0..255 without leading zeros (which some parsers
// read as octal, so two readers could disagree on the address).
bool is_ipv4(std::string_view s) {
  int octets = 0;
  while (true) {
    const std::size_t dot = s.find('.');
    std::string_view part = s.substr(0, dot);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part.front() == '0')) return false;
    int value = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    if (value > 255) return false;
    ++octets;
    if (dot == std::string_view::npos) break;
    s = s.substr(dot + 1);
  }
  return octets == 4;
}

bool is_ipv6(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  std::string text(s);
  unsigned char out[16];
  return ::inet_pton(AF_INET6, text.c_str(), out) == 1;
}

bool is_ipv6_prefix(std::string_view s) {
  const std::size_t slash = s.find('/');
  if (slash == std::string_view::npos || !is_ipv6(s.substr(0, slash))) return false;
  std::string_view len = s.substr(slash + 1);
  if (len.empty() || len.size() > 3) return false;
  unsigned v = 0;
  for (char c : len) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 128;
}

// Lower-case "xx:xx:xx:xx:xx:xx".
bool is_mac(std::string_view s) {
  if (s.size() != 17) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

bool is_ipv4_prefix(std::string_view s) {
  const std::size_t slash = s.find('/');
  if (slash == std::string_view::npos || !is_ipv4(s.substr(0, slash))) return false;
  std::string_view len = s.substr(slash + 1);
  if (len.empty() || len.size() > 2 || (len.size() > 1 && len.front() == '0')) return false;
  int value = 0;
  for (char c : len) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return value <= 32;
}

// Free text (commands, env values, paths, the KBS URL): bounded, valid UTF-8 and free of
// control characters, as in the pod spec.
Status check_text(const std::string& path, std::string_view s) {
  if (s.size() > kMaxInitStringBytes)
    return invalid(path, "longer than " + std::to_string(kMaxInitStringBytes) + " bytes");
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return invalid(path, "contains a control character");
  if (!detail::is_valid_utf8(s)) return invalid(path, "is not valid UTF-8");
  return ok_status();
}

Status check_path(const std::string& path, std::string_view value, bool allow_root) {
  CONFPOD_TRY(check_text(path, value));
  if (auto problem = normalized_path_problem(value, allow_root)) return invalid(path, *problem);
  return ok_status();
}

Status check_kbs_url(std::string_view url) {
  if (url.empty()) return ok_status();
  CONFPOD_TRY(check_text("kbs_url", url));
  std::string_view rest;
  if (url.substr(0, 7) == "http://")
    rest = url.substr(7);
  else if (url.substr(0, 8) == "https://")
    rest = url.substr(8);
  else
    return invalid("kbs_url", "must start with http:// or https://, got " + quote_value(url));
  if (rest.empty() || rest.front() == '/') return invalid("kbs_url", "has no host");
  if (rest.find(' ') != std::string_view::npos) return invalid("kbs_url", "contains a space");
  return ok_status();
}

Status check_network(const InitNetwork& n) {
  if (!is_interface_name(n.interface))
    return invalid("network.interface",
                   "must match [A-Za-z0-9_-]{1,15}, got " + quote_value(n.interface));
  if (!n.address.empty() && !is_ipv4_prefix(n.address))
    return invalid("network.address", "must be a.b.c.d/len, got " + quote_value(n.address));
  if (!n.gateway.empty()) {
    if (!is_ipv4(n.gateway))
      return invalid("network.gateway", "must be a.b.c.d, got " + quote_value(n.gateway));
    if (n.address.empty())
      return invalid("network.gateway", "needs network.address (no address, no network)");
  }
  if (!n.mac.empty() && !is_mac(n.mac))
    return invalid("network.mac",
                   "must be xx:xx:xx:xx:xx:xx (lower-case hex), got " + quote_value(n.mac));
  if (!n.address6.empty() && !is_ipv6_prefix(n.address6))
    return invalid("network.address6",
                   "must be an IPv6 address/len, got " + quote_value(n.address6));
  if (!n.gateway6.empty()) {
    if (!is_ipv6(n.gateway6))
      return invalid("network.gateway6", "must be an IPv6 address, got " + quote_value(n.gateway6));
    if (n.address6.empty()) return invalid("network.gateway6", "needs network.address6");
  }
  if (n.dns.size() > kMaxInitDns)
    return invalid("network.dns", "at most " + std::to_string(kMaxInitDns) + " servers");
  for (std::size_t i = 0; i < n.dns.size(); ++i)
    if (!is_ipv4(n.dns[i]) && !is_ipv6(n.dns[i]))
      return invalid(element_path("network.dns", i),
                     "must be an IPv4 or IPv6 address, got " + quote_value(n.dns[i]));
  return ok_status();
}

Status check_container(const std::string& p, const InitContainer& c) {
  if (!is_pod_name(c.name)) return invalid(member_path(p, "name"), kPodNameRule);
  if (!is_image_digest(c.image.digest))
    return invalid(member_path(p, "image.digest"), "must be sha256:<64 hex digits>");
  if (!is_disk_serial(c.image.disk))
    return invalid(member_path(p, "image.disk"), "must match [A-Za-z0-9_-]{1,20}");
  const std::string command_path = member_path(p, "command");
  if (c.command.size() > kMaxInitArgs)
    return invalid(command_path, "more than " + std::to_string(kMaxInitArgs) + " arguments");
  for (std::size_t i = 0; i < c.command.size(); ++i)
    CONFPOD_TRY(check_text(element_path(command_path, i), c.command[i]));
  const std::string env_path = member_path(p, "env");
  if (c.env.size() > kMaxInitEnv)
    return invalid(env_path, "more than " + std::to_string(kMaxInitEnv) + " variables");
  for (const auto& [key, value] : c.env) {
    if (!is_env_key(key))
      return invalid(env_path, "variable name " + quote_value(key) +
                                   " must match [A-Za-z_][A-Za-z0-9_]* (at most 256 bytes)");
    CONFPOD_TRY(check_text(member_path(env_path, key), value));
  }
  CONFPOD_TRY(check_path(member_path(p, "workdir"), c.workdir, true));
  if (!c.user.empty() && !is_container_user(c.user))
    return invalid(member_path(p, "user"),
                   "must be uid[:gid] or name[:group] of [A-Za-z0-9_.-] (at most 32 each), got " +
                       quote_value(c.user));
  const std::string tmpfs_path = member_path(p, "tmpfs");
  if (c.tmpfs.size() > kMaxInitTmpfs)
    return invalid(tmpfs_path, "more than " + std::to_string(kMaxInitTmpfs) + " mounts");
  std::set<std::string_view> mounts;
  for (std::size_t i = 0; i < c.tmpfs.size(); ++i) {
    CONFPOD_TRY(check_path(element_path(tmpfs_path, i), c.tmpfs[i], false));
    if (!mounts.insert(c.tmpfs[i]).second)
      return invalid(element_path(tmpfs_path, i), "duplicate mount " + quote_value(c.tmpfs[i]));
  }
  const std::string caps_path = member_path(p, "capabilities");
  for (std::size_t i = 0; i < c.capabilities.size(); ++i) {
    if (!capability_number(c.capabilities[i]))
      return invalid(element_path(caps_path, i),
                     "unknown capability " + quote_value(c.capabilities[i]));
    if (i > 0 && c.capabilities[i - 1] >= c.capabilities[i])
      return invalid(caps_path, "must be sorted and unique");
  }
  if (c.seccomp != "default" && c.seccomp != "unconfined")
    return invalid(member_path(p, "seccomp"),
                   "must be default or unconfined, got " + quote_value(c.seccomp));
  if (c.cpu_millis > kMaxInitCpuMillis)
    return invalid(member_path(p, "cpu_millis"),
                   "must be at most " + std::to_string(kMaxInitCpuMillis));
  if (c.memory_mib > kMaxInitMemoryMib)
    return invalid(member_path(p, "memory_mib"),
                   "must be at most " + std::to_string(kMaxInitMemoryMib));
  return ok_status();
}

Status check_secret(const std::string& p, const InitSecret& s) {
  if (!is_resource(s.resource))
    return invalid(member_path(p, "resource"),
                   "must be repository/type/tag, each of [A-Za-z0-9._-]");
  if (s.path.empty() == s.env.empty()) return invalid(p, "needs exactly one of path and env");
  if (!s.env.empty()) {
    if (!is_env_key(s.env))
      return invalid(
          member_path(p, "env"),
          "must match [A-Za-z_][A-Za-z0-9_]* (at most 256 bytes), got " + quote_value(s.env));
    return ok_status();
  }
  return check_path(member_path(p, "path"), s.path, false);
}

// --- reading the JSON ------------------------------------------------------------------------

Status expect_object(const json& value, const std::string& path) {
  if (!value.is_object())
    return invalid(path, std::string("must be an object, got ") + detail::json_type_name(value));
  return ok_status();
}

Result<InitImage> read_image(const json& value, const std::string& path) {
  CONFPOD_TRY(expect_object(value, path));
  Members m(value, path, kInvalid);
  CONFPOD_TRY(m.only({"digest", "disk"}));
  InitImage image;
  CONFPOD_ASSIGN_OR_RETURN(image.digest, m.string("digest"));
  CONFPOD_ASSIGN_OR_RETURN(image.disk, m.string("disk"));
  return image;
}

Result<std::vector<std::string>> string_array(const Members& m, std::string_view name,
                                              std::size_t max_items) {
  CONFPOD_ASSIGN_OR_RETURN(const json* array, m.array(name, max_items));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const json& item = (*array)[i];
    if (!item.is_string())
      return invalid(element_path(m.path(name), i),
                     std::string("must be a string, got ") + detail::json_type_name(item));
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<InitContainer> read_container(const json& value, const std::string& path) {
  CONFPOD_TRY(expect_object(value, path));
  Members m(value, path, kInvalid);
  CONFPOD_TRY(m.only({"capabilities", "command", "cpu_millis", "env", "image", "init", "memory_mib",
                      "name", "read_only_rootfs", "seccomp", "tmpfs", "user", "workdir"}));
  InitContainer c;
  CONFPOD_ASSIGN_OR_RETURN(c.name, m.string("name"));
  CONFPOD_ASSIGN_OR_RETURN(const json* image, m.get("image"));
  CONFPOD_ASSIGN_OR_RETURN(c.image, read_image(*image, m.path("image")));
  CONFPOD_ASSIGN_OR_RETURN(const json* command, m.array("command", kMaxInitArgs));
  for (std::size_t i = 0; i < command->size(); ++i) {
    const json& arg = (*command)[i];
    if (!arg.is_string())
      return invalid(element_path(m.path("command"), i),
                     std::string("must be a string, got ") + detail::json_type_name(arg));
    c.command.push_back(arg.get<std::string>());
  }
  CONFPOD_ASSIGN_OR_RETURN(const json* env, m.object("env", kMaxInitEnv));
  for (auto it = env->begin(); it != env->end(); ++it) {
    if (!it.value().is_string())
      return invalid(member_path(m.path("env"), quote_value(it.key())),
                     std::string("must be a string, got ") + detail::json_type_name(it.value()));
    c.env.emplace(it.key(), it.value().get<std::string>());
  }
  CONFPOD_ASSIGN_OR_RETURN(c.workdir, m.string("workdir"));
  CONFPOD_ASSIGN_OR_RETURN(c.init, m.boolean("init"));
  CONFPOD_ASSIGN_OR_RETURN(c.user, m.string("user"));
  CONFPOD_ASSIGN_OR_RETURN(c.read_only_rootfs, m.boolean("read_only_rootfs"));
  CONFPOD_ASSIGN_OR_RETURN(c.tmpfs, string_array(m, "tmpfs", kMaxInitTmpfs));
  CONFPOD_ASSIGN_OR_RETURN(
      c.capabilities,
      string_array(m, "capabilities", static_cast<std::size_t>(kLastCapability) + 1));
  CONFPOD_ASSIGN_OR_RETURN(c.seccomp, m.string("seccomp"));
  CONFPOD_ASSIGN_OR_RETURN(c.cpu_millis, m.unsigned_integer("cpu_millis"));
  CONFPOD_ASSIGN_OR_RETURN(c.memory_mib, m.unsigned_integer("memory_mib"));
  return c;
}

Result<InitSecret> read_secret(const json& value, const std::string& path) {
  CONFPOD_TRY(expect_object(value, path));
  Members m(value, path, kInvalid);
  CONFPOD_TRY(m.only({"env", "path", "resource"}));
  InitSecret s;
  CONFPOD_ASSIGN_OR_RETURN(s.env, m.string("env"));
  CONFPOD_ASSIGN_OR_RETURN(s.path, m.string("path"));
  CONFPOD_ASSIGN_OR_RETURN(s.resource, m.string("resource"));
  return s;
}

Result<InitNetwork> read_network(const json& value, const std::string& path) {
  CONFPOD_TRY(expect_object(value, path));
  Members m(value, path, kInvalid);
  CONFPOD_TRY(m.only({"address", "address6", "dns", "gateway", "gateway6", "interface", "mac"}));
  InitNetwork n;
  CONFPOD_ASSIGN_OR_RETURN(n.address, m.string("address"));
  CONFPOD_ASSIGN_OR_RETURN(n.address6, m.string("address6"));
  CONFPOD_ASSIGN_OR_RETURN(const json* dns, m.array("dns", kMaxInitDns));
  for (std::size_t i = 0; i < dns->size(); ++i) {
    const json& server = (*dns)[i];
    if (!server.is_string())
      return invalid(element_path(m.path("dns"), i),
                     std::string("must be a string, got ") + detail::json_type_name(server));
    n.dns.push_back(server.get<std::string>());
  }
  CONFPOD_ASSIGN_OR_RETURN(n.gateway, m.string("gateway"));
  CONFPOD_ASSIGN_OR_RETURN(n.gateway6, m.string("gateway6"));
  CONFPOD_ASSIGN_OR_RETURN(n.interface, m.string("interface"));
  CONFPOD_ASSIGN_OR_RETURN(n.mac, m.string("mac"));
  return n;
}

// The canonical text. JSON carries only UTF-8, so invalid bytes (which
// validate_init_data refuses) become U+FFFD rather than an exception.
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

namespace {
// One side of a container user: an id or a name of [A-Za-z0-9_.-], at most 32 bytes.
bool is_user_part(std::string_view s) {
  if (s.empty() || s.size() > 32 || s.front() == '-' || s.front() == '.') return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  return true;
}

}  // namespace

bool is_container_user(std::string_view s) {
  const std::size_t colon = s.find(':');
  if (colon == std::string_view::npos) return is_user_part(s);
  return is_user_part(s.substr(0, colon)) && is_user_part(s.substr(colon + 1));
}


std::string to_json(const InitData& data) {
  // nlohmann's objects are std::maps: keys come out sorted, which makes the form canonical.
  json containers = json::array();
  for (const InitContainer& c : data.containers) {
    json env = json::object();
    for (const auto& [key, value] : c.env) env[key] = value;
    containers.push_back(json{{"capabilities", c.capabilities},
                              {"command", c.command},
                              {"cpu_millis", c.cpu_millis},
                              {"env", std::move(env)},
                              {"image", {{"digest", c.image.digest}, {"disk", c.image.disk}}},
                              {"init", c.init},
                              {"memory_mib", c.memory_mib},
                              {"name", c.name},
                              {"read_only_rootfs", c.read_only_rootfs},
                              {"seccomp", c.seccomp},
                              {"tmpfs", c.tmpfs},
                              {"user", c.user},
                              {"workdir", c.workdir}});
  }
  json secrets = json::array();
  for (const InitSecret& s : data.secrets)
    secrets.push_back(json{{"env", s.env}, {"path", s.path}, {"resource", s.resource}});
  json doc = json::object();
  doc["allow_exec"] = data.allow_exec;
  doc["containers"] = std::move(containers);
  doc["kbs_url"] = data.kbs_url;
  doc["network"] = json{{"address", data.network.address},
                        {"address6", data.network.address6},
                        {"dns", data.network.dns},
                        {"gateway", data.network.gateway},
                        {"gateway6", data.network.gateway6},
                        {"interface", data.network.interface},
                        {"mac", data.network.mac}};
  doc["pod"] = data.pod;
  doc["secrets"] = std::move(secrets);
  doc["tee"] = data.tee;
  doc["version"] = data.version;
  return dump(doc);
}

Status validate_init_data(const InitData& d) {
  if (d.version != kInitDataVersion)
    return invalid("version", "must be " + std::to_string(kInitDataVersion) + ", got " +
                                  std::to_string(d.version));
  if (!is_pod_name(d.pod)) return invalid("pod", kPodNameRule);
  if (d.tee != "none" && d.tee != "snp" && d.tee != "tdx")
    return invalid("tee", "must be snp, tdx or none, got " + quote_value(d.tee));
  CONFPOD_TRY(check_kbs_url(d.kbs_url));
  CONFPOD_TRY(check_network(d.network));
  if (d.containers.empty()) return invalid("containers", "at least one container is required");
  if (d.containers.size() > kMaxInitContainers)
    return invalid("containers", "more than " + std::to_string(kMaxInitContainers) + " containers");
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < d.containers.size(); ++i) {
    const std::string p = element_path("containers", i);
    CONFPOD_TRY(check_container(p, d.containers[i]));
    if (!names.insert(d.containers[i].name).second)
      return invalid(p + ".name", "duplicate container name " + quote_value(d.containers[i].name));
    if (d.containers[i].init && i > 0 && !d.containers[i - 1].init)
      return invalid(p + ".init", "init containers come before the others");
  }
  if (d.containers.back().init)
    return invalid("containers", "at least one container that is not an init container");
  if (d.secrets.size() > kMaxInitSecrets)
    return invalid("secrets", "more than " + std::to_string(kMaxInitSecrets) + " secrets");
  std::set<std::string_view> paths;
  std::set<std::string_view> variables;
  for (std::size_t i = 0; i < d.secrets.size(); ++i) {
    const std::string p = element_path("secrets", i);
    CONFPOD_TRY(check_secret(p, d.secrets[i]));
    if (!d.secrets[i].path.empty() && !paths.insert(d.secrets[i].path).second)
      return invalid(p + ".path", "duplicate secret path " + quote_value(d.secrets[i].path));
    if (!d.secrets[i].env.empty() && !variables.insert(d.secrets[i].env).second)
      return invalid(p + ".env", "duplicate secret variable " + quote_value(d.secrets[i].env));
  }
  return ok_status();
}

Result<InitData> parse_init_data(std::string_view text) {
  if (text.size() > kMaxInitDataBytes)
    return make_error("initdata.too_large", "init-data of " + std::to_string(text.size()) +
                                                " bytes exceeds the limit of " +
                                                std::to_string(kMaxInitDataBytes));
  CONFPOD_ASSIGN_OR_RETURN(json doc, detail::parse_strict_json(text, kInvalid, "init-data"));
  if (!doc.is_object())
    return make_error(kInvalid, std::string("init-data: must be a JSON object, got ") +
                                    detail::json_type_name(doc));
  Members m(doc, "", kInvalid);
  InitData d;
  // The version first: a document of another version is refused as such, not for the
  // members that version may have added.
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t version, m.unsigned_integer("version"));
  if (version != kInitDataVersion)
    return invalid("version", "must be " + std::to_string(kInitDataVersion) + ", got " +
                                  std::to_string(version));
  d.version = kInitDataVersion;
  CONFPOD_TRY(m.only(
      {"allow_exec", "containers", "kbs_url", "network", "pod", "secrets", "tee", "version"}));
  CONFPOD_ASSIGN_OR_RETURN(d.allow_exec, m.boolean("allow_exec"));
  CONFPOD_ASSIGN_OR_RETURN(const json* containers, m.array("containers", kMaxInitContainers));
  for (std::size_t i = 0; i < containers->size(); ++i) {
    CONFPOD_ASSIGN_OR_RETURN(InitContainer c,
                             read_container((*containers)[i], element_path("containers", i)));
    d.containers.push_back(std::move(c));
  }
  CONFPOD_ASSIGN_OR_RETURN(d.kbs_url, m.string("kbs_url"));
  CONFPOD_ASSIGN_OR_RETURN(const json* network, m.get("network"));
  CONFPOD_ASSIGN_OR_RETURN(d.network, read_network(*network, "network"));
  CONFPOD_ASSIGN_OR_RETURN(d.pod, m.string("pod"));
  CONFPOD_ASSIGN_OR_RETURN(const json* secrets, m.array("secrets", kMaxInitSecrets));
  for (std::size_t i = 0; i < secrets->size(); ++i) {
    CONFPOD_ASSIGN_OR_RETURN(InitSecret s, read_secret((*secrets)[i], element_path("secrets", i)));
    d.secrets.push_back(std::move(s));
  }
  CONFPOD_ASSIGN_OR_RETURN(d.tee, m.string("tee"));
  CONFPOD_TRY(validate_init_data(d));
  return d;
}

}  // namespace confpod::guest
