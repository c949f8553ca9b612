// Applying one layer's tar stream to a rootfs (internal to confpod_guest_oci; exposed for the
// fuzzer and tests, since the bytes reaching it are hostile even after verification: the
// host may rewrite the disk between verification and unpacking).
//
// Every name is resolved beneath the rootfs directory fd: "/" and "./" prefixes are stripped,
// ".." components are rejected, and parent directories are opened with openat2(2)
// RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, so a symlink in the image (even to "/" or "../..")
// resolves inside the rootfs, as it will for the container. The last component is never
// followed (O_NOFOLLOW / O_EXCL / AT_SYMLINK_NOFOLLOW). On kernels without openat2 the
// parents are walked one component at a time with O_NOFOLLOW, refusing any symlink.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

#include "attest/base/result.h"
#include "attest/base/unique_fd.h"
#include "guest/oci/archive.h"
#include "guest/oci/tar.h"

namespace confpod::guest::oci {

class LayerUnpacker {
 public:
  // `rootfs_fd` is a directory fd that outlives this object. Limits (entries, bytes) are
  // counted across every layer applied through this object.
  LayerUnpacker(int rootfs_fd, const Limits& limits, UnpackStats& stats);

  // Reads the tar in `layer` to its end-of-archive marker and applies it on top of what the
  // previous layers left: later entries replace earlier ones of any type, whiteouts remove
  // lower-layer entries. Errors "oci.layer" (bad name, escape attempt, missing hardlink
  // target), "oci.tar", "oci.too_large", "oci.io".
  Status apply(ByteSource& layer);

 private:
  Status apply_entry(TarReader& tar, const TarEntry& entry);
  // The directory named by comps[0, count) beneath the rootfs (O_PATH). With `create`,
  // missing directories are made (0755). `missing` tells ENOENT/ENOTDIR from other errors.
  Result<UniqueFd> open_dir(const std::vector<std::string>& comps, std::size_t count, bool create,
                            bool& missing);
  // Removes everything below `dir_fd` (path `dir_path`) that this layer did not create.
  Status opaque(int dir_fd, const std::string& dir_path);

  int root_;
  Limits limits_;
  UnpackStats& stats_;
  bool chown_;
  bool have_openat2_ = true;
  std::uint64_t entries_ = 0;
  std::unordered_set<std::string> created_;  // paths this layer wrote (whiteouts spare them)
  std::vector<std::uint8_t> buf_;
};

// Unpacks the layer blob at [offset, offset + size) of `fd` (gzip-compressed when `gzip`),
// hashing the bytes as they are unpacked and, after the tar's end, the rest of the blob;
// "oci.digest" if that SHA-256 is not `expected_hex` (the host changed the disk after
// verification). Defined in archive.cc.
Status unpack_layer_blob(int fd, std::uint64_t offset, std::uint64_t size, bool gzip,
                         const std::string& expected_hex, LayerUnpacker& unpacker,
                         const std::string& what);

}  // namespace confpod::guest::oci
