// MeasurementCache: expected measurements keyed by the SHA-256 of each input file plus the
// launch parameters, so relaunching a pod with the same files costs a map lookup.
//
// The keys double as measurement inputs: the SEV hashes table holds exactly the SHA-256 of the
// kernel, initrd and command line, so a caller that knows those digests (the daemon computes
// them once per image with file_sha256) never re-reads the files. Only the firmware has to be
// read on a miss, and only once per distinct firmware: the costly part of an SNP digest (the
// firmware pages) is kept per firmware digest and reused across kernels, vCPU counts and
// guest features. Thread-safe; errors are not cached.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/measure/ovmf.h"
#include "attest/measure/snp_measure.h"

namespace confpod::measure {

// SHA-256 of a file, streamed (constant memory, any size). Error "file.read".
Result<Sha256Digest> file_sha256(const std::string& path);

// Everything an SNP launch digest depends on.
struct SnpMeasureKey {
  Sha256Digest ovmf{};                 // SHA-256 of the OVMF image
  std::optional<KernelHashes> kernel;  // absent: no -kernel
  SnpParams params;
};

class MeasurementCache {
 public:
  // Returns the firmware bytes; called only on a miss.
  using Loader = std::function<Result<Bytes>()>;

  explicit MeasurementCache(std::size_t capacity = 256) : capacity_(capacity) {}

  // The SNP launch digest for `key`. `load_ovmf` is called only when this firmware digest has
  // not been seen; its bytes must hash to key.ovmf (error "measure.cache" otherwise, so a
  // wrong key can never plant a wrong value).
  Result<Sha384Digest> snp_launch_digest(const SnpMeasureKey& key, const Loader& load_ovmf);
  // Same, with the firmware bytes at hand (hashed for the key).
  Result<Sha384Digest> snp_launch_digest(ByteView ovmf, const std::optional<KernelHashes>& kernel,
                                         const SnpParams& params);

  // The TDX MRTD of the firmware whose SHA-256 is `firmware`.
  Result<Sha384Digest> tdx_mrtd(const Sha256Digest& firmware, const Loader& load_firmware);
  Result<Sha384Digest> tdx_mrtd(ByteView firmware);

  struct Stats {
    std::size_t hits = 0;            // answered from the cache
    std::size_t misses = 0;          // computed
    std::size_t firmware_loads = 0;  // loader calls (firmware pages hashed)
  };
  Stats stats() const;
  void clear();

 private:
  struct Firmware {
    Sha384Digest pages{};  // snp_ovmf_digest
    OvmfSevInfo info;
  };

  Result<Firmware> firmware_from(ByteView ovmf);
  Result<Sha384Digest> snp_impl(const SnpMeasureKey& key,
                                const std::function<Result<Firmware>()>& compute);
  Result<Sha384Digest> mrtd_impl(const Sha256Digest& firmware,
                                 const std::function<Result<Sha384Digest>()>& compute);
  template <class Map, class Key, class Value>
  void put(Map& map, const Key& key, const Value& value);

  std::size_t capacity_;
  mutable std::mutex mu_;
  std::map<Sha256Digest, Firmware> firmware_;
  std::map<std::string, Sha384Digest> snp_;
  std::map<Sha256Digest, Sha384Digest> mrtd_;
  Stats stats_;
};

}  // namespace confpod::measure
