#include "daemon/pods/runtime_dirs.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "daemon/pods/log.h"
#include "vmm/supervisor.h"

namespace confpod::pods {

bool kill_stray_qemu(const spec::PodPaths& paths, const std::string& proc_root) {
  auto pid = vmm::detail::read_pidfile(paths.pidfile);
  if (!pid.ok() || *pid <= 1) return false;
  if (!vmm::detail::check_qemu_identity(proc_root, *pid, paths.qmp_socket).ok()) return false;
  if (::getpgid(*pid) == *pid) ::kill(-*pid, SIGKILL);
  return ::kill(*pid, SIGKILL) == 0;
}

std::vector<std::string> sweep_runtime_dirs(const std::string& runtime_dir,
                                            const std::function<bool(const std::string&)>& is_pod) {
  const std::string root = spec::pod_paths(runtime_dir, "").dir;
  std::error_code ec;
  std::vector<std::string> stale;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory(ec) && !is_pod(name)) stale.push_back(std::move(name));
  }
  for (const std::string& name : stale) {
    spec::PodPaths paths = spec::pod_paths(runtime_dir, name);
    if (kill_stray_qemu(paths)) log_warning("killed the QEMU of a removed pod", {{"pod", name}});
    std::filesystem::remove_all(paths.dir, ec);
    if (ec)
      log_warning("cannot remove runtime dir", {{"dir", paths.dir}, {"error", ec.message()}});
    else
      log_info("removed the runtime dir of a removed pod", {{"pod", name}});
  }
  return stale;
}

}  // namespace confpod::pods
