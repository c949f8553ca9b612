#include "attest/tdx/quote.h"

#include <gtest/gtest.h>

#include "attest/tdx/tdx_test_util.h"

namespace confpod::tdx {
namespace {

using testing::fixture;
using testing::hex;

const std::string kZero48(96, '0');

TEST(TdxQuote, ParsesDcapQvlV4) {
  const Bytes data = fixture("dcapqvl_quote_v4.dat");
  ASSERT_EQ(data.size(), 5006u);
  auto q = parse_quote(data);
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(q->header.version, 4);
  EXPECT_EQ(q->header.att_key_type, 2);
  EXPECT_EQ(q->header.tee_type, 0x81u);
  EXPECT_EQ(hex(q->header.qe_vendor_id), "939a7233f79c4ca9940a0db3957f0607");
  EXPECT_EQ(hex(q->header.user_data), "889b7d6ff9df2405b240a830e73faf3d00000000");
  EXPECT_EQ(q->body_type, kBodyTypeTd10);
  EXPECT_FALSE(q->body.td15);
  EXPECT_EQ(q->signature_data_len, 4300u);
  EXPECT_EQ(q->size, 4936u);  // 70 bytes of padding ignored
  EXPECT_EQ(q->signed_region.size(), 632u);
  EXPECT_TRUE(std::equal(q->signed_region.begin(), q->signed_region.end(), data.begin()));
  EXPECT_EQ(q->cert_data_type, 6);
  EXPECT_EQ(q->pck_cert_data_type, 5);
  Bytes auth(32);
  for (std::size_t i = 0; i < 32; ++i) auth[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(q->qe_auth_data, auth);
  EXPECT_EQ(q->qe_report.isv_svn, 6);
  EXPECT_EQ(q->qe_report_raw.size(), 384u);

  const TdReport& td = q->body;
  EXPECT_EQ(hex(td.tee_tcb_svn), "06010300000000000000000000000000");
  EXPECT_EQ(hex(td.mr_seam),
            "5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f16"
            "0b7cad34207b00c1");
  EXPECT_EQ(hex(td.mr_signer_seam), kZero48);
  EXPECT_EQ(hex(td.seam_attributes), "0000000000000000");
  EXPECT_EQ(hex(td.td_attributes), "0000001000000000");
  EXPECT_FALSE(td.debug());
  EXPECT_EQ(hex(td.xfam), "e702060000000000");
  EXPECT_EQ(hex(td.mr_td),
            "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27"
            "428b2538873118b7");
  EXPECT_EQ(hex(td.mr_config_id), kZero48);
  EXPECT_EQ(hex(td.mr_owner), kZero48);
  EXPECT_EQ(hex(td.mr_owner_config), kZero48);
  EXPECT_EQ(hex(td.rtmr[0]),
            "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6"
            "a540cf994b9bc9c0");
  EXPECT_EQ(hex(td.rtmr[1]),
            "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b"
            "3093d54e579e9378");
  EXPECT_EQ(hex(td.rtmr[2]),
            "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d73307"
            "33642e01d48c3132");
  EXPECT_EQ(hex(td.rtmr[3]), kZero48);
  EXPECT_EQ(hex(td.report_data),
            "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c"
            "163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20");
  EXPECT_NE(q->pck_cert_chain_pem.find("-----BEGIN CERTIFICATE-----"), std::string::npos);
  EXPECT_NE(q->pck_cert_chain_pem.back(), '\0');  // trailing NUL stripped
}

TEST(TdxQuote, ParsesGoTdxV5BodyType3) {
  auto q = parse_quote(fixture("gotdx_quote_v5.dat"));
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(q->header.version, 5);
  EXPECT_EQ(q->body_type, kBodyTypeTd15);
  EXPECT_TRUE(q->body.td15);
  EXPECT_EQ(q->signed_region.size(), 702u);  // header 48 + type 2 + size 4 + body 648
  EXPECT_EQ(q->signature_data_len, 4300u);
  EXPECT_EQ(q->qe_report.isv_svn, 7);
  const TdReport& td = q->body;
  EXPECT_EQ(hex(td.tee_tcb_svn), "0b010400000000000000000000000000");
  EXPECT_EQ(hex(td.tee_tcb_svn2), "0d010400000000000000000000000000");
  EXPECT_EQ(hex(td.mr_servicetd), kZero48);
  EXPECT_EQ(hex(td.mr_seam),
            "7bf063280e94fb051f5dd7b1fc59ce9aac42bb961df8d44b709c9b0ff87a7b4df648657ba6d11895"
            "89feab1d5a3c9a9d");
  EXPECT_EQ(hex(td.td_attributes), "0000001000000000");
  EXPECT_EQ(hex(td.xfam), "e702060000000000");
  EXPECT_EQ(hex(td.mr_td),
            "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747d"
            "da8f750c3bc8f876");
  EXPECT_EQ(hex(td.mr_config_id), kZero48);
  EXPECT_EQ(hex(td.mr_owner), kZero48);
  EXPECT_EQ(hex(td.mr_owner_config), kZero48);
  EXPECT_EQ(hex(td.rtmr[0]),
            "5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bda"
            "e8cbc614cec24619");
  EXPECT_EQ(hex(td.rtmr[1]),
            "463acaace1b6e97c76e92e41fe312aa66f3fd4dad60ec7acf169859db0343e3d1e591646795cdc80"
            "fbc0ca5f7041d253");
  EXPECT_EQ(hex(td.rtmr[2]),
            "6369b9c9a3b791ebcbdc5a0bb9536cfb57f50df2b393b33c8b29616d3568baa61f4b59dc6092e31e"
            "a8764bcbdfc69f20");
  EXPECT_EQ(hex(td.rtmr[3]), kZero48);
  EXPECT_EQ(hex(td.report_data),
            "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4"
            "933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a");
}

TEST(TdxQuote, ParsesOutdatedV5) {
  auto q = parse_quote(fixture("dcapqvl_quote_v5_outdated.dat"));
  ASSERT_TRUE(q.ok()) << q.error().describe();
  const TdReport& td = q->body;
  EXPECT_EQ(hex(td.tee_tcb_svn), "07010300000000000000000000000000");
  EXPECT_EQ(hex(td.tee_tcb_svn2), "0d010300000000000000000000000000");
  EXPECT_EQ(hex(td.xfam), "e718060000000000");
  EXPECT_EQ(hex(td.mr_td),
            "273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1ae451d382d5a9b1b"
            "4c0ed0e5ae9a3dbd");
  for (const auto& r : td.rtmr) EXPECT_EQ(hex(r), kZero48);
  EXPECT_EQ(
      hex(td.report_data),
      "d2142b643598eb5fae2bc8529dd79a558b29f868ccbb6531cb28dab9dce47728" + std::string(64, '0'));
}

TEST(TdxQuote, IgnoresTrailingJunkAfterSignatureData) {
  const Bytes data = fixture("gotdx_quote_v4_spr_e4.dat");
  ASSERT_EQ(data.size(), 4974u);
  auto q = parse_quote(data);
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(q->size, 4935u);
  EXPECT_EQ(hex(q->body.tee_tcb_svn), "03000400000000000000000000000000");
  EXPECT_EQ(hex(q->body.td_attributes), "0000004000000000");
  EXPECT_EQ(hex(q->body.xfam), "e71a060000000000");
  EXPECT_EQ(hex(q->qe_report.mr_signer),
            "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
  EXPECT_EQ(q->qe_report.isv_prod_id, 2);
  EXPECT_EQ(q->qe_report.isv_svn, 4);
  EXPECT_EQ(hex(q->body.mr_td),
            "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc"
            "10d5e119d7215cbb");
  // Changing the junk changes nothing.
  Bytes other = data;
  for (std::size_t i = 4935; i < other.size(); ++i) other[i] ^= 0x5A;
  auto q2 = parse_quote(other);
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q2->signed_region, q->signed_region);
  EXPECT_EQ(q2->pck_cert_chain_pem, q->pck_cert_chain_pem);
}

TEST(TdxQuote, ParsesGcpQuoteWithZeroPaddingAndZeroAuthData) {
  auto q = parse_quote(fixture("gcp_cos113_quote_v4.dat"));
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(q->size, 4935u);
  EXPECT_EQ(q->qe_auth_data, Bytes(32, 0));
  EXPECT_TRUE(is_all_zero(q->header.user_data));
  EXPECT_EQ(q->qe_report.isv_svn, 6);
  EXPECT_EQ(hex(q->body.tee_tcb_svn), "04010700000000000000000000000000");
  EXPECT_EQ(hex(q->body.mr_td),
            "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb273"
            "5396c1d04231f94a");
  EXPECT_EQ(hex(q->body.rtmr[0]),
            "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e"
            "1edece752afd17f6");
  EXPECT_EQ(hex(q->body.report_data), std::string(128, '0'));
  EXPECT_NE(q->pck_cert_chain_pem.back(), '\0');  // chain had no NUL to begin with
}

TEST(TdxQuote, DebugTdAttributes) {
  auto q = parse_quote(fixture("trustee_quote_v4_debug.dat"));
  ASSERT_TRUE(q.ok()) << q.error().describe();
  EXPECT_EQ(hex(q->body.td_attributes), "0100001000000000");
  EXPECT_TRUE(q->body.debug());
  EXPECT_EQ(hex(q->body.rtmr[0]),
            "e940da7c2712d2790e2961e00484f4fa8e6f9eed71361655ae22699476b14f9e63867eb41edd4b48"
            "0fef0c59f496b288");
}

TEST(TdxQuote, EveryTruncationIsRejectedWithoutCrash) {
  for (const char* name : {"dcapqvl_quote_v4.dat", "gotdx_quote_v5.dat"}) {
    const Bytes data = fixture(name);
    auto full = parse_quote(data);
    ASSERT_TRUE(full.ok());
    for (std::size_t len = 0; len < full->size; ++len) {
      auto q = parse_quote(ByteView(data).first(len));
      ASSERT_FALSE(q.ok()) << name << " length " << len;
      EXPECT_EQ(q.error().code, "tdx.quote.truncated") << name << " length " << len;
    }
  }
}

TEST(TdxQuote, TruncationNamesTheField) {
  const Bytes data = fixture("dcapqvl_quote_v4.dat");
  auto q = parse_quote(ByteView(data).first(600));
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("body"), std::string::npos) << q.error().message;
  q = parse_quote(ByteView(data).first(634));
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("signature_data_len"), std::string::npos);
}

Bytes with(Bytes data, std::size_t offset, std::uint8_t value) {
  data[offset] = value;
  return data;
}

TEST(TdxQuote, HeaderFieldsAreChecked) {
  const Bytes data = fixture("gotdx_quote_v4_spr_e4.dat");
  // go-tdx-guest negative: byte 0 -> 3 is an unsupported (SGX) quote version.
  auto q = parse_quote(with(data, 0x00, 3));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.version");
  q = parse_quote(with(data, 0x02, 3));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.att_key_type");
  q = parse_quote(with(data, 0x04, 0x00));  // SGX
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.tee_type");
}

TEST(TdxQuote, SignatureDataLengthIsHonoured) {
  const Bytes data = fixture("gotdx_quote_v4_spr_e4.dat");
  // go-tdx-guest negative: signature_data_len 0x10cb -> 0x1010; certification data (0x1045)
  // no longer fits.
  auto q = parse_quote(with(data, 0x278, 0x10));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.truncated");
  EXPECT_NE(q.error().message.find("certification_data"), std::string::npos) << q.error().message;
  // Longer than the structure it holds: the padding would be inside the signature data.
  q = parse_quote(with(data, 0x278, 0xcc));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.length");
}

TEST(TdxQuote, CertificationDataTypesAreChecked) {
  const Bytes data = fixture("dcapqvl_quote_v4.dat");
  const std::size_t outer_type = 636 + 128;
  auto q = parse_quote(with(data, outer_type, 5));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.cert_data_type");
  const std::size_t auth_len = 636 + 134 + 384 + 64;  // u16 LE, 32
  const std::size_t inner_type = auth_len + 2 + 32;
  q = parse_quote(with(data, inner_type, 3));
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.cert_data_type");
}

TEST(TdxQuote, V5BodyTypeAndSizeAreChecked) {
  const Bytes data = fixture("gotdx_quote_v5.dat");
  auto q = parse_quote(with(data, 48, 1));  // SGX enclave report body
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.body_type");
  q = parse_quote(with(data, 50, 0x48));  // size 584 with type 3
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().code, "tdx.quote.body_type");
}

TEST(TdxQuote, EmptyAndTinyInputs) {
  EXPECT_EQ(parse_quote({}).error().code, "tdx.quote.truncated");
  const Bytes one{4};
  EXPECT_EQ(parse_quote(one).error().code, "tdx.quote.truncated");
}

}  // namespace
}  // namespace confpod::tdx
