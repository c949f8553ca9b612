// QEMUs and runtime directories that no pod accounts for any more (a crash between a Remove's
// store write and its clean-up, a QEMU whose QMP hung at re-attach): found by our pidfile and
// a command line that names our QMP socket, and ended, never left running unaccounted for.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "daemon/spec/vm_from_spec.h"

namespace confpod::pods {

// Kills the QEMU serving `paths` (with its process group) without asking QMP, which may be
// what hangs. True when one was found and signalled. `proc_root`: "/proc" (tests: a copy).
bool kill_stray_qemu(const spec::PodPaths& paths, const std::string& proc_root = "/proc");

// Each directory under <runtime_dir>/pods whose name `is_pod` does not know: its QEMU killed
// (kill_stray_qemu), the directory removed. Returns the names swept.
std::vector<std::string> sweep_runtime_dirs(const std::string& runtime_dir,
                                            const std::function<bool(const std::string&)>& is_pod);

// The uid and gid libvirt's QEMU runs as ([vmm] libvirt_qemu_user). "pods.libvirt_user" when
// the system has no such user.
struct VmOwner {
  uid_t uid = 0;
  gid_t gid = 0;
};
Result<VmOwner> lookup_vm_owner(const std::string& user);

// The pod's directory (root's, 0700) and its empty vm/ directory, before a start. With
// `vm_owner`, vm/ belongs to that user (0700) and the pod directory is 0710 with its group, so
// that it can reach vm/ but list or read nothing else. What a previous run left in vm/ is
// removed without following links; a vm/ that is not a directory is replaced. "pods.io" names
// the path that failed.
Status prepare_pod_dirs(const spec::PodPaths& paths, std::optional<VmOwner> vm_owner);

}  // namespace confpod::pods
