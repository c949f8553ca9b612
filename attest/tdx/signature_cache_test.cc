#include "attest/tdx/signature_cache.h"

#include <gtest/gtest.h>

#include "attest/tdx/roots.h"
#include "attest/tdx/tdx_test_util.h"

namespace confpod::tdx {
namespace {

using testing::fixture;
using testing::fixture_text;
using testing::kV4At;

Quote parsed(const Bytes& data) {
  auto q = parse_quote(data);
  EXPECT_TRUE(q.ok()) << q.error().describe();
  return std::move(q).value();
}

VerifiedCollateral v4_collateral() {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  auto root = intel_sgx_root_ca();
  auto v = verify_collateral(*c, root.get(), kV4At);
  EXPECT_TRUE(v.ok()) << v.error().describe();
  return std::move(v).value();
}

TEST(TdxSignatureCache, SecondQuoteOfAPlatformHitsAndGivesTheSameVerdict) {
  const auto collateral = v4_collateral();
  const Quote quote = parsed(fixture("dcapqvl_quote_v4.dat"));
  SignatureCache cache;
  auto cold = verify_quote(quote, collateral, kV4At, &cache);
  ASSERT_TRUE(cold.ok()) << cold.error().describe();
  auto warm = verify_quote(quote, collateral, kV4At, &cache);
  ASSERT_TRUE(warm.ok()) << warm.error().describe();
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().hits, 1u);
  auto plain = verify_quote(quote, collateral, kV4At);
  EXPECT_EQ(warm->tcb_status, plain->tcb_status);
  EXPECT_EQ(warm->fmspc, plain->fmspc);
  EXPECT_EQ(warm->cpu_svn, plain->cpu_svn);
  EXPECT_EQ(warm->pce_svn, plain->pce_svn);
}

TEST(TdxSignatureCache, AHitStillChecksTheQuotesOwnSignature) {
  const auto collateral = v4_collateral();
  const Bytes data = fixture("dcapqvl_quote_v4.dat");
  SignatureCache cache;
  ASSERT_TRUE(verify_quote(parsed(data), collateral, kV4At, &cache).ok());
  // Same platform (PCK chain, QE report, attestation key), another TD body: its signature no
  // longer verifies, cache or not.
  Bytes tampered = data;
  tampered[48 + 100] ^= 0x01;  // inside the TD report (MRTD)
  auto v = verify_quote(parsed(tampered), collateral, kV4At, &cache);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.quote.signature");
  EXPECT_EQ(cache.stats().hits, 1u);
}

TEST(TdxSignatureCache, AnotherRootOrATimeOutsideTheChainIsVerifiedAgain) {
  const Quote quote = parsed(fixture("dcapqvl_quote_v4.dat"));
  auto root = intel_sgx_root_ca();
  SignatureCache cache;
  ASSERT_TRUE(cache.verify(quote, root.get(), kV4At).ok());
  // Years later the PCK certificates have expired: no hit, the chain check fails as uncached.
  const UnixSeconds later = kV4At + 20LL * 365 * 86400;
  auto expired = cache.verify(quote, root.get(), later);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, verify_quote_signatures(quote, root.get(), later).error().code);
  // A chain verified against the Intel root never vouches for another root.
  auto other = crypto::parse_certificate(as_bytes(fixture_text("../snp/ark_genoa.pem")));
  if (other.ok()) {
    auto wrong = cache.verify(quote, other->get(), kV4At);
    EXPECT_FALSE(wrong.ok());
  }
  EXPECT_EQ(cache.stats().hits, 0u);
}

TEST(TdxSignatureCache, IsBounded) {
  const Quote quote = parsed(fixture("dcapqvl_quote_v4.dat"));
  auto root = intel_sgx_root_ca();
  SignatureCache cache(1);
  ASSERT_TRUE(cache.verify(quote, root.get(), kV4At).ok());
  const Quote other = parsed(fixture("trustee_quote_v4_debug.dat"));
  (void)cache.verify(other, root.get(), testing::kPcsAt);
  EXPECT_EQ(cache.stats().entries, 1u);
  ASSERT_TRUE(cache.verify(quote, root.get(), kV4At).ok());
  EXPECT_EQ(cache.stats().hits, 0u);  // evicted by the other platform's entry
}

}  // namespace
}  // namespace confpod::tdx
