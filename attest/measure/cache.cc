#include "attest/measure/cache.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "attest/measure/tdx_measure.h"

namespace confpod::measure {

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

void append(std::string& out, ByteView bytes) { out.append(bytes.begin(), bytes.end()); }

void append_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

std::string serialize(const SnpMeasureKey& key) {
  std::string out;
  append(out, key.ovmf);
  out.push_back(key.kernel ? 1 : 0);
  if (key.kernel) {
    append(out, key.kernel->kernel);
    append(out, key.kernel->initrd);
    append(out, key.kernel->cmdline);
  }
  append_u64(out, key.params.vcpus);
  append_u64(out, key.params.vcpu_signature);
  append_u64(out, key.params.guest_features);
  append_u64(out, static_cast<std::uint64_t>(key.params.vmm));
  return out;
}

// A loader's bytes must be the ones the key names.
Status check_digest(ByteView bytes, const Sha256Digest& expected) {
  const Sha256Digest actual = sha256_of(bytes);
  if (actual != expected)
    return make_error("measure.cache", "firmware bytes hash to " + to_hex(actual) +
                                           ", not the key's " + to_hex(expected));
  return ok_status();
}

}  // namespace

Result<Sha256Digest> file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("file.read", "cannot open " + path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    return make_error("file.read", "cannot initialise SHA-256 for " + path);
  std::vector<char> buffer(1u << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n));
  }
  if (in.bad()) return make_error("file.read", "error reading " + path);
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1)
    return make_error("file.read", "SHA-256 of " + path + " failed");
  return out;
}

template <class Map, class Key, class Value>
void MeasurementCache::put(Map& map, const Key& key, const Value& value) {
  // Bounded: a daemon sees a handful of images; drop the smallest key when full.
  if (map.size() >= capacity_ && !map.empty() && map.find(key) == map.end()) map.erase(map.begin());
  map.insert_or_assign(key, value);
}

Result<MeasurementCache::Firmware> MeasurementCache::firmware_from(ByteView ovmf) {
  {
    std::lock_guard lock(mu_);
    ++stats_.firmware_loads;
  }
  CONFPOD_ASSIGN_OR_RETURN(OvmfSevInfo info, parse_ovmf_sev(ovmf));
  CONFPOD_ASSIGN_OR_RETURN(Sha384Digest pages, snp_ovmf_digest(ovmf));
  return Firmware{pages, std::move(info)};
}

Result<Sha384Digest> MeasurementCache::snp_impl(const SnpMeasureKey& key,
                                                const std::function<Result<Firmware>()>& compute) {
  const std::string skey = serialize(key);
  std::optional<Firmware> firmware;
  {
    std::lock_guard lock(mu_);
    if (auto it = snp_.find(skey); it != snp_.end()) {
      ++stats_.hits;
      return it->second;
    }
    ++stats_.misses;
    if (auto it = firmware_.find(key.ovmf); it != firmware_.end()) firmware = it->second;
  }
  if (!firmware) {
    CONFPOD_ASSIGN_OR_RETURN(firmware, compute());
    std::lock_guard lock(mu_);
    put(firmware_, key.ovmf, *firmware);
  }
  CONFPOD_ASSIGN_OR_RETURN(
      Sha384Digest digest,
      snp_launch_digest_from(firmware->pages, firmware->info, key.kernel, key.params));
  std::lock_guard lock(mu_);
  put(snp_, skey, digest);
  return digest;
}

Result<Sha384Digest> MeasurementCache::snp_launch_digest(const SnpMeasureKey& key,
                                                         const Loader& load_ovmf) {
  return snp_impl(key, [&]() -> Result<Firmware> {
    CONFPOD_ASSIGN_OR_RETURN(Bytes ovmf, load_ovmf());
    CONFPOD_TRY(check_digest(ovmf, key.ovmf));
    return firmware_from(ovmf);
  });
}

Result<Sha384Digest> MeasurementCache::snp_launch_digest(ByteView ovmf,
                                                         const std::optional<KernelHashes>& kernel,
                                                         const SnpParams& params) {
  const SnpMeasureKey key{sha256_of(ovmf), kernel, params};
  return snp_impl(key, [&]() { return firmware_from(ovmf); });
}

Result<Sha384Digest> MeasurementCache::mrtd_impl(
    const Sha256Digest& firmware, const std::function<Result<Sha384Digest>()>& compute) {
  {
    std::lock_guard lock(mu_);
    if (auto it = mrtd_.find(firmware); it != mrtd_.end()) {
      ++stats_.hits;
      return it->second;
    }
    ++stats_.misses;
    ++stats_.firmware_loads;
  }
  CONFPOD_ASSIGN_OR_RETURN(Sha384Digest mrtd, compute());
  std::lock_guard lock(mu_);
  put(mrtd_, firmware, mrtd);
  return mrtd;
}

Result<Sha384Digest> MeasurementCache::tdx_mrtd(const Sha256Digest& firmware,
                                                const Loader& load_firmware) {
  return mrtd_impl(firmware, [&]() -> Result<Sha384Digest> {
    CONFPOD_ASSIGN_OR_RETURN(Bytes image, load_firmware());
    CONFPOD_TRY(check_digest(image, firmware));
    return measure::tdx_mrtd(image);
  });
}

Result<Sha384Digest> MeasurementCache::tdx_mrtd(ByteView firmware) {
  return mrtd_impl(sha256_of(firmware), [&]() { return measure::tdx_mrtd(firmware); });
}

MeasurementCache::Stats MeasurementCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void MeasurementCache::clear() {
  std::lock_guard lock(mu_);
  firmware_.clear();
  snp_.clear();
  mrtd_.clear();
  stats_ = Stats{};
}

}  // namespace confpod::measure
