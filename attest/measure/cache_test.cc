#include "attest/measure/cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "attest/measure/tdx_measure.h"
#include "tests/support/fixtures.h"

namespace confpod::measure {
namespace {

Bytes amd_sev() { return confpod::testing::read_fixture("snp/ovmf_AmdSev_suffix.bin"); }

SnpParams params(std::uint32_t vcpus, std::uint64_t features) {
  SnpParams p;
  p.vcpus = vcpus;
  p.vcpu_signature = cpu_signature(23, 1, 2);
  p.guest_features = features;
  return p;
}

TEST(MeasurementCache, SnpHitsSkipTheFirmware) {
  const Bytes ovmf = amd_sev();
  MeasurementCache cache;
  SnpMeasureKey key{sha256_of(ovmf), kernel_hashes({}, {}, ""), params(1, 0x21)};
  int loads = 0;
  auto loader = [&]() -> Result<Bytes> {
    ++loads;
    return ovmf;
  };
  const std::string expected =
      "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef9"
      "8a7ef198";
  auto first = cache.snp_launch_digest(key, loader);
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(to_hex(*first), expected);
  auto second = cache.snp_launch_digest(key, loader);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(to_hex(*second), expected);
  EXPECT_EQ(loads, 1);

  // Another vCPU count with the same firmware: computed, but the firmware is not re-read.
  key.params = params(4, 0x21);
  auto four = cache.snp_launch_digest(key, loader);
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(to_hex(*four),
            "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698"
            "e2414a631942");
  EXPECT_EQ(loads, 1);
  const auto stats = cache.stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.firmware_loads, 1u);
}

TEST(MeasurementCache, ByteOverloadsAgreeWithDirectComputation) {
  const Bytes ovmf = amd_sev();
  MeasurementCache cache;
  auto a = cache.snp_launch_digest(ovmf, std::nullopt, params(1, 0x1));
  auto b = snp_launch_digest(ovmf, std::nullopt, params(1, 0x1));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  const Bytes tdvf = confpod::testing::read_fixture("tdx/synthetic_tdvf_64k.bin");
  auto m1 = cache.tdx_mrtd(tdvf);
  auto m2 = cache.tdx_mrtd(tdvf);
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_EQ(to_hex(*m1),
            "1918701c3755294a3e9d5492f555e94d273e3e752123c3d1c1f865c424781d9647c2bdbe3bf7fc84e0a1"
            "f6faca1434da");
  EXPECT_EQ(*m1, *m2);
  EXPECT_EQ(cache.stats().hits, 1u);
}

TEST(MeasurementCache, LoaderBytesMustMatchTheKey) {
  const Bytes ovmf = amd_sev();
  MeasurementCache cache;
  SnpMeasureKey key{sha256_of(ovmf), std::nullopt, params(1, 0x1)};
  Bytes other = ovmf;
  other[0] ^= 1;
  auto r = cache.snp_launch_digest(key, [&]() -> Result<Bytes> { return other; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "measure.cache");
  // Nothing was remembered: the right bytes still give the right digest.
  auto good = cache.snp_launch_digest(key, [&]() -> Result<Bytes> { return ovmf; });
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, *snp_launch_digest(ovmf, std::nullopt, params(1, 0x1)));

  auto mrtd = cache.tdx_mrtd(Sha256Digest{}, [&]() -> Result<Bytes> { return ovmf; });
  ASSERT_FALSE(mrtd.ok());
  EXPECT_EQ(mrtd.error().code, "measure.cache");
}

TEST(MeasurementCache, ErrorsAreNotCached) {
  MeasurementCache cache;
  const Bytes x64 = confpod::testing::read_fixture("snp/ovmf_OvmfX64_suffix.bin");
  auto r1 = cache.snp_launch_digest(x64, kernel_hashes({}, {}, ""), params(1, 0x1));
  auto r2 = cache.snp_launch_digest(x64, kernel_hashes({}, {}, ""), params(1, 0x1));
  ASSERT_FALSE(r1.ok());
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, "measure.ovmf.kernel_hashes");
  EXPECT_EQ(cache.stats().hits, 0u);
}

TEST(MeasurementCache, CapacityBoundsTheMaps) {
  const Bytes ovmf = amd_sev();
  MeasurementCache cache(2);
  for (std::uint32_t v = 1; v <= 5; ++v)
    ASSERT_TRUE(cache.snp_launch_digest(ovmf, std::nullopt, params(v, 0x1)).ok());
  // All five were computed; asking again for an evicted one recomputes, never fails.
  auto again = cache.snp_launch_digest(ovmf, std::nullopt, params(1, 0x1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *snp_launch_digest(ovmf, std::nullopt, params(1, 0x1)));
}

TEST(FileSha256, StreamsAFile) {
  const std::string path = ::testing::TempDir() + "/measure_file_sha256";
  {
    std::ofstream out(path, std::ios::binary);
    out << "abc";
  }
  auto d = file_sha256(path);
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(to_hex(*d), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::remove(path.c_str());
  auto missing = file_sha256(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "file.read");
}

}  // namespace
}  // namespace confpod::measure
