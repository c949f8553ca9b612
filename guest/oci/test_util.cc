#include "guest/oci/test_util.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "attest/base/bytes.h"
#include "attest/crypto/crypto.h"

namespace confpod::guest::oci::testutil {

namespace {

void put_octal(char* field, std::size_t width, std::uint64_t value) {
  char tmp[32];
  std::snprintf(tmp, sizeof tmp, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
  std::memcpy(field, tmp, width - 1);  // the field keeps its trailing NUL
}

std::string header(char type, const std::string& name, std::uint64_t size, std::uint32_t mode,
                   const std::string& link) {
  char h[512];
  std::memset(h, 0, sizeof h);
  std::memcpy(h, name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(h + 100, 8, mode);
  put_octal(h + 108, 8, 0);
  put_octal(h + 116, 8, 0);
  put_octal(h + 124, 12, size);
  put_octal(h + 136, 12, 0);
  h[156] = type;
  std::memcpy(h + 157, link.data(), std::min<std::size_t>(link.size(), 100));
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  char ck[16];
  std::snprintf(ck, sizeof ck, "%06o", sum & 0777777u);
  std::memcpy(h + 148, ck, 6);
  h[154] = '\0';
  h[155] = ' ';
  return std::string(h, sizeof h);
}

std::string pad(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

}  // namespace

void TarWriter::entry(char type, const std::string& name, const std::string& data,
                      std::uint32_t mode, const std::string& link) {
  if (name.size() > 100) {
    out_ += header('L', "././@LongLink", name.size() + 1, 0644, "");
    out_ += pad(name + '\0');
  }
  if (link.size() > 100) {
    out_ += header('K', "././@LongLink", link.size() + 1, 0644, "");
    out_ += pad(link + '\0');
  }
  out_ += header(type, name, data.size(), mode, link);
  out_ += pad(data);
}

void TarWriter::file(const std::string& name, const std::string& data, std::uint32_t mode) {
  entry('0', name, data, mode);
}
void TarWriter::dir(const std::string& name, std::uint32_t mode) { entry('5', name, "", mode); }
void TarWriter::symlink(const std::string& name, const std::string& target) {
  entry('2', name, "", 0777, target);
}
void TarWriter::hardlink(const std::string& name, const std::string& target) {
  entry('1', name, "", 0644, target);
}

std::string TarWriter::finish(int extra_zero_blocks) const {
  return out_ + std::string(512 * (2 + extra_zero_blocks), '\0');
}

std::string gzip(const std::string& data) {
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2");
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
  return out;
}

std::string sha256_hex(const std::string& data) {
  auto d =
      crypto::sha256(ByteView(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
  return to_hex(d);
}

OciParts make_parts(const std::vector<std::string>& layer_tars, bool gzip_layers,
                    const std::string& layer_media_type) {
  OciParts p;
  std::string layers_json, diff_ids;
  for (const auto& t : layer_tars) {
    std::string blob = gzip_layers ? gzip(t) : t;
    std::string hex = sha256_hex(blob);
    p.blobs.emplace_back(hex, blob);
    std::string mt = !layer_media_type.empty() ? layer_media_type
                     : gzip_layers             ? "application/vnd.oci.image.layer.v1.tar+gzip"
                                               : "application/vnd.oci.image.layer.v1.tar";
    if (!layers_json.empty()) layers_json += ",";
    layers_json += R"({"mediaType":")" + mt + R"(","digest":"sha256:)" + hex + R"(","size":)" +
                   std::to_string(blob.size()) + "}";
    if (!diff_ids.empty()) diff_ids += ",";
    diff_ids += "\"sha256:" + sha256_hex(t) + "\"";
  }
  std::string config =
      R"({"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/true"],"Cmd":["-x"],)"
      R"("Env":["PATH=/bin","A=b"],"WorkingDir":"/w","User":"1000:1000"},)"
      R"("rootfs":{"type":"layers","diff_ids":[)" +
      diff_ids + "]}}";
  std::string config_hex = sha256_hex(config);
  p.blobs.emplace_back(config_hex, config);
  p.manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
      config_hex + R"(","size":)" + std::to_string(config.size()) + R"(},"layers":[)" +
      layers_json + "]}";
  p.manifest_hex = sha256_hex(p.manifest);
  p.blobs.emplace_back(p.manifest_hex, p.manifest);
  p.index =
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("digest":"sha256:)" +
      p.manifest_hex + R"(","size":)" + std::to_string(p.manifest.size()) + "}]}";
  return p;
}

std::string assemble(const OciParts& parts) {
  TarWriter w;
  w.file("oci-layout", parts.oci_layout);
  w.file("index.json", parts.index);
  w.dir("blobs/");
  w.dir("blobs/sha256/");
  for (const auto& [hex, content] : parts.blobs) w.file("blobs/sha256/" + hex, content);
  return w.finish(16);  // GNU tar pads to a 10 KiB record too
}

std::pair<std::size_t, std::size_t> find_member(const std::string& tar, const std::string& name) {
  std::size_t off = 0;
  while (off + 512 <= tar.size()) {
    const char* h = tar.data() + off;
    std::string n(h, strnlen(h, 100));
    if (n.empty()) break;
    std::size_t size = std::stoull(std::string(h + 124, 11), nullptr, 8);
    if (n == name) return {off + 512, size};
    off += 512 + (size + 511) / 512 * 512;
  }
  throw std::runtime_error("no member " + name);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace confpod::guest::oci::testutil
