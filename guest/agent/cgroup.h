// The pod's cgroup v2 tree inside the VM (docs/containers.md, "Resources"): one cgroup per
// container under <root>/confpod, with the spec's cpu and memory limits.
//
// The agent (PID 1) stays in the root cgroup, which cgroup v2 exempts from the "no processes
// in inner nodes" rule; each container joins its own leaf before exec (Confinement::
// cgroup_procs), so everything it forks, and every command exec'd into it, counts against its
// limits. memory.oom.group makes an out-of-memory kill take the whole container, and the
// kill shows in the leaf's memory.events, which is how the agent tells an OOM from a SIGKILL.
//
// Errors: "agent.cgroup" (naming the file).
#pragma once

#include <cstdint>
#include <string>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"

namespace confpod::guest::agent {

class PodCgroups {
 public:
  // Enables the cpu, memory and pids controllers below `root` (a mounted cgroup2, normally
  // /sys/fs/cgroup) and creates <root>/confpod.
  static Result<PodCgroups> open(const std::string& root);

  // Creates <root>/confpod/<container> with memory.max (MiB; 0: none; swap off) and cpu.max
  // (thousandths of a CPU over a 100 ms period; 0: none), and returns its cgroup.procs open
  // for writing.
  Result<UniqueFd> create(const std::string& container, std::uint64_t cpu_millis,
                          std::uint64_t memory_mib) const;

  // How many processes of the container the kernel killed for its memory limit.
  std::uint64_t oom_kills(const std::string& container) const;

  std::string path(const std::string& container) const { return pod_ + "/" + container; }

 private:
  explicit PodCgroups(std::string pod) : pod_(std::move(pod)) {}
  std::string pod_;  // <root>/confpod
};

// cpu.max's text for a limit: "<quota> 100000" (quota >= 1000 us), or "max".
std::string cpu_max_value(std::uint64_t cpu_millis);

}  // namespace confpod::guest::agent
