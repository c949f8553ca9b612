// The files of a pod's runtime directory the manager reads (internal to daemon/pods): QEMU's
// log, and the pod log that GetPodLog returns (QEMU, console, agent, containers).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attest/base/result.h"
#include "daemon/spec/vm_from_spec.h"

namespace confpod::pods {

std::string qemu_log_path(const spec::PodPaths& paths);

// The last max_bytes (capped at kMaxLogBytes) of the pod's files, fairly shared, as UTF-8
// with a header line per file.
Result<std::string> read_pod_log(const spec::PodPaths& paths, std::uint64_t max_bytes);

// A caller-supplied name made safe to quote in a message: at most 64 bytes, printable ASCII,
// anything else as \xNN.
std::string quote_name(std::string_view name);

}  // namespace confpod::pods
