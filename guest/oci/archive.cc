// Verification and unpacking of an OCI image archive (see archive.h, docs/guest-agent.md).
//
// Design: one sequential pass over the outer tar hashes every blob and records where its
// bytes are (offset, size, SHA-256); nothing is kept in memory but oci-layout and index.json.
// Then the manifest (chosen by the pinned digest) and config are re-read by offset and hashed
// again as they are parsed, and every layer's first-pass hash is compared with its
// descriptor: all of this before anything is unpacked.
//
// Time of check vs. time of use: the disk is read-only to the guest, but the host can rewrite
// the file behind it at any moment, so bytes read twice may differ. Hence nothing trusts an
// earlier read: JSON blobs are hashed from the very bytes that are parsed, and each layer is
// hashed again from the very bytes that are unpacked. If a layer's second hash differs, the
// call fails with "oci.digest"; what was already written stays in the rootfs for the caller to
// discard (the rootfs is only used when verify_and_unpack succeeds). The unpacker itself
// treats its input as hostile (confinement, limits), so even changed bytes cannot escape it.
#include "guest/oci/archive.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "attest/base/bytes.h"
#include "attest/base/unique_fd.h"
#include "guest/oci/tar.h"
#include "guest/oci/unpack.h"

namespace confpod::guest::oci {

namespace {

using nlohmann::json;

constexpr const char* kManifestType = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kIndexType = "application/vnd.oci.image.index.v1+json";
constexpr const char* kConfigType = "application/vnd.oci.image.config.v1+json";
constexpr const char* kLayerTar = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1;
  }
  void update(const std::uint8_t* p, std::size_t n) {
    if (ok_ && n) ok_ = EVP_DigestUpdate(ctx_.get(), p, n) == 1;
  }
  Result<std::string> hex() {
    std::uint8_t md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1 || len != 32)
      return make_error("oci.io", "SHA-256 failed");
    ok_ = false;
    return to_hex(ByteView(md, len));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx_;
  bool ok_ = false;
};

// Passes bytes through, hashing them.
class HashingSource final : public ByteSource {
 public:
  explicit HashingSource(ByteSource& in) : in_(in) {}
  Result<std::size_t> read(std::uint8_t* buf, std::size_t n) override {
    CONFPOD_ASSIGN_OR_RETURN(std::size_t got, in_.read(buf, n));
    sha_.update(buf, got);
    return got;
  }
  Sha256& sha() { return sha_; }

 private:
  ByteSource& in_;
  Sha256 sha_;
};

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// "sha256:<64 lower-case hex>" -> hex.
std::optional<std::string> sha256_hex(const std::string& digest) {
  if (digest.rfind("sha256:", 0) != 0) return std::nullopt;
  std::string hex = digest.substr(7);
  if (!is_hex64(hex)) return std::nullopt;
  return hex;
}

struct Blob {
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::string sha256;  // first-pass hash; empty when too large to hash
};

struct Scan {
  std::optional<std::string> oci_layout;
  std::optional<std::string> index_json;
  std::map<std::string, Blob> blobs;  // by the hex in its name
};

std::string strip_dot_slash(std::string name) {
  while (true) {
    if (name.rfind("./", 0) == 0)
      name.erase(0, 2);
    else if (!name.empty() && name[0] == '/')
      name.erase(0, 1);
    else
      return name;
  }
}

// First pass: the outer tar, start to end-of-archive marker.
Result<Scan> scan_archive(int fd, const Limits& limits) {
  Scan scan;
  FdSource src(fd, 0);
  TarLimits tl;
  tl.max_entry_bytes = ~std::uint64_t{0};  // blob sizes are checked per use below
  TarReader tar(src, tl);
  std::vector<std::uint8_t> buf(256 * 1024);
  std::uint64_t entries = 0;
  for (;;) {
    CONFPOD_ASSIGN_OR_RETURN(std::optional<TarEntry> e, tar.next());
    if (!e) break;
    if (++entries > limits.max_entries)
      return make_error("oci.too_large", "more than " + std::to_string(limits.max_entries) +
                                             " entries in the archive");
    if (e->type != TarType::kFile) continue;  // directories; blobs must be regular files
    std::string name = strip_dot_slash(e->path);
    if (name == "oci-layout" || name == "index.json") {
      auto& slot = name == "oci-layout" ? scan.oci_layout : scan.index_json;
      if (slot) return make_error("oci.layout", name + " appears twice");
      CONFPOD_ASSIGN_OR_RETURN(slot, tar.read_all(limits.max_json_bytes));
      continue;
    }
    if (name.rfind("blobs/sha256/", 0) != 0) continue;
    std::string hex = name.substr(13);
    if (!is_hex64(hex)) continue;  // not addressable by any sha256 descriptor
    if (scan.blobs.count(hex)) return make_error("oci.layout", "blob " + hex + " appears twice");
    Blob blob{e->data_offset, e->size, {}};
    if (e->size <= limits.max_blob_bytes) {
      Sha256 sha;
      for (;;) {
        CONFPOD_ASSIGN_OR_RETURN(std::size_t got, tar.read(buf.data(), buf.size()));
        if (got == 0) break;
        sha.update(buf.data(), got);
      }
      CONFPOD_ASSIGN_OR_RETURN(blob.sha256, sha.hex());
    }
    scan.blobs.emplace(hex, blob);
  }
  return scan;
}

Result<json> parse_json(const std::string& text, const char* code, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(code, what + " is not valid JSON");
  if (!j.is_object()) return make_error(code, what + " is not a JSON object");
  return j;
}

struct Descriptor {
  std::string media_type;
  std::string hex;
  std::uint64_t size = 0;
};

Result<Descriptor> parse_descriptor(const json& j, const char* code, const std::string& what) {
  if (!j.is_object()) return make_error(code, what + " is not an object");
  Descriptor d;
  auto mt = j.find("mediaType");
  auto dg = j.find("digest");
  auto sz = j.find("size");
  if (mt == j.end() || !mt->is_string()) return make_error(code, what + ": no mediaType");
  if (dg == j.end() || !dg->is_string()) return make_error(code, what + ": no digest");
  if (sz == j.end() || !sz->is_number_unsigned())
    return make_error(code, what + ": no non-negative integer size");
  d.media_type = mt->get<std::string>();
  auto hex = sha256_hex(dg->get<std::string>());
  if (!hex)
    return make_error("oci.digest", what + ": digest " + dg->get<std::string>().substr(0, 80) +
                                        " is not sha256:<64 lower-case hex>");
  d.hex = *hex;
  d.size = sz->get<std::uint64_t>();
  return d;
}

// The blob `d` names, checked for presence, size and the size limit.
Result<Blob> find_blob(const Scan& scan, const Descriptor& d, std::uint64_t max,
                       const std::string& what) {
  auto it = scan.blobs.find(d.hex);
  if (it == scan.blobs.end())
    return make_error("oci.layout", what + " blob sha256:" + d.hex + " is not in the archive");
  if (it->second.size > max || d.size > max)
    return make_error("oci.too_large", what + " blob of " + std::to_string(it->second.size) +
                                           " bytes exceeds the limit of " + std::to_string(max));
  if (it->second.size != d.size)
    return make_error("oci.digest", what + " blob is " + std::to_string(it->second.size) +
                                        " bytes, its descriptor says " + std::to_string(d.size));
  return it->second;
}

// Reads a small blob by offset and checks the SHA-256 of exactly the bytes returned.
Result<std::string> read_verified(int fd, const Blob& blob, const std::string& hex,
                                  const std::string& what) {
  std::string data(static_cast<std::size_t>(blob.size), '\0');
  FdSource src(fd, blob.offset, blob.size);
  CONFPOD_TRY(
      read_exact(src, reinterpret_cast<std::uint8_t*>(data.data()), data.size(), what.c_str()));
  Sha256 sha;
  sha.update(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  CONFPOD_ASSIGN_OR_RETURN(std::string got, sha.hex());
  if (got != hex)
    return make_error("oci.digest", what + " has SHA-256 " + got + ", expected sha256:" + hex);
  return data;
}

Result<std::vector<std::string>> string_array(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array())
    return make_error("oci.config", std::string("config.") + key + " is not an array");
  for (const auto& v : *it) {
    if (!v.is_string())
      return make_error("oci.config", std::string("config.") + key + " has a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::string> string_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return make_error("oci.config", std::string("config.") + key + " is not a string");
  return it->get<std::string>();
}

Result<ImageConfig> parse_config(const std::string& text) {
  CONFPOD_ASSIGN_OR_RETURN(json j, parse_json(text, "oci.config", "image config"));
  ImageConfig out;
  auto c = j.find("config");
  if (c == j.end() || c->is_null()) return out;
  if (!c->is_object()) return make_error("oci.config", "config is not an object");
  CONFPOD_ASSIGN_OR_RETURN(out.entrypoint, string_array(*c, "Entrypoint"));
  CONFPOD_ASSIGN_OR_RETURN(out.cmd, string_array(*c, "Cmd"));
  CONFPOD_ASSIGN_OR_RETURN(out.env, string_array(*c, "Env"));
  CONFPOD_ASSIGN_OR_RETURN(out.working_dir, string_field(*c, "WorkingDir"));
  CONFPOD_ASSIGN_OR_RETURN(out.user, string_field(*c, "User"));
  return out;
}

struct Layer {
  Blob blob;
  std::string hex;
  bool gzip = false;
};

struct VerifiedImage {
  ImageConfig config;
  std::vector<Layer> layers;
};

// Everything but unpacking: layout, manifest by pin, config, layer digests (first pass).
Result<VerifiedImage> verify_image(int fd, const std::string& pinned_digest, const Limits& limits) {
  auto pin = sha256_hex(pinned_digest);
  if (!pin)
    return make_error("oci.digest", "pinned digest " + pinned_digest.substr(0, 80) +
                                        " is not sha256:<64 lower-case hex>");
  CONFPOD_ASSIGN_OR_RETURN(Scan scan, scan_archive(fd, limits));

  if (!scan.oci_layout) return make_error("oci.layout", "no oci-layout file");
  CONFPOD_ASSIGN_OR_RETURN(json layout, parse_json(*scan.oci_layout, "oci.layout", "oci-layout"));
  auto ver = layout.find("imageLayoutVersion");
  if (ver == layout.end() || !ver->is_string() || ver->get<std::string>() != "1.0.0")
    return make_error("oci.layout", "oci-layout imageLayoutVersion is not \"1.0.0\"");

  // index.json must be sound, but it does not choose the manifest: the pin does. If it lists
  // the pinned manifest, that descriptor must agree. A pin naming a manifest reachable only
  // through a nested index works too, as long as that manifest's blob is in the archive.
  if (!scan.index_json) return make_error("oci.layout", "no index.json");
  CONFPOD_ASSIGN_OR_RETURN(json index, parse_json(*scan.index_json, "oci.layout", "index.json"));
  auto sv = index.find("schemaVersion");
  if (sv == index.end() || !sv->is_number_unsigned() || sv->get<std::uint64_t>() != 2)
    return make_error("oci.layout", "index.json schemaVersion is not 2");
  auto manifests = index.find("manifests");
  if (manifests == index.end() || !manifests->is_array())
    return make_error("oci.layout", "index.json has no manifests array");
  std::optional<Descriptor> listed;
  for (const auto& m : *manifests) {
    // Entries we cannot use (other digest algorithms, ...) do not matter: only the pin does.
    auto d = parse_descriptor(m, "oci.layout", "index.json entry");
    if (d.ok() && d->hex == *pin) listed = *d;
  }

  auto mblob = scan.blobs.find(*pin);
  if (mblob == scan.blobs.end())
    return make_error("oci.digest",
                      "the pinned manifest " + pinned_digest + " is not in the archive");
  if (listed) {
    if (listed->media_type == kIndexType)
      return make_error("oci.media_type",
                        "the pinned digest names an image index; pin a manifest instead");
    if (listed->media_type != kManifestType)
      return make_error("oci.media_type", "index.json lists the pinned manifest as " +
                                              listed->media_type.substr(0, 100));
  }
  Descriptor mdesc{kManifestType, *pin, mblob->second.size};
  if (listed && listed->size != mdesc.size)
    return make_error("oci.digest", "index.json gives the pinned manifest size " +
                                        std::to_string(listed->size) + ", the blob has " +
                                        std::to_string(mdesc.size));
  CONFPOD_ASSIGN_OR_RETURN(Blob mb, find_blob(scan, mdesc, limits.max_json_bytes, "manifest"));
  CONFPOD_ASSIGN_OR_RETURN(std::string mtext, read_verified(fd, mb, *pin, "manifest"));

  CONFPOD_ASSIGN_OR_RETURN(json manifest, parse_json(mtext, "oci.manifest", "manifest"));
  auto msv = manifest.find("schemaVersion");
  if (msv == manifest.end() || !msv->is_number_unsigned() || msv->get<std::uint64_t>() != 2)
    return make_error("oci.manifest", "manifest schemaVersion is not 2");
  auto mmt = manifest.find("mediaType");
  if (mmt != manifest.end() && !(mmt->is_string() && mmt->get<std::string>() == kManifestType))
    return make_error("oci.media_type", std::string("manifest mediaType is not ") + kManifestType);

  auto cj = manifest.find("config");
  if (cj == manifest.end()) return make_error("oci.manifest", "manifest has no config");
  CONFPOD_ASSIGN_OR_RETURN(Descriptor cdesc, parse_descriptor(*cj, "oci.manifest", "config"));
  if (cdesc.media_type != kConfigType)
    return make_error("oci.media_type", "config mediaType " + cdesc.media_type.substr(0, 100) +
                                            " is not " + kConfigType);
  CONFPOD_ASSIGN_OR_RETURN(Blob cb, find_blob(scan, cdesc, limits.max_json_bytes, "config"));
  CONFPOD_ASSIGN_OR_RETURN(std::string ctext, read_verified(fd, cb, cdesc.hex, "config"));

  VerifiedImage image;
  CONFPOD_ASSIGN_OR_RETURN(image.config, parse_config(ctext));

  auto lj = manifest.find("layers");
  if (lj == manifest.end() || !lj->is_array())
    return make_error("oci.manifest", "manifest has no layers array");
  for (std::size_t i = 0; i < lj->size(); ++i) {
    std::string what = "layer " + std::to_string(i);
    CONFPOD_ASSIGN_OR_RETURN(Descriptor d, parse_descriptor((*lj)[i], "oci.manifest", what));
    Layer layer;
    if (d.media_type == kLayerTarGzip)
      layer.gzip = true;
    else if (d.media_type != kLayerTar)
      return make_error("oci.media_type", what + " mediaType " + d.media_type.substr(0, 100) +
                                              " is not supported (tar, tar+gzip)");
    CONFPOD_ASSIGN_OR_RETURN(layer.blob, find_blob(scan, d, limits.max_blob_bytes, what));
    if (layer.blob.sha256 != d.hex)
      return make_error("oci.digest", what + " has SHA-256 " + layer.blob.sha256 +
                                          ", its descriptor says sha256:" + d.hex);
    layer.hex = d.hex;
    image.layers.push_back(std::move(layer));
  }
  return image;
}

Result<UniqueFd> open_archive(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return make_error("oci.io", "open " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

Status unpack_layer_blob(int fd, std::uint64_t offset, std::uint64_t size, bool gzip,
                         const std::string& expected_hex, LayerUnpacker& unpacker,
                         const std::string& what) {
  FdSource raw(fd, offset, size);
  HashingSource hashed(raw);
  std::optional<GzipSource> gz;
  if (gzip) gz.emplace(hashed);
  ByteSource& stream = gz ? static_cast<ByteSource&>(*gz) : hashed;
  CONFPOD_TRY(unpacker.apply(stream));
  // The digest covers the whole blob: hash what follows the tar's end marker (tar record
  // padding, the gzip trailer) straight from the blob, without inflating it.
  CONFPOD_TRY(hashed.skip(offset + size - raw.position()));
  CONFPOD_ASSIGN_OR_RETURN(std::string got, hashed.sha().hex());
  if (got != expected_hex)
    return make_error("oci.digest", what + " changed between verification and unpacking (SHA-256 " +
                                        got + ", expected sha256:" + expected_hex + ")");
  return ok_status();
}

Result<ImageConfig> verify(const std::string& archive_path, const std::string& pinned_digest,
                           const Limits& limits) {
  CONFPOD_ASSIGN_OR_RETURN(UniqueFd fd, open_archive(archive_path));
  CONFPOD_ASSIGN_OR_RETURN(VerifiedImage image, verify_image(fd.get(), pinned_digest, limits));
  return image.config;
}

Result<ImageConfig> verify_and_unpack(const std::string& archive_path,
                                      const std::string& pinned_digest,
                                      const std::string& rootfs_dir, const Limits& limits) {
  return verify_and_unpack(archive_path, pinned_digest, rootfs_dir, limits, nullptr);
}

Result<ImageConfig> verify_and_unpack(const std::string& archive_path,
                                      const std::string& pinned_digest,
                                      const std::string& rootfs_dir, const Limits& limits,
                                      UnpackStats* stats) {
  CONFPOD_ASSIGN_OR_RETURN(UniqueFd fd, open_archive(archive_path));
  UniqueFd root(open(rootfs_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return make_error("oci.io", "open " + rootfs_dir + ": " + std::strerror(errno));
  CONFPOD_ASSIGN_OR_RETURN(VerifiedImage image, verify_image(fd.get(), pinned_digest, limits));
  UnpackStats local;
  UnpackStats& st = stats ? *stats : local;
  st = {};
  LayerUnpacker unpacker(root.get(), limits, st);
  for (std::size_t i = 0; i < image.layers.size(); ++i)
    CONFPOD_TRY(unpack_layer_blob(fd.get(), image.layers[i].blob.offset, image.layers[i].blob.size,
                                  image.layers[i].gzip, image.layers[i].hex, unpacker,
                                  "layer " + std::to_string(i)));
  return image.config;
}

}  // namespace confpod::guest::oci
