// AMD CRL checking with a CA, certificates and CRLs made here: AMD's ARK key signs real CRLs,
// which no test can, so the revocation logic is exercised on a stand-in hierarchy of the same
// shape (ARK -> ASK -> VCEK, P-384, CRL by the ARK). The pinned-ARK wiring is tested in
// daemon/kbs/collateral_source_test.cc.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest/snp/verify.h"

namespace confpod::snp {
namespace {

constexpr UnixSeconds kAt = 1'780'272'000;  // 2026-06-01

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

KeyPtr new_key() { return KeyPtr(EVP_EC_gen("P-384")); }

crypto::X509Ptr make_cert(const std::string& cn, long serial, EVP_PKEY* key, X509* issuer,
                          EVP_PKEY* issuer_key) {
  crypto::X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), kAt - 86400L * 365);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), kAt + 86400L * 365);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_set_pubkey(cert.get(), key);
  X509_sign(cert.get(), issuer_key, EVP_sha384());
  return cert;
}

crypto::X509CrlPtr make_crl(X509* issuer, EVP_PKEY* key, const std::vector<long>& revoked,
                            long next_update_days) {
  crypto::X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> last(ASN1_TIME_new(), &ASN1_TIME_free),
      next(ASN1_TIME_new(), &ASN1_TIME_free);
  ASN1_TIME_set(last.get(), kAt - 86400);
  ASN1_TIME_set(next.get(), kAt + next_update_days * 86400);
  X509_CRL_set1_lastUpdate(crl.get(), last.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (long serial : revoked) {
    X509_REVOKED* entry = X509_REVOKED_new();
    ASN1_INTEGER* s = ASN1_INTEGER_new();
    ASN1_INTEGER_set(s, serial);
    X509_REVOKED_set_serialNumber(entry, s);
    ASN1_INTEGER_free(s);
    X509_REVOKED_set_revocationDate(entry, last.get());
    X509_CRL_add0_revoked(crl.get(), entry);
  }
  X509_CRL_sort(crl.get());
  X509_CRL_sign(crl.get(), key, EVP_sha384());
  return crl;
}

class Revocation : public ::testing::Test {
 protected:
  void SetUp() override {
    ark_key_ = new_key();
    ask_key_ = new_key();
    vek_key_ = new_key();
    ark_ = make_cert("ARK-Genoa", 1, ark_key_.get(), nullptr, ark_key_.get());
    chain_.intermediate = make_cert("SEV-Genoa", 7, ask_key_.get(), ark_.get(), ark_key_.get());
    chain_.vek =
        make_cert("SEV-VCEK", 9, vek_key_.get(), chain_.intermediate.get(), ask_key_.get());
    chain_.product = Product::kGenoa;
  }
  KeyPtr ark_key_, ask_key_, vek_key_;
  crypto::X509Ptr ark_;
  VerifiedChain chain_;
};

TEST_F(Revocation, ARevokedAskFailsTheChainAndOthersPass) {
  auto clean = make_crl(ark_.get(), ark_key_.get(), {3, 5}, 30);
  Status ok = check_revocation(clean.get(), ark_.get(), chain_, kAt, true);
  EXPECT_TRUE(ok.ok()) << ok.error().describe();
  auto revoking = make_crl(ark_.get(), ark_key_.get(), {3, 7}, 30);
  Status revoked = check_revocation(revoking.get(), ark_.get(), chain_, kAt, true);
  ASSERT_FALSE(revoked.ok());
  EXPECT_EQ(revoked.error().code, "snp.chain.revoked");
  EXPECT_NE(revoked.error().message.find("SEV-Genoa"), std::string::npos);
}

TEST_F(Revocation, OnlyTheArksCrlCountsAndStaleOnesOnlyWhenAllowed) {
  // A CRL that lists nothing, signed by some other key: refused, not taken as "all clear".
  auto other_key = new_key();
  auto forged = make_crl(ark_.get(), other_key.get(), {}, 30);
  EXPECT_EQ(check_revocation(forged.get(), ark_.get(), chain_, kAt, false).error().code,
            "snp.crl.signature");
  // Past its next update: refused when a current CRL is required, still read otherwise.
  auto stale = make_crl(ark_.get(), ark_key_.get(), {7}, -2);
  EXPECT_EQ(check_revocation(stale.get(), ark_.get(), chain_, kAt, true).error().code,
            "snp.crl.expired");
  EXPECT_EQ(check_revocation(stale.get(), ark_.get(), chain_, kAt, false).error().code,
            "snp.chain.revoked");
}

}  // namespace
}  // namespace confpod::snp
