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
  bool operator==(const Container&) const = default;
};

struct Secret {
  std::string resource;  // KBS "repository/type/tag"
  std::string path;      // absolute path where the containers see it
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
  VmResources vm;
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

// Error code "spec.invalid" for everything (syntax, unknown keys, types, bounds).
Result<PodSpec> parse_pod_spec(std::string_view toml_text);

// Canonical TOML: fixed key order, defaults written out, so equal specs serialize to equal
// bytes and parse_pod_spec(to_toml(s)) == s.
std::string to_toml(const PodSpec& spec);

}  // namespace confpod::spec
