// Init-data: the pod's configuration as the guest agent receives it, bound into the launch.
//
// The daemon derives one canonical JSON document from the pod spec (daemon/spec/init_data.h)
// and binds its digest into the VM at launch: SHA-256 into SEV-SNP HOST_DATA, SHA-384 into
// TDX MRCONFIGID (for tee none, the simulated equivalent on the kernel command line). The
// host sends the same bytes to the agent over the channel; the agent hashes what it got,
// compares with the digest in its own evidence, and only then parses and uses it. The KBS
// reference values carry the same digest, so a host that alters init-data gets neither a
// running pod nor its secrets. docs/init-data.md describes the document.
//
// Canonical form: compact JSON, object keys sorted, every member written (defaults too), so
// equal documents are equal bytes and parse_init_data(to_json(d)) == d.
//
// Errors: "initdata.invalid" (shape, types, bounds; names the member), "initdata.too_large".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::guest {

// 2: network gained mac, address6, gateway6 and dns (bridge networking, docs/network.md).
// 3: containers gained init, user, read_only_rootfs, tmpfs, capabilities, seccomp, cpu_millis
//    and memory_mib; secrets gained env (docs/containers.md).
inline constexpr std::uint32_t kInitDataVersion = 3;
inline constexpr std::size_t kMaxInitDataBytes = 64u << 10;  // what the KBS takes in an Attestation

struct InitImage {
  std::string digest;  // "sha256:<64 hex>": the OCI image manifest digest
  std::string disk;    // virtio-blk serial of the read-only disk holding the OCI archive
  bool operator==(const InitImage&) const = default;
};

struct InitContainer {
  std::string name;
  InitImage image;
  std::vector<std::string> command;        // empty: the image config's Entrypoint + Cmd
  std::map<std::string, std::string> env;  // added to (and overriding) the image config's Env
  std::string workdir = "/";
  // Runs to completion, in order, before the other containers start; its failure ends the pod.
  bool init = false;
  std::string user;  // "uid[:gid]" or "name[:group]" of the image; "": the image config's User
  bool read_only_rootfs = false;
  std::vector<std::string> tmpfs;  // absolute directories that get a fresh tmpfs
  // The container's capability bounding set, canonical names ("CAP_CHOWN"), sorted, unique.
  // A root process gets them all; any other user none (no ambient capabilities).
  std::vector<std::string> capabilities;
  std::string seccomp = "default";  // "default" (docs/containers.md) | "unconfined"
  std::uint64_t cpu_millis = 0;     // cgroup cpu.max in thousandths of a CPU; 0: no limit
  std::uint64_t memory_mib = 0;     // cgroup memory.max; 0: no limit
  bool operator==(const InitContainer&) const = default;
};

struct InitSecret {
  std::string resource;  // KBS "<repository>/<type>/<tag>"
  std::string path;      // absolute path inside every container (a tmpfs holds it), or
  std::string env;       // the environment variable of every container that holds it
  bool operator==(const InitSecret&) const = default;
};

struct InitNetwork {
  std::string interface = "eth0";  // the name the agent gives the interface
  std::string mac;       // "02:cf:0a:59:00:02": the interface to use; empty: `interface` as is
  std::string address;   // "10.0.2.15/24"; empty: no network is configured
  std::string gateway;   // "10.0.2.2"; empty: no default route
  std::string address6;  // "fd00:89::2/64"; empty: no IPv6
  std::string gateway6;  // "fd00:89::1"; empty: no IPv6 default route
  std::vector<std::string> dns;  // nameservers for the containers' /etc/resolv.conf (<= 3)
  bool operator==(const InitNetwork&) const = default;
};

struct InitData {
  std::uint32_t version = kInitDataVersion;
  std::string pod;
  std::string tee;      // "none" | "snp" | "tdx"
  std::string kbs_url;  // "http://10.0.2.2:8080"; empty when the pod has no secrets
  InitNetwork network;
  std::vector<InitContainer> containers;  // at least one
  std::vector<InitSecret> secrets;
  bool allow_exec = false;  // host "exec" requests (off unless the spec allows them)
  bool operator==(const InitData&) const = default;
};

// The canonical bytes (the ones whose digest is bound at launch).
std::string to_json(const InitData& data);
// Parses hostile bytes: size cap, strict types, unknown members refused, bounded counts and
// string lengths, names and paths checked (absolute, no "..", no NUL).
Result<InitData> parse_init_data(std::string_view text);

// Limits of the document (the pod spec's, daemon/spec/spec.h).
inline constexpr std::size_t kMaxInitContainers = 16;
inline constexpr std::size_t kMaxInitSecrets = 64;
inline constexpr std::size_t kMaxInitArgs = 256;  // per container command
inline constexpr std::size_t kMaxInitDns = 3;     // resolv.conf reads no more
inline constexpr std::size_t kMaxInitEnv = 256;   // per container env
inline constexpr std::size_t kMaxInitStringBytes = 4096;
inline constexpr std::size_t kMaxInitTmpfs = 16;  // per container
inline constexpr std::uint64_t kMaxInitCpuMillis = 256000;
inline constexpr std::uint64_t kMaxInitMemoryMib = 1048576;

// A container's `user`: "uid[:gid]" or "name[:group]", each side of [A-Za-z0-9_.-], at most 32
// bytes, not starting with '-' or '.' (the pod spec's rule too).
bool is_container_user(std::string_view user);

// The checks parse_init_data applies after reading the types, on a document built in memory
// (the daemon calls it before launching, so it never binds init-data the agent would refuse).
// parse_init_data(to_json(d)) == d holds exactly when this is ok. Error "initdata.invalid".
Status validate_init_data(const InitData& data);

}  // namespace confpod::guest
