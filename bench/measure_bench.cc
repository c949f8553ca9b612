// Launch-measurement cost against plain hashing, both measured in this run on this machine:
//   SNP: time to compute the expected launch digest of a 4 MiB OVMF + 10 MiB kernel + 20 MiB
//        initrd (firmware pages SHA-384 + PAGE_INFO chain, kernel/initrd SHA-256, metadata
//        pages, VMSAs) / time to SHA-384 the same 34 MiB in one pass. Target <= 1.2.
//   The OVMF is the AmdSev firmware fixture's last 4 KiB (footer table, SEV metadata, hashes
//   table) behind 4 MiB - 4 KiB of generated code bytes; kernel and initrd are generated too.
//   Also printed: a MeasurementCache hit (a relaunch with the same files, keyed by digests).
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "attest/base/bytes.h"
#include "attest/measure/cache.h"
#include "attest/measure/ovmf.h"
#include "attest/measure/snp_measure.h"

namespace {

using confpod::Bytes;
using Clock = std::chrono::steady_clock;
namespace measure = confpod::measure;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "measure_bench: %s\n", what.c_str());
  std::exit(1);
}

template <class R>
auto must(R result, const char* what) {
  if (!result.ok()) die(std::string(what) + ": " + result.error().describe());
  return std::move(result).value();
}

std::string fixtures_dir() {
  const char* dir = std::getenv("CONFPOD_FIXTURES_DIR");
  return dir && *dir ? dir : CONFPOD_FIXTURES_DIR;
}

Bytes generated(std::size_t size, std::uint32_t seed) {
  Bytes out(size);
  std::uint32_t x = seed;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;  // LCG: cheap, deterministic, not all-equal bytes
    b = static_cast<std::uint8_t>(x >> 24);
  }
  return out;
}

// Seconds per call of `op`, best of several rounds (the least disturbed).
double seconds_per_op(const std::function<void()>& op, int rounds) {
  double best = 1e9;
  for (int r = 0; r < rounds; ++r) {
    auto start = Clock::now();
    op();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main() {
  constexpr std::size_t kMiB = 1u << 20;
  const Bytes suffix =
      must(confpod::read_file(fixtures_dir() + "/snp/ovmf_AmdSev_suffix.bin"), "fixture");
  Bytes ovmf = generated(4 * kMiB - suffix.size(), 1);
  ovmf.insert(ovmf.end(), suffix.begin(), suffix.end());
  const Bytes kernel = generated(10 * kMiB, 2);
  const Bytes initrd = generated(20 * kMiB, 3);
  const std::string cmdline = "console=ttyS0 root=/dev/vda rw";

  measure::SnpParams params;
  params.vcpus = 4;
  params.vcpu_signature = must(measure::vcpu_signature("EPYC-Milan"), "vcpu type");
  params.guest_features = 0x1;

  measure::Sha384Digest sink{};
  auto subject = [&] {
    const auto hashes = measure::kernel_hashes(kernel, initrd, cmdline);
    sink = must(measure::snp_launch_digest(ovmf, hashes, params), "launch digest");
  };
  auto baseline = [&] {
    // One SHA-384 pass over the same 34 MiB (three updates of one context).
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha384(), nullptr);
    EVP_DigestUpdate(ctx, ovmf.data(), ovmf.size());
    EVP_DigestUpdate(ctx, kernel.data(), kernel.size());
    EVP_DigestUpdate(ctx, initrd.data(), initrd.size());
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, sink.data(), &len);
    EVP_MD_CTX_free(ctx);
  };
  // Interleave so both see the same machine conditions.
  double s = 1e9, b = 1e9;
  for (int i = 0; i < 5; ++i) {
    b = std::min(b, seconds_per_op(baseline, 2));
    s = std::min(s, seconds_per_op(subject, 2));
  }
  std::printf(
      "SNP  measure 4+10+20 MiB %8.2f ms   plain SHA-384 %8.2f ms   ratio %.3f   "
      "(target <= 1.2)\n",
      s * 1e3, b * 1e3, s / b);

  // A relaunch: the daemon keys by file digests it already has; a hit is a map lookup.
  measure::MeasurementCache cache;
  const measure::SnpMeasureKey key{measure::sha256_of(ovmf),
                                   measure::kernel_hashes(kernel, initrd, cmdline), params};
  auto load = [&]() -> confpod::Result<Bytes> { return ovmf; };
  must(cache.snp_launch_digest(key, load), "cache miss");
  const int kLookups = 10000;
  double hit = seconds_per_op(
      [&] {
        for (int i = 0; i < kLookups; ++i) sink = must(cache.snp_launch_digest(key, load), "hit");
      },
      3);
  std::printf("SNP  cache hit %8.3f us per relaunch   (report only)\n", hit / kLookups * 1e6);
  return 0;
}
