#include "guest/oci/unpack.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace confpod::guest::oci {

namespace {

Error layer_error(const std::string& message) { return make_error("oci.layer", message); }

Error io_error(const std::string& what, const std::string& path) {
  return make_error("oci.io", what + " '" + path + "': " + std::strerror(errno));
}

// Quoted, shortened for messages (names are attacker-chosen).
std::string q(const std::string& s) { return "'" + s.substr(0, 200) + "'"; }

// An entry name as components: leading "/" and "." components dropped, ".." refused.
Result<std::vector<std::string>> split_path(const std::string& raw) {
  if (raw.find('\0') != std::string::npos) return layer_error("NUL in entry name");
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= raw.size()) {
    std::size_t j = raw.find('/', i);
    if (j == std::string::npos) j = raw.size();
    std::string comp = raw.substr(i, j - i);
    i = j + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") return layer_error("entry name " + q(raw) + " has a '..' component");
    out.push_back(std::move(comp));
  }
  return out;
}

std::string join(const std::vector<std::string>& comps, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    if (i) out += '/';
    out += comps[i];
  }
  return out;
}

int openat2_in_root(int root, const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  int tries = 0;
  do {
    fd = syscall(SYS_openat2, root, path.c_str(), &how, sizeof how);
    // EAGAIN: a concurrent rename made the kernel refuse to vouch for the walk; retry.
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 16);
  return static_cast<int>(fd);
}

struct DirClose {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirClose>;

// Names in the directory `dir` (an O_PATH or ordinary fd; not consumed), "." and ".." left out.
Result<std::vector<std::string>> list_dir(int dir, const std::string& path) {
  int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("open directory", path);
  DirPtr d(fdopendir(fd));
  if (!d) {
    close(fd);
    return io_error("fdopendir", path);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* ent = readdir(d.get())) {
    std::string n = ent->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  if (errno != 0) return io_error("readdir", path);
  return names;
}

Status remove_any(int parent, const std::string& name);

Status remove_tree(int parent, const std::string& name) {
  UniqueFd fd(openat(parent, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return io_error("open directory", name);
  CONFPOD_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(fd.get(), name));
  for (const auto& n : names) CONFPOD_TRY(remove_any(fd.get(), n));
  if (unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return io_error("rmdir", name);
  return ok_status();
}

// Removes `name` in `parent` whatever it is (a directory with its contents); absent is fine.
Status remove_any(int parent, const std::string& name) {
  struct stat st;
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok_status();
    return io_error("stat", name);
  }
  if (S_ISDIR(st.st_mode)) return remove_tree(parent, name);
  if (unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) return io_error("unlink", name);
  return ok_status();
}

Status write_all(int fd, const std::uint8_t* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return ok_status();
}

}  // namespace

LayerUnpacker::LayerUnpacker(int rootfs_fd, const Limits& limits, UnpackStats& stats)
    : root_(rootfs_fd), limits_(limits), stats_(stats), chown_(geteuid() == 0), buf_(64 * 1024) {}

Result<UniqueFd> LayerUnpacker::open_dir(const std::vector<std::string>& comps, std::size_t count,
                                         bool create, bool& missing) {
  missing = false;
  const std::string full = join(comps, count);
  if (count > 0 && have_openat2_) {
    int fd = openat2_in_root(root_, full);
    if (fd >= 0) return UniqueFd(fd);
    if (errno == ENOSYS) {
      have_openat2_ = false;
    } else if (errno != ENOENT || !create) {
      missing = errno == ENOENT || errno == ENOTDIR;
      return layer_error("cannot open directory " + q(full) + ": " + std::strerror(errno));
    }
  }
  // Walk from the root, making what is missing. Without openat2, O_NOFOLLOW makes any
  // symlink on the way fail (ENOTDIR), which is safe though stricter than runtimes.
  UniqueFd cur(fcntl(root_, F_DUPFD_CLOEXEC, 0));
  if (!cur) return io_error("dup", "rootfs");
  for (std::size_t i = 0; i < count; ++i) {
    for (int attempt = 0;; ++attempt) {
      int fd = have_openat2_ ? openat2_in_root(root_, join(comps, i + 1))
                             : openat(cur.get(), comps[i].c_str(),
                                      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd >= 0) {
        cur.reset(fd);
        break;
      }
      if (errno == ENOENT && create && attempt == 0) {
        if (mkdirat(cur.get(), comps[i].c_str(), 0755) != 0 && errno != EEXIST)
          return io_error("mkdir", join(comps, i + 1));
        created_.insert(join(comps, i + 1));
        continue;
      }
      missing = errno == ENOENT || errno == ENOTDIR;
      return layer_error("cannot open directory " + q(join(comps, i + 1)) + ": " +
                         std::strerror(errno));
    }
  }
  return cur;
}

Status LayerUnpacker::opaque(int dir_fd, const std::string& dir_path) {
  CONFPOD_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(dir_fd, dir_path));
  for (const auto& n : names) {
    std::string child = dir_path.empty() ? n : dir_path + "/" + n;
    if (!created_.count(child)) {
      CONFPOD_TRY(remove_any(dir_fd, n));
      continue;
    }
    // Written by this layer: keep it, but a directory may still hold lower-layer entries.
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      UniqueFd sub(openat(dir_fd, n.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return io_error("open directory", child);
      CONFPOD_TRY(opaque(sub.get(), child));
    }
  }
  return ok_status();
}

Status LayerUnpacker::apply(ByteSource& layer) {
  created_.clear();
  TarLimits tl;
  tl.max_entry_bytes = limits_.max_unpacked_bytes;
  TarReader tar(layer, tl);
  for (;;) {
    CONFPOD_ASSIGN_OR_RETURN(std::optional<TarEntry> e, tar.next());
    if (!e) break;
    if (++entries_ > limits_.max_entries)
      return make_error("oci.too_large",
                        "more than " + std::to_string(limits_.max_entries) + " layer entries");
    CONFPOD_TRY(apply_entry(tar, *e));
  }
  ++stats_.layers;
  return ok_status();
}

Status LayerUnpacker::apply_entry(TarReader& tar, const TarEntry& e) {
  CONFPOD_ASSIGN_OR_RETURN(std::vector<std::string> comps, split_path(e.path));
  if (comps.empty()) {
    if (e.type == TarType::kDirectory) return ok_status();  // "./": the rootfs itself
    return layer_error("entry " + q(e.path) + " names the rootfs itself");
  }
  const std::size_t n = comps.size();
  const std::string& name = comps.back();
  const std::string path = join(comps, n);
  bool missing = false;

  if (name.rfind(".wh.", 0) == 0) {
    auto parent = open_dir(comps, n - 1, false, missing);
    if (!parent.ok()) return missing ? ok_status() : parent.take_error();
    ++stats_.whiteouts;
    if (name == ".wh..wh..opq") return opaque(parent->get(), join(comps, n - 1));
    std::string target = name.substr(4);
    if (target.empty() || target == "." || target == "..")
      return layer_error("bad whiteout " + q(e.path));
    std::string target_path = n > 1 ? join(comps, n - 1) + "/" + target : target;
    if (created_.count(target_path)) return ok_status();  // only lower layers are whited out
    return remove_any(parent->get(), target);
  }

  switch (e.type) {
    case TarType::kFile:
    case TarType::kDirectory:
    case TarType::kSymlink:
    case TarType::kHardlink:
      break;
    default:
      ++stats_.skipped;  // device nodes, FIFOs, unknown types: never created
      return ok_status();
  }
  if (e.uid >= 0xffffffffu || e.gid >= 0xffffffffu)
    return layer_error("entry " + q(e.path) + " has an out-of-range uid/gid");
  const auto uid = static_cast<uid_t>(e.uid);
  const auto gid = static_cast<gid_t>(e.gid);

  CONFPOD_ASSIGN_OR_RETURN(UniqueFd parent, open_dir(comps, n - 1, true, missing));
  const int p = parent.get();
  struct stat st;
  bool exists = fstatat(p, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) return io_error("stat", path);

  switch (e.type) {
    case TarType::kDirectory: {
      if (exists && !S_ISDIR(st.st_mode)) {
        CONFPOD_TRY(remove_any(p, name));
        exists = false;
      }
      if (!exists && mkdirat(p, name.c_str(), 0700) != 0) return io_error("mkdir", path);
      UniqueFd fd(openat(p, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return io_error("open directory", path);
      if (chown_ && fchown(fd.get(), uid, gid) != 0) return io_error("chown", path);
      if (fchmod(fd.get(), e.mode) != 0) return io_error("chmod", path);
      ++stats_.directories;
      break;
    }
    case TarType::kFile: {
      if (e.size > limits_.max_unpacked_bytes - std::min(stats_.bytes, limits_.max_unpacked_bytes))
        return make_error("oci.too_large", "layer contents exceed " +
                                               std::to_string(limits_.max_unpacked_bytes) +
                                               " bytes at " + q(path));
      if (exists) CONFPOD_TRY(remove_any(p, name));
      UniqueFd fd(
          openat(p, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd) return io_error("create", path);
      for (;;) {
        CONFPOD_ASSIGN_OR_RETURN(std::size_t got, tar.read(buf_.data(), buf_.size()));
        if (got == 0) break;
        CONFPOD_TRY(write_all(fd.get(), buf_.data(), got, path));
      }
      // chown first: it clears setuid/setgid, which the image's mode then sets again.
      if (chown_ && fchown(fd.get(), uid, gid) != 0) return io_error("chown", path);
      if (fchmod(fd.get(), e.mode) != 0) return io_error("chmod", path);
      ++stats_.files;
      stats_.bytes += e.size;
      break;
    }
    case TarType::kSymlink: {
      if (e.linkpath.empty() || e.linkpath.find('\0') != std::string::npos)
        return layer_error("symlink " + q(path) + " has a bad target");
      if (exists) CONFPOD_TRY(remove_any(p, name));
      // The target is stored as written: it is only ever resolved inside the rootfs (here
      // by openat2 RESOLVE_IN_ROOT, in the container by its mount namespace).
      if (symlinkat(e.linkpath.c_str(), p, name.c_str()) != 0) return io_error("symlink", path);
      if (chown_ && fchownat(p, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
        return io_error("chown", path);
      ++stats_.symlinks;
      break;
    }
    case TarType::kHardlink: {
      CONFPOD_ASSIGN_OR_RETURN(std::vector<std::string> tcomps, split_path(e.linkpath));
      if (tcomps.empty()) return layer_error("hardlink " + q(path) + " to the rootfs itself");
      bool tmissing = false;
      auto tparent = open_dir(tcomps, tcomps.size() - 1, false, tmissing);
      if (!tparent.ok())
        return layer_error("hardlink " + q(path) + " target " + q(e.linkpath) +
                           " not in the rootfs: " + tparent.error().message);
      const std::string& tname = tcomps.back();
      struct stat tst;
      if (fstatat(tparent->get(), tname.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0)
        return layer_error("hardlink " + q(path) + " target " + q(e.linkpath) + " missing");
      if (S_ISDIR(tst.st_mode))
        return layer_error("hardlink " + q(path) + " to a directory " + q(e.linkpath));
      if (exists && st.st_dev == tst.st_dev && st.st_ino == tst.st_ino) {
        ++stats_.hardlinks;
        break;  // already that file
      }
      if (exists) CONFPOD_TRY(remove_any(p, name));
      // Flags 0: a symlink target is linked itself, never followed.
      if (linkat(tparent->get(), tname.c_str(), p, name.c_str(), 0) != 0)
        return io_error("link", path);
      ++stats_.hardlinks;
      break;
    }
    default:
      break;
  }
  created_.insert(path);
  return ok_status();
}

}  // namespace confpod::guest::oci
