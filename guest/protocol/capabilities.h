// Linux capability names as pod specs and init-data spell them ("CAP_NET_ADMIN"), their
// numbers, and the default set a container gets (docs/containers.md, "Privileges").
//
// The default is the set Docker, containerd and CRI-O give a container (the one a Kubernetes
// pod expects); podman's is the same less CAP_MKNOD, CAP_NET_RAW and CAP_AUDIT_WRITE. Anything
// else (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_MODULE, ...) must be added by name in the spec,
// and the list that results is part of init-data, so the attestation covers it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace confpod::guest {

// The highest capability number this table knows (CAP_CHECKPOINT_RESTORE, Linux 5.9).
inline constexpr int kLastCapability = 40;

// "CAP_CHOWN" -> 0 ... "CAP_CHECKPOINT_RESTORE" -> 40; nullopt for anything else. Only the
// canonical upper-case "CAP_" form is accepted here (init-data is canonical).
std::optional<int> capability_number(std::string_view name);
// 0 -> "CAP_CHOWN"; "" for a number outside the table.
std::string capability_name(int number);

// What a spec may write: "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" -> "CAP_NET_ADMIN".
std::optional<std::string> canonical_capability(std::string_view spelled);

// The default set, sorted by name.
std::vector<std::string> default_capabilities();

}  // namespace confpod::guest
