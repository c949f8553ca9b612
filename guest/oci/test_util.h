// Test helpers: an in-memory tar writer, gzip, and an OCI archive assembler, so tests can
// build exactly the (hostile) archives they need.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace confpod::guest::oci::testutil {

class TarWriter {
 public:
  void file(const std::string& name, const std::string& data, std::uint32_t mode = 0644);
  void dir(const std::string& name, std::uint32_t mode = 0755);
  void symlink(const std::string& name, const std::string& target);
  void hardlink(const std::string& name, const std::string& target);
  // Any typeflag; names over 100 bytes get a GNU 'L' record first.
  void entry(char type, const std::string& name, const std::string& data, std::uint32_t mode,
             const std::string& link = "");
  // The archive with its two zero blocks (and `extra_zero_blocks` more).
  std::string finish(int extra_zero_blocks = 0) const;
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

std::string gzip(const std::string& data);
std::string sha256_hex(const std::string& data);

struct OciParts {
  std::string oci_layout = R"({"imageLayoutVersion":"1.0.0"})";
  std::string index;                                       // JSON
  std::vector<std::pair<std::string, std::string>> blobs;  // hex name -> content
  std::string manifest;                                    // JSON (also among blobs)
  std::string manifest_hex;
  std::string digest() const { return "sha256:" + manifest_hex; }
};

// An image of the given layer tars (gzipped or plain), config with Entrypoint ["/bin/true"].
// `layer_media_type` overrides every layer's mediaType when not empty.
OciParts make_parts(const std::vector<std::string>& layer_tars, bool gzip_layers = true,
                    const std::string& layer_media_type = "");
// The outer tar: oci-layout, index.json, blobs/sha256/<hex> in `parts.blobs` order.
std::string assemble(const OciParts& parts);

// Offset and size of the data of the member `name` in a tar with short (<100 byte) names.
std::pair<std::size_t, std::size_t> find_member(const std::string& tar, const std::string& name);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);

}  // namespace confpod::guest::oci::testutil
