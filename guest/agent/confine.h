// Privileges of a container's processes (docs/containers.md, "Privileges"): the capability
// sets and the default seccomp filter. These run in the child between fork and exec.
//
// The default filter is equal in effect to the default profile of the OCI runtimes (Docker's,
// which containerd, CRI-O and podman ship too): a list of allowed system calls, everything
// else fails with EPERM; calls that need a capability (mount and unshare need CAP_SYS_ADMIN,
// reboot CAP_SYS_BOOT, init_module CAP_SYS_MODULE, ...) are allowed only when the container's
// bounding set has it; clone may not create namespaces without CAP_SYS_ADMIN, and clone3
// fails with ENOSYS so that a C library falls back to clone, whose flags the filter can see;
// sockets of the AF_ALG and AF_VSOCK families are refused; the 32-bit x86 and x32 ABIs get
// the same rules. Names this libseccomp does not know (calls newer than it) are skipped, as
// runc skips them. Unlike runc, calls newer than the list get EPERM, not ENOSYS.
//
// Errors: "container.confine" (naming the step).
#pragma once

#include <string>
#include <vector>

#include "attest/base/result.h"

namespace confpod::guest::agent {

// Drops every capability outside `keep` from the bounding set (needs CAP_SETPCAP: call it
// while still root) and clears the ambient set.
Status drop_bounding_set(const std::vector<int>& keep);

// Sets permitted and effective to exactly `caps`, inheritable to none (call it after changing user:
// a non-root process passes {}).
Status set_capabilities(const std::vector<int>& caps);

// Loads the default filter for a process whose bounding set is `caps`. Call it last before
// exec; no_new_privs must be on.
Status load_default_seccomp(const std::vector<int>& caps);

// The system calls the default filter allows for a bounding set (tests, docs).
std::vector<std::string> default_seccomp_allowed(const std::vector<int>& caps);

}  // namespace confpod::guest::agent
