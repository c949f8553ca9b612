// OCI image archives: verify an image against the digest pinned in init-data and unpack it.
//
// The archive is an OCI image layout in a tar (what `skopeo copy oci-archive:` or
// examples/hello/build-image write): oci-layout, index.json, blobs/sha256/<hex>. In the guest
// it is the raw content of a read-only virtio-blk disk, so the reader takes any file or block
// device and stops at the tar end-of-archive (a block device is padded past it).
//
// Everything in the archive is hostile (the host supplies the disk): the manifest is chosen by
// the pinned digest, never by index.json alone; the manifest, the config and every layer are
// hashed and compared with their descriptors before use; sizes are bounded; layer entries
// cannot escape the rootfs (no "..", absolute names are made relative, no writing through
// symlinks), and device nodes are not created.
//
// Errors: "oci.io", "oci.tar" (malformed tar), "oci.layout" (missing/invalid oci-layout,
// index.json, blob), "oci.digest" (a blob's SHA-256 differs from its descriptor or the pinned
// digest), "oci.manifest", "oci.config", "oci.media_type", "oci.layer" (bad layer entry, path
// escape, bad gzip), "oci.too_large".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "attest/base/result.h"

namespace confpod::guest::oci {

// The parts of the image config a runtime needs.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string working_dir;       // empty: "/"
  std::string user;              // as written ("", "0", "1000:1000", ...)
};

struct Limits {
  std::uint64_t max_blob_bytes = 1ull << 30;      // any one blob
  std::uint64_t max_unpacked_bytes = 4ull << 30;  // all layers' file contents together
  std::uint64_t max_entries = 1u << 20;           // tar entries across all layers
  std::uint64_t max_json_bytes = 4u << 20;        // index, manifest, config
};

// What unpacking did (for logs). Device nodes, FIFOs and unknown entry types are skipped,
// never created; `skipped` counts them.
struct UnpackStats {
  std::uint64_t layers = 0;
  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t hardlinks = 0;
  std::uint64_t whiteouts = 0;  // ".wh.<name>" and opaque markers applied
  std::uint64_t skipped = 0;
  std::uint64_t bytes = 0;  // regular file contents written
};

// Verifies the image in `archive_path` whose manifest digest is `pinned_digest`
// ("sha256:<64 hex>") and unpacks its layers, in order, into `rootfs_dir` (an existing,
// empty directory), applying whiteouts (".wh.<name>" deletes <name>, ".wh..wh..opq" empties
// the directory of lower layers' entries). Layers may be tar or tar+gzip. Nothing is
// unpacked before the manifest and config check out; a layer is unpacked only after its
// digest is verified.
//
// The host can rewrite the disk between reads, so each layer is hashed again from the bytes
// being unpacked; a difference fails with "oci.digest". On ANY error the rootfs may hold a
// partial unpack: the caller must discard it. Symlinks in the image resolve inside the rootfs
// (openat2 RESOLVE_IN_ROOT), as they will for the container; setuid/setgid bits are kept;
// device nodes and FIFOs are skipped (counted in UnpackStats). docs/guest-agent.md "Images".
Result<ImageConfig> verify_and_unpack(const std::string& archive_path,
                                      const std::string& pinned_digest,
                                      const std::string& rootfs_dir, const Limits& limits = {});
// The same, also reporting what was unpacked into `*stats` (may be null).
Result<ImageConfig> verify_and_unpack(const std::string& archive_path,
                                      const std::string& pinned_digest,
                                      const std::string& rootfs_dir, const Limits& limits,
                                      UnpackStats* stats);

// Only the verification (manifest, config, every layer blob digest) without unpacking.
Result<ImageConfig> verify(const std::string& archive_path, const std::string& pinned_digest,
                           const Limits& limits = {});

}  // namespace confpod::guest::oci
