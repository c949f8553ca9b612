// Replay driver for libFuzzer entry points in the normal (non-clang) build: runs
// LLVMFuzzerTestOneInput over every file given (directories are walked), plus every
// truncation of each file's first 4 KiB, so parsers see short input on every build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {
std::size_t run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::uint8_t> data((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  std::size_t runs = 1;
  for (std::size_t n = 0; n < data.size() && n < 4096; ++n, ++runs) {
    std::vector<std::uint8_t> prefix(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    LLVMFuzzerTestOneInput(prefix.data(), prefix.size());
  }
  return runs;
}
}  // namespace

int main(int argc, char** argv) {
  std::size_t files = 0, runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) runs += run_file(e.path()), ++files;
    } else if (std::filesystem::is_regular_file(p)) {
      runs += run_file(p), ++files;
    } else {
      std::fprintf(stderr, "replay: no such seed %s\n", argv[i]);
      return 2;
    }
  }
  if (files == 0) {
    std::fprintf(stderr, "replay: no seeds given\n");
    return 2;
  }
  std::printf("replay: %zu files, %zu inputs, no crash\n", files, runs);
  return 0;
}
