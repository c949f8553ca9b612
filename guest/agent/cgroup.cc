#include "guest/agent/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "attest/base/bytes.h"

namespace confpod::guest::agent {
namespace {

constexpr std::uint64_t kPeriodUs = 100000;

Error cgroup_error(const std::string& what) {
  return make_error("agent.cgroup", what + ": " + std::strerror(errno));
}

// Writes one value into a cgroup interface file (which exists, or the controller is off).
Status write_file(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return cgroup_error("open " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return cgroup_error("write \"" + value + "\" to " + path);
  return ok_status();
}

Status make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return cgroup_error("mkdir " + path);
  return ok_status();
}

}  // namespace

std::string cpu_max_value(std::uint64_t cpu_millis) {
  if (cpu_millis == 0) return "max";
  // The kernel refuses a quota under 1 ms.
  std::uint64_t quota = std::max<std::uint64_t>(cpu_millis * kPeriodUs / 1000, 1000);
  return std::to_string(quota) + " " + std::to_string(kPeriodUs);
}

Result<PodCgroups> PodCgroups::open(const std::string& root) {
  const std::string pod = root + "/confpod";
  CONFPOD_TRY(write_file(root + "/cgroup.subtree_control", "+cpu +memory +pids"));
  CONFPOD_TRY(make_dir(pod));
  CONFPOD_TRY(write_file(pod + "/cgroup.subtree_control", "+cpu +memory +pids"));
  return PodCgroups(pod);
}

Result<UniqueFd> PodCgroups::create(const std::string& container, std::uint64_t cpu_millis,
                                    std::uint64_t memory_mib) const {
  const std::string dir = path(container);
  CONFPOD_TRY(make_dir(dir));
  if (memory_mib != 0) {
    CONFPOD_TRY(write_file(dir + "/memory.max", std::to_string(memory_mib << 20)));
    // The guest has no swap; where the kernel accounts it, a container may use none anyway.
    if (::access((dir + "/memory.swap.max").c_str(), F_OK) == 0)
      CONFPOD_TRY(write_file(dir + "/memory.swap.max", "0"));
    CONFPOD_TRY(write_file(dir + "/memory.oom.group", "1"));
  }
  if (cpu_millis != 0) CONFPOD_TRY(write_file(dir + "/cpu.max", cpu_max_value(cpu_millis)));
  const std::string procs = dir + "/cgroup.procs";
  UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return cgroup_error("open " + procs);
  return fd;
}

std::uint64_t PodCgroups::oom_kills(const std::string& container) const {
  auto text = read_text_file(path(container) + "/memory.events", 4096);
  if (!text.ok()) return 0;
  std::istringstream in(*text);
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value)
    if (key == "oom_kill") return value;
  return 0;
}

}  // namespace confpod::guest::agent
