// The agent's set-up steps between init-data and the first container, each on explicit
// inputs so that each is tested on its own (pod_setup_test.cc): the init-data digest check
// against the launch-bound value, the secrets from the KBS, and each image's verified unpack.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "guest/agent/container.h"
#include "guest/evidence/evidence.h"
#include "guest/oci/archive.h"
#include "guest/protocol/init_data.h"

namespace confpod::guest::agent {

// The raw init-data's digest (SHA-384 for tdx, else SHA-256) against the one the hardware
// bound at launch, before a byte of it is parsed: a host that altered it gets only this
// error. Errors "agent.evidence" (no bound digest), "agent.init_data.mismatch".
Status verify_init_data_digest(EvidenceProvider& provider, std::string_view raw_init_data);

// What the secrets became: files on each container's secret tmpfs, and "NAME=value" entries
// for every container's environment (cut at the first NUL).
struct PodSecrets {
  std::vector<SecretFile> files;
  std::vector<std::string> env;
  PodSecrets() = default;
  PodSecrets(PodSecrets&&) = default;
  PodSecrets& operator=(PodSecrets&&) = delete;  // would free `env` unwiped: clear() first
  ~PodSecrets() { clear(); }
  // Wipes and drops everything (the files wipe themselves).
  void clear();
};

// Stands in for the KBS in tests: resource -> bytes, with no handshake.
using SecretSource = std::function<Result<Bytes>(const std::string& resource)>;

// Attests to init.kbs_url (with the raw init-data the KBS checks against the evidence) and
// fetches init.secrets, or reads them from `source` when it is set. `on_attested` is called
// after a real attestation. Nothing of a secret's value or length reaches the log. Error
// "agent.kbs" naming the resource.
Result<PodSecrets> fetch_secrets(const InitData& init, const std::string& raw_init_data,
                                 EvidenceProvider& provider, const SecretSource& source,
                                 const std::function<void()>& on_attested);

// Where an image is unpacked: <state_dir>/containers/<name>/rootfs.
std::string container_rootfs(const std::string& state_dir, const std::string& name);

// Verifies the OCI archive on `disk` against the container's pinned digest and unpacks it to
// container_rootfs() (a new empty directory; on a fresh tmpfs when `mount_tmpfs`), then writes
// the pod's /etc/hosts, hostname and resolv.conf from init-data. Returns the image's config.
// Error "agent.image" naming the container.
Result<oci::ImageConfig> unpack_container_image(const InitContainer& container,
                                                const std::string& disk,
                                                const std::string& state_dir, bool mount_tmpfs,
                                                const InitData& init);

// Finds the block device whose virtio serial is `serial`: <root>/sys/block/vd*/serial ->
// <root>/dev/vd*. Error "agent.image" when none has it.
Result<std::string> find_disk_by_serial(const std::string& root, const std::string& serial);

}  // namespace confpod::guest::agent
