#include "guest/agent/pod_plan.h"

#include "guest/protocol/capabilities.h"

namespace confpod::guest::agent {
namespace {

constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace

bool safe_container_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

std::vector<std::string> merged_env(const std::vector<std::string>& image_env,
                                    const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> env = image_env;
  for (const auto& [key, value] : overrides) {
    bool replaced = false;
    for (auto& entry : env) {
      if (entry.substr(0, entry.find('=')) == key) {
        entry = key + "=" + value;
        replaced = true;
      }
    }
    if (!replaced) env.push_back(key + "=" + value);
  }
  bool has_path = false;
  for (const auto& entry : env) has_path = has_path || entry.rfind("PATH=", 0) == 0;
  if (!has_path) env.push_back(kDefaultPath);
  return env;
}

Result<ContainerPlan> plan_container(const InitContainer& c, const oci::ImageConfig& image,
                                     const std::vector<std::string>& secret_env) {
  ContainerPlan plan;
  plan.name = c.name;
  plan.argv = c.command;
  if (plan.argv.empty()) {
    plan.argv = image.entrypoint;
    plan.argv.insert(plan.argv.end(), image.cmd.begin(), image.cmd.end());
  }
  if (plan.argv.empty())
    return make_error("agent.image",
                      "container " + c.name + ": neither init-data nor the image gives a command");
  plan.env = merged_env(image.env, c.env);
  plan.workdir = (!c.workdir.empty() && c.workdir != "/") ? c.workdir
                 : image.working_dir.empty()              ? std::string("/")
                                                          : image.working_dir;
  plan.user = c.user.empty() ? image.user : c.user;
  plan.init = c.init;
  plan.tmpfs = c.tmpfs;
  plan.read_only_rootfs = c.read_only_rootfs;
  // init-data's parser admitted only known names; an unknown one here grants nothing.
  for (const auto& name : c.capabilities)
    if (auto n = capability_number(name)) plan.capabilities.push_back(*n);
  plan.seccomp = c.seccomp != "unconfined";
  plan.cpu_millis = c.cpu_millis;
  plan.memory_mib = c.memory_mib;
  plan.env.insert(plan.env.end(), secret_env.begin(), secret_env.end());
  return plan;
}

}  // namespace confpod::guest::agent
