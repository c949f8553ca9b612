#include "attest/crypto/crypto.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "tests/support/fixtures.h"

namespace confpod::crypto {
namespace {

using confpod::testing::read_fixture;
using confpod::testing::read_fixture_text;

TEST(Digest, KnownAnswers) {
  EXPECT_EQ(to_hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha384(as_bytes(""))),
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2"
            "f14898b95b");
}

TEST(Certificates, AmdRootIsSelfSignedWithPss) {
  auto ark = parse_certificate(read_fixture("snp/ark_milan.pem"));
  ASSERT_TRUE(ark.ok()) << ark.error().describe();
  EXPECT_TRUE(verify_certificate_signature(ark->get(), ark->get()).ok());
  auto ask = parse_certificate(read_fixture("snp/ask_milan.pem"));
  ASSERT_TRUE(ask.ok());
  EXPECT_TRUE(verify_certificate_signature(ask->get(), ark->get()).ok());
  auto genoa_ark = parse_certificate(read_fixture("snp/ark_genoa.pem"));
  ASSERT_TRUE(genoa_ark.ok());
  auto wrong = verify_certificate_signature(ask->get(), genoa_ark->get());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "crypto.cert_signature");
  EXPECT_NE(subject_name(ark->get()).find("ARK-Milan"), std::string::npos);
}

TEST(Certificates, NonRfc5280SerialVcekStillLoads) {
  // go-sev-guest's test VCEK has serial number 0, which RFC 5280 forbids; real AMD
  // tooling accepts it, so must we.
  auto vcek = parse_certificate(read_fixture("snp/gosev_vcek.der"));
  ASSERT_TRUE(vcek.ok()) << vcek.error().describe();
  EXPECT_EQ(serial_hex(vcek->get()), "0");
}

TEST(Certificates, PemBundleInOrderAndValidity) {
  auto chain = parse_pem_certificates(read_fixture_text("snp/virtee_cert_chain_milan.pem"));
  ASSERT_TRUE(chain.ok());
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_NE(subject_name((*chain)[0].get()).find("SEV-Milan"), std::string::npos);
  EXPECT_NE(subject_name((*chain)[1].get()).find("ARK-Milan"), std::string::npos);
  auto root = parse_certificate(read_fixture("tdx/intel_sgx_root_ca.pem"));
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(format_rfc3339(not_before(root->get())), "2018-05-21T10:45:10Z");
  EXPECT_TRUE(check_validity(root->get(), *parse_rfc3339("2030-01-01T00:00:00Z")).ok());
  auto early = check_validity(root->get(), *parse_rfc3339("2018-05-21T10:45:09Z"));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, "crypto.cert_validity");
  EXPECT_FALSE(parse_pem_certificates("not a pem").ok());
  EXPECT_FALSE(parse_certificate(as_bytes("garbage")).ok());
}

TEST(Certificates, ReadsVcekExtensions) {
  auto vcek = parse_certificate(read_fixture("snp/virtee_vcek_milan.der"));
  ASSERT_TRUE(vcek.ok());
  auto hwid = extension_value(vcek->get(), "1.3.6.1.4.1.3704.1.4");
  ASSERT_TRUE(hwid.ok());
  EXPECT_EQ(to_hex(*hwid).substr(0, 32), "d49554ec717f4e5b0fe6b143bcf0405b");
  auto missing = extension_value(vcek->get(), "1.2.3.4.5");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "crypto.extension_missing");
}

TEST(Crls, RootCrlSignedByRootWithinItsWindow) {
  auto crl = parse_crl(read_fixture("tdx/gotdx_rootcrl.der"));
  ASSERT_TRUE(crl.ok()) << crl.error().describe();
  auto root = parse_certificate(read_fixture("tdx/intel_sgx_root_ca.pem"));
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(verify_crl_signature(crl->get(), root->get()).ok());
  EXPECT_TRUE(check_crl_validity(crl->get(), *parse_rfc3339("2023-07-01T01:00:00Z")).ok());
  auto late = check_crl_validity(crl->get(), *parse_rfc3339("2024-04-02T10:22:52Z"));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, "crypto.crl_validity");
  EXPECT_FALSE(is_revoked(crl->get(), root->get()));
}

TEST(Ecdsa, RawSignaturesVerifyAndTamperingFails) {
  // A fresh key made here: sign with OpenSSL's DER API, verify through the raw-r/s path.
  EvpPkeyPtr key(EVP_EC_gen("P-384"));
  ASSERT_TRUE(key);
  Bytes msg(100, 0x5a);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  ASSERT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key.get()), 1);
  std::size_t len = 0;
  ASSERT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, msg.data(), msg.size()), 1);
  Bytes der(len);
  ASSERT_EQ(EVP_DigestSign(ctx.get(), der.data(), &len, msg.data(), msg.size()), 1);
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)), ECDSA_SIG_free);
  ASSERT_TRUE(sig);
  Bytes r(48), s(48);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), r.data(), 48);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), s.data(), 48);
  EXPECT_TRUE(verify_ecdsa(key.get(), Hash::kSha384, msg, r, s).ok());
  Bytes concat = r;
  concat.insert(concat.end(), s.begin(), s.end());
  EXPECT_TRUE(verify_ecdsa_concat(key.get(), Hash::kSha384, msg, concat).ok());
  msg[3] ^= 1;
  auto bad = verify_ecdsa(key.get(), Hash::kSha384, msg, r, s);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "crypto.signature");
}

TEST(Ecdsa, RawPublicKeyMustBeOnTheCurve) {
  Bytes junk(64, 0x11);
  auto key = ec_public_key_from_xy(NID_X9_62_prime256v1, junk);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, "crypto.public_key");
  EXPECT_FALSE(ec_public_key_from_xy(NID_X9_62_prime256v1, Bytes(63)).ok());
  // (0, 0), how some encoders write the point at infinity, is not on the curve.
  EXPECT_FALSE(ec_public_key_from_xy(NID_X9_62_prime256v1, Bytes(64)).ok());
  // The P-256 generator point is a valid key.
  auto g = from_hex(
      "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
      "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(ec_public_key_from_xy(NID_X9_62_prime256v1, *g).ok());
  // x = p, the field prime: a coordinate out of range (x mod p = 0 would be on no point).
  auto x_is_p = from_hex(
      "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"
      "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
  ASSERT_TRUE(x_is_p.ok());
  EXPECT_FALSE(ec_public_key_from_xy(NID_X9_62_prime256v1, *x_is_p).ok());
  // Other curves than the two supported, by name.
  auto other = ec_public_key_from_xy(NID_secp521r1, Bytes(132, 1));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().message, "unsupported curve");
}

TEST(Ecdsa, P384PublicKeysImportAndVerify) {
  // The P-384 generator point.
  auto g = from_hex(
      "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e38"
      "72760ab73617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d"
      "7a431d7c90ea0e5f");
  ASSERT_TRUE(g.ok());
  auto key = ec_public_key_from_xy(NID_secp384r1, *g);
  ASSERT_TRUE(key.ok()) << key.error().describe();
  EXPECT_EQ(EVP_PKEY_get_bits(key->get()), 384);
  Bytes flipped = *g;
  flipped[60] ^= 1;
  EXPECT_FALSE(ec_public_key_from_xy(NID_secp384r1, flipped).ok());
  EXPECT_FALSE(ec_public_key_from_xy(NID_secp384r1, Bytes(64, 1)).ok());  // P-256's size
}

TEST(EcKeys, GeneratedKeysAreFreshAndOnTheirCurve) {
  for (int nid : {NID_X9_62_prime256v1, NID_secp384r1}) {
    auto a = ec_generate(nid);
    auto b = ec_generate(nid);
    ASSERT_TRUE(a.ok()) << a.error().describe();
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(EVP_PKEY_get_bits(a->get()), nid == NID_secp384r1 ? 384 : 256);
    EXPECT_NE(EVP_PKEY_eq(a->get(), b->get()), 1) << "two keys alike";
    // Each public key survives the import's checks: it is a point of the group.
    unsigned char point[97];
    std::size_t len = 0;
    ASSERT_EQ(
        EVP_PKEY_get_octet_string_param(a->get(), "encoded-pub-key", point, sizeof point, &len), 1);
    ASSERT_EQ(point[0], 0x04);
    auto imported = ec_public_key_from_xy(nid, ByteView(point + 1, len - 1));
    ASSERT_TRUE(imported.ok()) << imported.error().describe();
    EXPECT_EQ(EVP_PKEY_eq(imported->get(), a->get()), 1);
  }
  auto other = ec_generate(NID_secp521r1);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, "crypto.keygen");
}

}  // namespace
}  // namespace confpod::crypto
