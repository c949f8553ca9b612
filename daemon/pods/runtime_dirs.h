// QEMUs and runtime directories that no pod accounts for any more (a crash between a Remove's
// store write and its clean-up, a QEMU whose QMP hung at re-attach): found by our pidfile and
// a command line that names our QMP socket, and ended, never left running unaccounted for.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "daemon/spec/vm_from_spec.h"

namespace confpod::pods {

// Kills the QEMU serving `paths` (with its process group) without asking QMP, which may be
// what hangs. True when one was found and signalled. `proc_root`: "/proc" (tests: a copy).
bool kill_stray_qemu(const spec::PodPaths& paths, const std::string& proc_root = "/proc");

// Each directory under <runtime_dir>/pods whose name `is_pod` does not know: its QEMU killed
// (kill_stray_qemu), the directory removed. Returns the names swept.
std::vector<std::string> sweep_runtime_dirs(const std::string& runtime_dir,
                                            const std::function<bool(const std::string&)>& is_pod);

}  // namespace confpod::pods
