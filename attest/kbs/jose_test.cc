#include "attest/kbs/jose.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include "attest/crypto/crypto.h"
#include "attest/kbs/kbs_test_util.h"

namespace confpod::kbs {
namespace {

TEST(Base64Url, RoundTripsAndRejectsOtherAlphabets) {
  Bytes data = {0xfb, 0xff, 0xfe, 0x01};
  EXPECT_EQ(base64url(data), "-__-AQ");
  auto back = from_base64url("-__-AQ");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  EXPECT_EQ(from_base64url("+//+AQ").error().code, "kbs.base64url");
  EXPECT_EQ(from_base64url("-__-AQ==").error().code, "kbs.base64url");
  EXPECT_EQ(from_base64url("-__-A").error().code, "kbs.base64url");
  EXPECT_EQ(from_base64url("-__-AR").error().code, "kbs.base64url");  // non-zero pad bits
  EXPECT_EQ(from_base64url("ab c").error().code, "kbs.base64url");
}

TEST(TeeKey, AcceptsTheClientsKeys) {
  auto ec = testing::make_ec_tee_key();
  auto k = parse_tee_key(ec.jwk);
  ASSERT_TRUE(k.ok()) << k.error().describe();
  EXPECT_EQ(k->kind, TeeKey::Kind::kEc);
  EXPECT_EQ(k->to_json(), ec.jwk);

  auto rsa = testing::make_rsa_tee_key();
  auto r = parse_tee_key(rsa.jwk);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->kind, TeeKey::Kind::kRsa);
  EXPECT_EQ(r->to_json(), rsa.jwk);
}

TEST(TeeKey, ExtraMembersAreDroppedFromTheCanonicalForm) {
  auto ec = testing::make_ec_tee_key();
  auto with_kid = ec.jwk;
  with_kid["kid"] = "ignored";
  auto k = parse_tee_key(with_kid);
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->to_json(), ec.jwk);
}

TEST(TeeKey, RefusesWeakOrUnknownAlgorithmsAndBadKeys) {
  auto rsa = testing::make_rsa_tee_key();
  auto j = rsa.jwk;
  j["alg"] = "RSA1_5";
  EXPECT_EQ(parse_tee_key(j).error().code, "kbs.tee_pubkey.alg");
  j = rsa.jwk;
  j["n"] = base64url(Bytes(128, 0xC3));  // 1024 bits
  EXPECT_EQ(parse_tee_key(j).error().code, "kbs.tee_pubkey");
  j = rsa.jwk;
  j["e"] = base64url(Bytes{0x01, 0x00});  // even
  EXPECT_EQ(parse_tee_key(j).error().code, "kbs.tee_pubkey");

  auto ec = testing::make_ec_tee_key();
  j = ec.jwk;
  j["crv"] = "P-384";
  EXPECT_EQ(parse_tee_key(j).error().code, "kbs.tee_pubkey.alg");
  j = ec.jwk;
  j["x"] = base64url(Bytes(32, 0x01));  // not on the curve with this y
  EXPECT_EQ(parse_tee_key(j).error().code, "kbs.tee_pubkey");
  j = ec.jwk;
  j["y"] = 5;
  EXPECT_EQ(parse_tee_key(j).error().code, "kbs.tee_pubkey");
  j = ec.jwk;
  j["kty"] = "OKP";
  EXPECT_EQ(parse_tee_key(j).error().code, "kbs.tee_pubkey.alg");
  EXPECT_EQ(parse_tee_key(nlohmann::json::array()).error().code, "kbs.tee_pubkey");
}

TEST(EcdhKek, BothEndsDeriveTheSameKeyAndOnlyOnP256) {
  auto a = crypto::ec_generate(NID_X9_62_prime256v1);
  auto b = crypto::ec_generate(NID_X9_62_prime256v1);
  ASSERT_TRUE(a.ok() && b.ok());
  auto ab = ecdh_es_a256kw_kek(a->get(), b->get());
  auto ba = ecdh_es_a256kw_kek(b->get(), a->get());
  ASSERT_TRUE(ab.ok()) << ab.error().describe();
  ASSERT_TRUE(ba.ok());
  EXPECT_EQ(*ab, *ba);
  EXPECT_EQ(ab->size(), 32u);
  // A peer on another curve with the same field size (secp256k1, whose shared secret would be
  // 32 bytes too) is refused by name, though OpenSSL's own peer validation is off.
  crypto::EvpPkeyPtr k1(EVP_EC_gen("secp256k1"));
  ASSERT_TRUE(k1);
  auto mixed = ecdh_es_a256kw_kek(a->get(), k1.get());
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.error().code, "kbs.jwe");
  EXPECT_NE(mixed.error().message.find("P-256"), std::string::npos) << mixed.error().message;
  EXPECT_FALSE(ecdh_es_a256kw_kek(k1.get(), a->get()).ok());
}

TEST(TokenKey, SignsAndVerifiesAndRefusesTampering) {
  auto key = TokenKey::generate();
  ASSERT_TRUE(key.ok());
  auto jwt = key->sign_jwt({{"iat", 1000}, {"exp", 2000}, {"pod", "web"}});
  ASSERT_TRUE(jwt.ok());
  auto claims = key->verify_jwt(*jwt, 1500);
  ASSERT_TRUE(claims.ok()) << claims.error().describe();
  EXPECT_EQ((*claims)["pod"], "web");
  EXPECT_EQ(key->verify_jwt(*jwt, 2000).error().code, "kbs.token.expired");
  EXPECT_EQ(key->verify_jwt(*jwt, 900).error().code, "kbs.token.expired");

  std::string tampered = *jwt;
  auto dot = tampered.find('.');
  auto forged = key->sign_jwt({{"iat", 1000}, {"exp", 2000}, {"pod", "db"}});
  ASSERT_TRUE(forged.ok());
  // The forged payload with the original signature.
  std::string mixed = forged->substr(0, forged->rfind('.')) + jwt->substr(jwt->rfind('.'));
  EXPECT_EQ(key->verify_jwt(mixed, 1500).error().code, "kbs.token.signature");
  EXPECT_EQ(key->verify_jwt(tampered.substr(0, dot), 1500).error().code, "kbs.token.format");

  auto other = TokenKey::generate();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->verify_jwt(*jwt, 1500).error().code, "kbs.token.signature");
}

TEST(TokenKey, PemRoundTripKeepsTheKeyId) {
  auto key = TokenKey::generate();
  ASSERT_TRUE(key.ok());
  auto again = TokenKey::from_pem(key->private_pem());
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->kid(), key->kid());
  EXPECT_EQ(again->public_jwk(), key->public_jwk());
  auto rsa = testing::make_rsa_tee_key();
  EXPECT_EQ(TokenKey::from_pem(rsa.private_pem).error().code, "kbs.token_key");
  EXPECT_EQ(TokenKey::from_pem("garbage").error().code, "kbs.token_key");

  // An encrypted key is refused without prompting for a passphrase.
  auto ec = testing::make_ec_tee_key();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  static char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), ec.key.get(), EVP_aes_256_cbc(),
                                     reinterpret_cast<unsigned char*>(pass), 6, nullptr, nullptr),
            1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  EXPECT_EQ(TokenKey::from_pem(std::string(data, static_cast<std::size_t>(len))).error().code,
            "kbs.token_key");
}

TEST(TokenKey, TokenVerifiesWithOpenSslFromThePublishedJwk) {
  auto key = TokenKey::generate();
  ASSERT_TRUE(key.ok());
  auto jwt = key->sign_jwt({{"iat", 1}, {"exp", 2}});
  ASSERT_TRUE(jwt.ok());
  auto jwk = key->jwks()["keys"][0];
  EXPECT_EQ(jwk["alg"], "ES256");
  auto x = from_base64url(jwk["x"].get<std::string>());
  auto y = from_base64url(jwk["y"].get<std::string>());
  ASSERT_TRUE(x.ok() && y.ok());
  Bytes xy = *x;
  xy.insert(xy.end(), y->begin(), y->end());
  auto pub = crypto::ec_public_key_from_xy(NID_X9_62_prime256v1, xy);
  ASSERT_TRUE(pub.ok());
  auto last = jwt->rfind('.');
  auto sig = from_base64url(jwt->substr(last + 1));
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(crypto::verify_ecdsa_concat(pub->get(), crypto::Hash::kSha256,
                                          as_bytes(std::string_view(*jwt).substr(0, last)), *sig)
                  .ok());
}

}  // namespace
}  // namespace confpod::kbs
