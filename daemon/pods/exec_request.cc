#include "daemon/pods/exec_request.h"

#include "daemon/pods/manager.h"
#include "guest/protocol/init_data.h"

namespace confpod::pods {

Result<std::string> resolve_container(const store::PodRecord& record,
                                      const std::optional<spec::PodSpec>& spec,
                                      const std::string& container, bool empty_is_all) {
  if (!spec)
    return make_error("pods.invalid_state",
                      "the stored spec of pod " + record.name + " no longer parses");
  if (container.empty()) {
    if (empty_is_all) return std::string();
    for (const auto& c : spec->containers)
      if (!c.init) return c.name;
  }
  for (const auto& c : spec->containers)
    if (c.name == container) return container;
  return make_error("pods.no_container", "pod \"" + record.name + "\" has no container \"" +
                                             sanitize_utf8(container.substr(0, 64)) + "\"");
}

Status check_exec_command(const std::vector<std::string>& command) {
  if (command.empty()) return make_error("pods.invalid_exec", "the command is empty");
  if (command.size() > guest::kMaxInitArgs)
    return make_error("pods.invalid_exec",
                      "more than " + std::to_string(guest::kMaxInitArgs) + " arguments");
  for (const auto& arg : command) {
    if (arg.size() > guest::kMaxInitStringBytes)
      return make_error(
          "pods.invalid_exec",
          "an argument is longer than " + std::to_string(guest::kMaxInitStringBytes) + " bytes");
    if (arg.find('\0') != std::string::npos)
      return make_error("pods.invalid_exec", "an argument holds a NUL byte");
  }
  return ok_status();
}

}  // namespace confpod::pods
