#include "daemon/pods/runtime_dirs.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>

#include "attest/base/unique_fd.h"
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

Result<VmOwner> lookup_vm_owner(const std::string& user) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  int r = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (r != 0 || found == nullptr)
    return make_error("pods.libvirt_user",
                      "no user named \"" + user + "\" on this host ([vmm] libvirt_qemu_user)");
  return VmOwner{found->pw_uid, found->pw_gid};
}

namespace {

Error io_error(const std::string& what, const std::string& path) {
  return make_error("pods.io", "cannot " + what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

namespace {

// Removes everything under the open directory `dir`, never following a link (a subdirectory
// is opened O_NOFOLLOW and emptied the same way). `depth` bounds a hostile tree.
bool empty_dir_at(int dir, int depth = 0) {
  UniqueFd listing(::dup(dir));
  if (!listing) return false;
  DIR* stream = ::fdopendir(listing.get());
  if (stream == nullptr) return false;
  (void)listing.release();  // the DIR owns it now
  std::unique_ptr<DIR, int (*)(DIR*)> closer(stream, ::closedir);
  ::rewinddir(stream);
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(stream)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  for (const std::string& name : names) {
    if (::unlinkat(dir, name.c_str(), 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR || depth >= 16) return false;
    UniqueFd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub || !empty_dir_at(sub.get(), depth + 1)) return false;
    if (::unlinkat(dir, name.c_str(), AT_REMOVEDIR) != 0) return false;
  }
  return true;
}

}  // namespace

Status prepare_pod_dirs(const spec::PodPaths& paths, std::optional<VmOwner> vm_owner) {
  std::error_code ec;
  std::filesystem::create_directories(paths.dir, ec);
  if (ec) return make_error("pods.io", "cannot create " + paths.dir + ": " + ec.message());
  UniqueFd dir(::open(paths.dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return io_error("open", paths.dir);
  // With a VM user: its group may pass through to vm/, nobody else may enter (the logs here
  // are the pod's).
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0) return io_error("stat", paths.dir);
  const gid_t dir_group = vm_owner ? vm_owner->gid : ::getegid();
  if ((st.st_uid != ::geteuid() || st.st_gid != dir_group) &&
      ::fchown(dir.get(), ::geteuid(), dir_group) != 0)
    return io_error("chown", paths.dir);
  if (::fchmod(dir.get(), vm_owner ? 0710 : 0700) != 0) return io_error("chmod", paths.dir);
  const char* vm = "vm";
  UniqueFd vm_dir(::openat(dir.get(), vm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!vm_dir && errno != ENOENT) {
    // Not a directory (a link or file put there by the VM's user): it goes, unfollowed.
    if (::unlinkat(dir.get(), vm, 0) != 0) return io_error("remove", paths.vm_dir);
  }
  if (!vm_dir) {
    if (::mkdirat(dir.get(), vm, 0700) != 0) return io_error("create", paths.vm_dir);
    vm_dir.reset(::openat(dir.get(), vm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!vm_dir) return io_error("open", paths.vm_dir);
  }
  // What a previous run left (the VM's user may have planted links where QEMU or libvirt will
  // open the console log): every start begins with an empty vm/.
  if (!empty_dir_at(vm_dir.get())) return io_error("empty", paths.vm_dir);
  // Without an owner it is ours again (the backend or its user may have changed).
  const uid_t uid = vm_owner ? vm_owner->uid : ::geteuid();
  const gid_t gid = vm_owner ? vm_owner->gid : ::getegid();
  if (::fstat(vm_dir.get(), &st) != 0) return io_error("stat", paths.vm_dir);
  if ((st.st_uid != uid || st.st_gid != gid) && ::fchown(vm_dir.get(), uid, gid) != 0)
    return io_error("chown", paths.vm_dir);
  if (::fchmod(vm_dir.get(), 0700) != 0) return io_error("chmod", paths.vm_dir);
  return ok_status();
}

}  // namespace confpod::pods
