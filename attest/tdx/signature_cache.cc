#include "attest/tdx/signature_cache.h"

#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include <algorithm>

namespace confpod::tdx {
namespace {

// The digest of every input of verify_quote_signatures but the quote's own signed region.
Bytes key_of(const Quote& quote, X509* root) {
  Bytes all;
  auto add = [&all](ByteView part) {
    const std::uint64_t n = part.size();
    for (int i = 0; i < 8; ++i) all.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
    all.insert(all.end(), part.begin(), part.end());
  };
  add(as_bytes(quote.pck_cert_chain_pem));
  add(quote.qe_report_raw);
  add(quote.qe_report_signature);
  add(quote.attestation_key);
  add(quote.qe_auth_data);
  // The root by its signature (no other certificate carries it; reading it costs nothing,
  // unlike re-encoding the DER): an entry verified against another root never matches.
  const ASN1_BIT_STRING* signature = nullptr;
  X509_get0_signature(&signature, nullptr, root);
  if (signature != nullptr)
    add(ByteView(ASN1_STRING_get0_data(signature),
                 static_cast<std::size_t>(ASN1_STRING_length(signature))));
  return crypto::sha256(all);
}

crypto::X509Ptr share(const crypto::X509Ptr& cert) {
  X509_up_ref(cert.get());
  return crypto::X509Ptr(cert.get());
}

}  // namespace

SignatureCache::SignatureCache(std::size_t capacity)
    : capacity_(std::max<std::size_t>(1, capacity)) {}

Result<VerifiedSignatures> SignatureCache::verify(const Quote& quote, X509* trusted_root,
                                                  UnixSeconds at) {
  Key key = key_of(quote, trusted_root);
  std::shared_ptr<const Entry> hit;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && at >= it->second.first->valid_from &&
        at <= it->second.first->valid_until) {
      hit = it->second.first;
      order_.splice(order_.begin(), order_, it->second.second);
      ++stats_.hits;
    } else {
      ++stats_.misses;
    }
  }
  if (hit) {
    // Only the quote's own signature is new.
    if (!crypto::verify_ecdsa_concat(hit->attestation_key.get(), crypto::Hash::kSha256,
                                     quote.signed_region, quote.signature)
             .ok())
      return make_error("tdx.quote.signature",
                        "quote signature over header and body does not verify with the "
                        "attestation key");
    VerifiedSignatures out;
    out.pck = hit->pck;
    out.pck_leaf = share(hit->leaf);
    out.pck_intermediate = share(hit->intermediate);
    return out;
  }

  CONFPOD_ASSIGN_OR_RETURN(VerifiedSignatures sigs,
                           verify_quote_signatures(quote, trusted_root, at));
  auto entry = std::make_shared<Entry>();
  entry->pck = sigs.pck;
  entry->leaf = share(sigs.pck_leaf);
  entry->intermediate = share(sigs.pck_intermediate);
  auto att_key = crypto::ec_public_key_from_xy(NID_X9_62_prime256v1, quote.attestation_key);
  if (!att_key.ok()) return sigs;  // verified above; nothing to keep
  entry->attestation_key = std::move(*att_key);
  entry->valid_from =
      std::max({crypto::not_before(entry->leaf.get()),
                crypto::not_before(entry->intermediate.get()), crypto::not_before(trusted_root)});
  entry->valid_until =
      std::min({crypto::not_after(entry->leaf.get()), crypto::not_after(entry->intermediate.get()),
                crypto::not_after(trusted_root)});
  std::lock_guard lock(mu_);
  if (entries_.find(key) == entries_.end()) {
    order_.push_front(key);
    entries_.emplace(
        key, std::make_pair(std::shared_ptr<const Entry>(std::move(entry)), order_.begin()));
    while (entries_.size() > capacity_) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
  }
  return sigs;
}

SignatureCache::Stats SignatureCache::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.entries = entries_.size();
  return s;
}

}  // namespace confpod::tdx
