// A bounded cache of verified quote signatures, for verifiers that see many quotes from the
// same platforms (the KBS): the PCK chain to the pinned root, the QE report's signature by the
// PCK key and its binding of the attestation key are the same for every quote a Quoting
// Enclave signs, and they cost far more than the quote's own signature.
//
// An entry is keyed by SHA-256 of everything those checks read (PCK chain PEM, QE report,
// its signature, attestation key, QE auth data) and the root it was verified against, and is
// used only at times inside the window in which every certificate of the chain is valid: an
// expired or not-yet-valid chain is verified again (and fails as without the cache). The
// quote's own signature is checked on every call. Revocation is not cached: verify_quote
// checks the PCK certificate against the collateral's CRLs on every quote, so a CRL change
// applies at once. Least recently used entries go first. Thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>

#include "attest/tdx/verify.h"

namespace confpod::tdx {

class SignatureCache {
 public:
  explicit SignatureCache(std::size_t capacity = 64);
  SignatureCache(const SignatureCache&) = delete;
  SignatureCache& operator=(const SignatureCache&) = delete;

  // verify_quote_signatures(quote, trusted_root, at), through the cache.
  Result<VerifiedSignatures> verify(const Quote& quote, X509* trusted_root, UnixSeconds at);

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::size_t entries = 0;
  };
  Stats stats() const;

 private:
  struct Entry {
    PckExtensions pck;
    crypto::X509Ptr leaf;
    crypto::X509Ptr intermediate;
    crypto::EvpPkeyPtr attestation_key;
    UnixSeconds valid_from = 0;   // latest notBefore of the chain
    UnixSeconds valid_until = 0;  // earliest notAfter of the chain
  };
  using Key = Bytes;

  std::size_t capacity_;
  mutable std::mutex mu_;
  std::list<Key> order_;  // most recently used first
  std::map<Key, std::pair<std::shared_ptr<const Entry>, std::list<Key>::iterator>> entries_;
  Stats stats_;
};

}  // namespace confpod::tdx
