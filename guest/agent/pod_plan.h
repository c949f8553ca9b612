// What the agent runs for one init-data container: init-data (attested) resolved against the
// image's own config (verified against its pinned digest). Pure: no I/O, so every rule is
// tested directly (pod_plan_test.cc).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attest/base/result.h"
#include "guest/oci/archive.h"
#include "guest/protocol/init_data.h"

namespace confpod::guest::agent {

struct ContainerPlan {
  std::string name;
  bool init = false;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "KEY=value"
  std::string workdir;
  std::string user;
  std::vector<std::string> tmpfs;
  bool read_only_rootfs = false;
  std::vector<int> capabilities;  // numbers (linux/capability.h)
  bool seccomp = true;
  std::uint64_t cpu_millis = 0;
  std::uint64_t memory_mib = 0;
};

// A container name usable as one directory component.
bool safe_container_name(const std::string& name);

// The image's environment with init-data's entries added or replacing the image's, and a
// default PATH when neither sets one.
std::vector<std::string> merged_env(const std::vector<std::string>& image_env,
                                    const std::map<std::string, std::string>& overrides);

// command: init-data's, else the image's Entrypoint + Cmd; workdir: init-data's unless it is
// the default "/", else the image's, else "/"; user: init-data's, else the image's. Every
// container's environment ends with `secret_env` ("NAME=value"). Error "agent.image" when
// nothing gives a command.
Result<ContainerPlan> plan_container(const InitContainer& container, const oci::ImageConfig& image,
                                     const std::vector<std::string>& secret_env);

}  // namespace confpod::guest::agent
