// libFuzzer entry: arbitrary bytes as an OCI archive (verify, then verify_and_unpack into a
// fresh directory) and as one layer's tar stream fed straight to the unpacker, which sees
// host-chosen bytes even after verification (the host can rewrite the disk in between).
// Must never crash, and nothing may appear beside the rootfs: checked after every input.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "attest/base/unique_fd.h"
#include "guest/oci/archive.h"
#include "guest/oci/tar.h"
#include "guest/oci/unpack.h"

namespace {

using namespace confpod::guest::oci;
namespace fs = std::filesystem;

// The digest of the first blob that looks like a manifest, so valid seeds get past the pin.
std::string guess_pin(const std::uint8_t* data, std::size_t size) {
  MemorySource src(data, size);
  TarReader tar(src);
  for (int i = 0; i < 64; ++i) {
    auto e = tar.next();
    if (!e.ok() || !e->has_value()) break;
    const std::string& p = (*e)->path;
    auto pos = p.find("blobs/sha256/");
    if (pos == std::string::npos || p.size() != pos + 13 + 64) continue;
    auto body = tar.read_all(1 << 16);
    if (body.ok() && body->find("\"layers\"") != std::string::npos)
      return "sha256:" + p.substr(pos + 13);
  }
  return "sha256:" + std::string(64, '0');
}

// Aborts if anything but "root" appears in `dir` (an escape from the rootfs).
void check_confined(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != "root") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  confpod::UniqueFd mem(memfd_create("oci-archive", MFD_CLOEXEC));
  if (!mem) return 0;
  for (std::size_t done = 0; done < size;) {
    ssize_t w = write(mem.get(), data + done, size - done);
    if (w <= 0) return 0;
    done += static_cast<std::size_t>(w);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(mem.get());

  Limits limits;
  limits.max_blob_bytes = 1 << 20;
  limits.max_unpacked_bytes = 4 << 20;
  limits.max_entries = 1000;
  limits.max_json_bytes = 1 << 16;

  const std::string pin = guess_pin(data, size);
  (void)verify(path, pin, limits);

  // tmpfs when there is one: thousands of inputs each create and remove a tree.
  char shm_tmpl[] = "/dev/shm/fuzz-oci-XXXXXX";
  char tmp_tmpl[] = "/tmp/fuzz-oci-XXXXXX";
  char* tmpl = mkdtemp(shm_tmpl);
  if (!tmpl) tmpl = mkdtemp(tmp_tmpl);
  if (!tmpl) return 0;
  const fs::path dir(tmpl);
  std::error_code ec;
  fs::create_directory(dir / "root", ec);
  (void)verify_and_unpack(path, pin, (dir / "root").string(), limits);
  check_confined(dir);

  // The same bytes as a layer (plain, or gzip when they look like it).
  fs::remove_all(dir / "root", ec);
  fs::create_directory(dir / "root", ec);
  {
    confpod::UniqueFd root(open((dir / "root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root) {
      UnpackStats stats;
      LayerUnpacker unpacker(root.get(), limits, stats);
      MemorySource src(data, size);
      if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        GzipSource gz(src);
        (void)unpacker.apply(gz);
      } else {
        (void)unpacker.apply(src);
      }
    }
  }
  check_confined(dir);
  fs::remove_all(dir, ec);
  return 0;
}
