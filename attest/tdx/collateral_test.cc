#include "attest/tdx/collateral.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "attest/crypto/crypto.h"
#include "attest/tdx/roots.h"
#include "attest/tdx/tdx_test_util.h"

namespace confpod::tdx {
namespace {

using testing::at;
using testing::fixture;
using testing::fixture_text;
using testing::kPcsAt;
using testing::kV4At;
using testing::kV5At;

TEST(TdxRoots, PinnedRootIsIntelSgxRootCa) {
  auto root = intel_sgx_root_ca();
  ASSERT_TRUE(root);
  unsigned char* der = nullptr;
  const int len = i2d_X509(root.get(), &der);
  ASSERT_GT(len, 0);
  const Bytes fingerprint = crypto::sha256(ByteView(der, static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  EXPECT_EQ(to_hex(fingerprint),
            "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
  EXPECT_EQ(intel_sgx_root_ca_pem(), fixture_text("intel_sgx_root_ca.pem"));
}

TEST(TdxCollateral, ParsesDcapQvlJson) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->tcb_info_signature.size(), 64u);
  EXPECT_EQ(c->qe_identity_signature.size(), 64u);
  EXPECT_EQ(c->tcb_info.rfind("{\"id\":\"TDX\"", 0), 0u);
  EXPECT_EQ(c->pck_crl[0], 0x30);  // DER SEQUENCE
  EXPECT_EQ(c->root_ca_crl[0], 0x30);
}

TEST(TdxCollateral, JsonRoundTrips) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v5.json"));
  ASSERT_TRUE(c.ok());
  auto back = parse_collateral_json(collateral_to_json(*c));
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->tcb_info, c->tcb_info);
  EXPECT_EQ(back->tcb_info_signature, c->tcb_info_signature);
  EXPECT_EQ(back->qe_identity, c->qe_identity);
  EXPECT_EQ(back->pck_crl, c->pck_crl);
  EXPECT_EQ(back->root_ca_crl, c->root_ca_crl);
  EXPECT_EQ(back->pck_crl_issuer_chain, c->pck_crl_issuer_chain);
}

TEST(TdxCollateral, MalformedJsonIsAFormatError) {
  for (const char* text : {"", "{\"tcb_info\": 5", "[]", "{\"tcb_info\": 5}", "null"}) {
    auto c = parse_collateral_json(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.error().code, "tdx.collateral.format") << text;
  }
  // A signature that is not 64 bytes of hex.
  std::string text = fixture_text("dcapqvl_collateral_v4.json");
  auto doc = parse_collateral_json(text);
  ASSERT_TRUE(doc.ok());
  Collateral bad = *doc;
  bad.tcb_info_signature.pop_back();
  auto c = parse_collateral_json(collateral_to_json(bad));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "tdx.collateral.format");
}

TEST(TdxCollateral, PcsResponsesKeepTheServedBytes) {
  auto c = testing::pcs_collateral();
  ASSERT_TRUE(c.ok()) << c.error().describe();
  const std::string response = fixture_text("gotdx_pcs_tcbinfo_50806f000000.json");
  // The raw object, byte for byte: it starts after "tcbInfo": and ends before ,"signature".
  EXPECT_EQ(c->tcb_info.front(), '{');
  EXPECT_EQ(c->tcb_info.back(), '}');
  EXPECT_NE(response.find(c->tcb_info), std::string::npos);
  EXPECT_EQ(response.find(c->tcb_info), response.find("\"tcbInfo\":") + 10);
  EXPECT_EQ(c->qe_identity.rfind("{\"id\":\"TD_QE\"", 0), 0u);
  EXPECT_EQ(c->qe_identity_issuer_chain, c->tcb_info_issuer_chain);
}

TEST(TdxCollateral, PcsResponseWithoutTheObjectIsRejected) {
  auto c = collateral_from_pcs("{\"signature\":\"00\"}", fixture_text("gotdx_pcs_qeidentity.json"),
                               "", {}, "", {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "tdx.collateral.format");
}

TEST(TdxCollateral, ParsesTcbInfoV3WithModuleIdentities) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v5.json"));
  ASSERT_TRUE(c.ok());
  auto info = parse_tcb_info(c->tcb_info);
  ASSERT_TRUE(info.ok()) << info.error().describe();
  EXPECT_EQ(info->id, "TDX");
  EXPECT_EQ(info->version, 3);
  EXPECT_EQ(to_hex(info->fmspc), "90c06f000000");
  EXPECT_EQ(info->issue_date, at("2026-02-18T10:58:51Z"));
  EXPECT_EQ(info->next_update, at("2026-03-20T10:58:51Z"));
  ASSERT_EQ(info->tdx_module_identities.size(), 2u);
  EXPECT_EQ(info->tdx_module_identities[1].id, "TDX_01");
  ASSERT_EQ(info->tdx_module_identities[1].tcb_levels.size(), 3u);
  EXPECT_EQ(info->tdx_module_identities[1].tcb_levels[0].isvsvn, 6);
  EXPECT_EQ(info->tdx_module_identities[1].tcb_levels[1].advisory_ids,
            (std::vector<std::string>{"INTEL-SA-01036", "INTEL-SA-01099"}));
  ASSERT_FALSE(info->tcb_levels.empty());
  EXPECT_EQ(info->tcb_levels[0].tcb_status, "UpToDate");
  EXPECT_EQ(info->tcb_levels[0].pce_svn, 13);
  EXPECT_EQ(info->tcb_levels[0].sgx_components[7], 5);  // SEAMLDR ACM
  for (std::size_t i = 1; i < info->tcb_levels.size(); ++i)
    EXPECT_GE(info->tcb_levels[i - 1].sgx_components, info->tcb_levels[i].sgx_components);

  auto qe = parse_qe_identity(c->qe_identity);
  ASSERT_TRUE(qe.ok()) << qe.error().describe();
  EXPECT_EQ(qe->id, "TD_QE");
  EXPECT_EQ(qe->version, 2);
  EXPECT_EQ(qe->isvprodid, 2);
  EXPECT_EQ(qe->miscselect_mask, 0xFFFFFFFFu);
  EXPECT_EQ(to_hex(qe->mrsigner),
            "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
  ASSERT_EQ(qe->tcb_levels.size(), 1u);
  EXPECT_EQ(qe->tcb_levels[0].isvsvn, 4);
}

TEST(TdxCollateral, UnknownTcbStatusIsRejected) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v5.json"));
  ASSERT_TRUE(c.ok());
  std::string text = c->tcb_info;
  const auto pos = text.find("\"UpToDate\"");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 10, "\"Fine\"");
  auto info = parse_tcb_info(text);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code, "tdx.collateral.tcb_info");
}

TEST(TdxCollateralVerify, DcapQvlV4VerifiesInsideItsWindow) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  auto v = verify_collateral(*c, root.get(), kV4At);
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->expires, at("2025-07-19T10:00:35Z"));  // PCK CRL nextUpdate
  EXPECT_EQ(v->valid_from, at("2025-06-19T10:32:27Z"));
  EXPECT_EQ(to_hex(v->tcb_info.fmspc), "b0c06f000000");
  EXPECT_NE(crypto::subject_name(v->pck_crl_issuer.get()).find("PCK Platform CA"),
            std::string::npos);
}

TEST(TdxCollateralVerify, ExpiredCollateralFailsClosed) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  auto v = verify_collateral(*c, root.get(), at("2025-07-19T10:00:36Z"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.expired");
  EXPECT_NE(v.error().message.find("pck_crl"), std::string::npos) << v.error().message;
  EXPECT_NE(v.error().message.find("2025-07-19T10:00:35Z"), std::string::npos);
  // The last valid second still verifies.
  EXPECT_TRUE(verify_collateral(*c, root.get(), at("2025-07-19T10:00:35Z")).ok());
  // Before the window.
  v = verify_collateral(*c, root.get(), at("2025-06-19T10:32:26Z"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.not_yet_valid");
}

TEST(TdxCollateralVerify, DcapQvlV5AndPcsCollateralVerify) {
  auto root = intel_sgx_root_ca();
  auto v5 = parse_collateral_json(fixture_text("dcapqvl_collateral_v5.json"));
  ASSERT_TRUE(v5.ok());
  auto r = verify_collateral(*v5, root.get(), kV5At);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  auto pcs = testing::pcs_collateral();
  ASSERT_TRUE(pcs.ok());
  r = verify_collateral(*pcs, root.get(), kPcsAt);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->expires, at("2023-07-08T07:24:59Z"));  // QE identity nextUpdate
  EXPECT_EQ(r->valid_from, at("2023-06-18T08:42:58Z"));
  // At 2053 everything is long expired.
  r = verify_collateral(*pcs, root.get(), at("2053-07-01T01:00:00Z"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tdx.collateral.expired");
}

TEST(TdxCollateralVerify, TamperedTcbInfoFailsSignature) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  Collateral bad = *c;
  const auto pos = bad.tcb_info.find("\"UpToDate\"");
  ASSERT_NE(pos, std::string::npos);
  bad.tcb_info.replace(pos, 10, "\"OutOfDate\"");  // still valid JSON, different bytes
  auto v = verify_collateral(bad, root.get(), kV4At);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.signature");
  EXPECT_NE(v.error().message.find("tcb_info"), std::string::npos);

  bad = *c;
  bad.qe_identity_signature[10] ^= 1;
  v = verify_collateral(bad, root.get(), kV4At);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.signature");
  EXPECT_NE(v.error().message.find("qe_identity"), std::string::npos);
}

TEST(TdxCollateralVerify, CrlSignaturesAreChecked) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  Collateral bad = *c;
  bad.pck_crl[bad.pck_crl.size() - 5] ^= 1;  // inside the signature
  auto v = verify_collateral(bad, root.get(), kV4At);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.crl");
  bad = *c;
  bad.root_ca_crl[bad.root_ca_crl.size() - 5] ^= 1;
  v = verify_collateral(bad, root.get(), kV4At);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.crl");
  // Swapped: the root CRL where the PCK CRL belongs.
  bad = *c;
  std::swap(bad.pck_crl, bad.root_ca_crl);
  v = verify_collateral(bad, root.get(), kV4At);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.crl");
}

TEST(TdxCollateralVerify, WrongRootIsRejected) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  // Any other CA: the TCB signing cert of the chain posing as the root.
  auto chain = crypto::parse_pem_certificates(c->tcb_info_issuer_chain);
  ASSERT_TRUE(chain.ok());
  auto v = verify_collateral(*c, (*chain)[0].get(), kV4At);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(v.error().code == "tdx.collateral.crl" || v.error().code == "tdx.collateral.chain")
      << v.error().describe();
  EXPECT_FALSE(verify_collateral(*c, nullptr, kV4At).ok());
}

TEST(TdxCollateralVerify, ChainWithoutTheRootStillChainsToThePinnedRoot) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  auto root = intel_sgx_root_ca();
  Collateral leaf_only = *c;
  const auto end = leaf_only.tcb_info_issuer_chain.find("-----END CERTIFICATE-----");
  leaf_only.tcb_info_issuer_chain.resize(end + 25);
  EXPECT_TRUE(verify_collateral(leaf_only, root.get(), kV4At).ok());
  // A chain that holds only the root pins nothing below it.
  Collateral root_only = *c;
  root_only.tcb_info_issuer_chain = std::string(intel_sgx_root_ca_pem());
  auto v = verify_collateral(root_only, root.get(), kV4At);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "tdx.collateral.chain");
}

TEST(TdxCollateralVerify, SgxTcbInfoIsNotTdx) {
  auto c = parse_collateral_json(fixture_text("dcapqvl_collateral_v4.json"));
  ASSERT_TRUE(c.ok());
  // Content checks happen on the signed bytes, so an edited id fails the signature first;
  // the parser itself still reports the id it saw.
  std::string text = c->tcb_info;
  text.replace(text.find("\"TDX\""), 5, "\"SGX\"");
  auto info = parse_tcb_info(text);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->id, "SGX");
  Collateral bad = *c;
  bad.tcb_info = text;
  auto root = intel_sgx_root_ca();
  EXPECT_EQ(verify_collateral(bad, root.get(), kV4At).error().code, "tdx.collateral.signature");
}

}  // namespace
}  // namespace confpod::tdx
