// Pod specs: the TOML a tenant writes to describe one pod (docs/pod-spec.md).
//
// A spec is untrusted input: parse_pod_spec checks every key, type and bound and reports the
// first problem as "spec.invalid" with the line and the dotted key path, e.g.
//   line 7: containers[0].image: digest must be sha256:<64 hex digits>
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"
#include "vmm/config.h"

namespace confpod::spec {

enum class RestartPolicy { kNo, kOnFailure, kAlways };
std::string to_string(RestartPolicy policy);  // "no" | "on-failure" | "always"

// "oci-archive:/srv/images/app.tar@sha256:<64 hex>"
struct ImageRef {
  std::string transport;          // "oci-archive" (the only transport so far)
  std::string path;               // absolute, normalized host path of the archive
  std::string digest;             // "sha256:" + 64 lower-case hex digits
  std::string to_string() const;  // the canonical "transport:path@digest" form
  bool operator==(const ImageRef&) const = default;
};

struct Container {
  std::string name;
  ImageRef image;
  std::vector<std::string> command;        // empty: the image's entrypoint
  std::map<std::string, std::string> env;  // ordered by key
  std::string workdir = "/";
  // From [[init_containers]]: runs to completion before the others start (docs/containers.md).
  bool init = false;
  std::string user;  // "uid[:gid]" or "name[:group]"; empty: the image's User
  bool read_only_rootfs = false;
  std::vector<std::string> tmpfs;     // directories that get a fresh tmpfs
  std::vector<std::string> cap_add;   // canonical "CAP_NET_ADMIN", sorted, unique
  std::vector<std::string> cap_drop;  // canonical, sorted, unique; "ALL": every default
  std::string seccomp = "default";    // "default" | "unconfined"
  std::uint64_t cpu_millis = 0;       // `cpus` x 1000; 0: no limit
  std::uint64_t memory_mib = 0;       // 0: no limit
  bool operator==(const Container&) const = default;
};

// The capability bounding set a container gets: the default set (guest/protocol/
// capabilities.h) less cap_drop, plus cap_add; sorted.
std::vector<std::string> container_capabilities(const Container& container);

struct Secret {
  std::string resource;  // KBS "repository/type/tag"
  std::string path;      // absolute path where the containers see it, or
  std::string env;       // the environment variable that holds it
  bool operator==(const Secret&) const = default;
};

// A published port: host_ip:host_port on the host reaches guest_port of the pod.
struct Port {
  std::uint16_t host_port = 0;
  std::uint16_t guest_port = 0;
  std::string protocol = "tcp";     // tcp | udp
  std::string host_ip = "0.0.0.0";  // an IPv4 address of the host; 0.0.0.0: all of them
  bool operator==(const Port&) const = default;
};

// Whether two published ports claim the same host socket (same protocol and port, and the
// same host_ip or either of them 0.0.0.0).
bool ports_conflict(const Port& a, const Port& b);

struct VmResources {
  unsigned vcpus = 1;
  unsigned memory_mib = 512;
  bool operator==(const VmResources&) const = default;
};

struct PodSpec {
  std::string name;
  vmm::Tee tee = vmm::Tee::kNone;  // required in the TOML: never defaulted
  RestartPolicy restart = RestartPolicy::kNo;
  // Whether the host may run extra commands in the pod's containers (the agent refuses exec
  // requests otherwise). Part of init-data, so the tenant's choice, not the host's.
  bool allow_exec = false;
  // "user" (QEMU user-mode networking), "none" (no interface) or the name of a network of
  // this host (docs/network.md). Empty in a spec: the daemon's default, filled in at
  // CreatePod, so the stored spec always names it.
  std::string network;
  // Without [vm] in the TOML: from the containers' totals (docs/pod-spec.md, [vm]).
  VmResources vm;
  // [[init_containers]] first (init = true), in spec order, then [[containers]].
  std::vector<Container> containers;
  std::vector<Secret> secrets;
  std::vector<Port> ports;
  bool operator==(const PodSpec&) const = default;
};

// Limits on untrusted input (documented in docs/pod-spec.md).
inline constexpr std::size_t kMaxSpecBytes = 1u << 20;
inline constexpr std::size_t kMaxContainers = 16;
inline constexpr std::size_t kMaxSecrets = 64;
inline constexpr std::size_t kMaxPorts = 64;
inline constexpr std::size_t kMaxCommandArgs = 256;
inline constexpr std::size_t kMaxEnv = 256;
inline constexpr std::size_t kMaxStringBytes = 4096;
inline constexpr unsigned kMinVcpus = 1, kMaxVcpus = 256;
inline constexpr unsigned kMinMemoryMib = 128, kMaxMemoryMib = 1048576;
inline constexpr std::size_t kMaxTmpfs = 16;  // per container
// What the guest kernel and agent need besides the containers' memory limits.
inline constexpr unsigned kGuestOverheadMib = 256;
inline constexpr std::uint64_t kMinCpuMillis = 10;  // the kernel's smallest quota (1 ms / 100 ms)

// Error code "spec.invalid" for everything (syntax, unknown keys, types, bounds).
Result<PodSpec> parse_pod_spec(std::string_view toml_text);

// Canonical TOML: fixed key order, defaults written out, so equal specs serialize to equal
// bytes and parse_pod_spec(to_toml(s)) == s.
std::string to_toml(const PodSpec& spec);

}  // namespace confpod::spec
