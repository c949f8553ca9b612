// Certificate chains to AMD's pinned roots, report signatures and the report/VCEK binding, on
// the real fixtures; every tampering asserts the code of the check that must catch it.
#include "attest/snp/verify.h"

#include <gtest/gtest.h>

#include <functional>

#include "attest/snp/appraisal.h"
#include "attest/snp/roots.h"
#include "attest/snp/snp_test_util.h"

namespace confpod::snp {
namespace {

using testutil::bundle;
using testutil::cert;
using testutil::code_of;
using testutil::gosev_report_bytes;
using testutil::hex;
using testutil::message_of;
using testutil::milan_report_bytes;
using testutil::parse_ok;
using testutil::put_le32;
using testutil::verification_time;

VerifiedChain milan_chain() {
  auto vcek = cert("virtee_vcek_milan.der");
  auto chain = verify_chain(vcek.get(), nullptr, nullptr, std::nullopt, verification_time());
  EXPECT_TRUE(chain.ok()) << chain.error().describe();
  return chain.ok() ? std::move(chain).value() : VerifiedChain{};
}

VerifiedChain gosev_chain() {
  auto vcek = cert("gosev_vcek.der");
  auto chain = verify_chain(vcek.get(), nullptr, nullptr, std::nullopt, verification_time());
  EXPECT_TRUE(chain.ok()) << chain.error().describe();
  return chain.ok() ? std::move(chain).value() : VerifiedChain{};
}

// verify_report on the Milan report after `mutate` changed its bytes.
std::string verify_tampered_milan(const std::function<void(Bytes&)>& mutate) {
  Bytes bytes = milan_report_bytes();
  mutate(bytes);
  VerifiedChain chain = milan_chain();
  auto report = parse_report(bytes, chain.product);
  if (!report.ok()) return report.error().code;
  return code_of(verify_report(*report, chain));
}

// ---- valid evidence ---------------------------------------------------------------------

TEST(SnpVerify, MilanReportWithCompiledInRoots) {
  VerifiedChain chain = milan_chain();
  EXPECT_EQ(chain.product, Product::kMilan);
  EXPECT_EQ(chain.key_kind, SigningKey::kVcek);
  EXPECT_EQ(chain.vek_tcb, (TcbVersion{3, 0, 8, 0x73, std::nullopt}));
  ASSERT_EQ(chain.hwid.size(), 64u);
  EXPECT_EQ(to_hex(chain.hwid).substr(0, 32), "d49554ec717f4e5b0fe6b143bcf0405b");
  EXPECT_TRUE(crypto::same_certificate(chain.ark.get(), builtin_ark(Product::kMilan).get()));
  EXPECT_TRUE(
      crypto::same_certificate(chain.intermediate.get(), builtin_ask(Product::kMilan).get()));
  EXPECT_EQ(chain.verified_at, verification_time());

  Report report = parse_ok(milan_report_bytes());
  EXPECT_EQ(code_of(verify_report(report, chain)), "ok");
  auto verified = parse_and_verify(milan_report_bytes(), chain);
  ASSERT_TRUE(verified.ok()) << verified.error().describe();
  EXPECT_EQ(verified->product, Product::kMilan);
}

TEST(SnpVerify, MilanWithExplicitAskArkAndProduct) {
  auto vcek = cert("virtee_vcek_milan.der");
  auto ask = cert("ask_milan.pem");
  auto ark = cert("ark_milan.pem");
  auto chain = verify_chain(vcek.get(), ask.get(), ark.get(), Product::kMilan, verification_time());
  ASSERT_TRUE(chain.ok()) << chain.error().describe();
  EXPECT_EQ(code_of(verify_report(parse_ok(milan_report_bytes()), *chain)), "ok");
}

TEST(SnpVerify, KdsCertChainBundlesAreAskThenArk) {
  auto milan = bundle("virtee_cert_chain_milan.pem");
  ASSERT_EQ(milan.size(), 2u);
  EXPECT_TRUE(crypto::same_certificate(milan[0].get(), builtin_ask(Product::kMilan).get()));
  EXPECT_TRUE(crypto::same_certificate(milan[1].get(), builtin_ark(Product::kMilan).get()));
  auto vcek = cert("virtee_vcek_milan.der");
  auto chain =
      verify_chain(vcek.get(), milan[0].get(), milan[1].get(), std::nullopt, verification_time());
  ASSERT_TRUE(chain.ok()) << chain.error().describe();
  EXPECT_EQ(code_of(verify_report(parse_ok(milan_report_bytes()), *chain)), "ok");

  auto turin = bundle("virtee_cert_chain_turin.pem");
  ASSERT_EQ(turin.size(), 2u);
  EXPECT_TRUE(crypto::same_certificate(turin[0].get(), builtin_ask(Product::kTurin).get()));
  EXPECT_TRUE(crypto::same_certificate(turin[1].get(), builtin_ark(Product::kTurin).get()));
}

TEST(SnpVerify, GosevReportSignatureValidButDebugGuestRejectedByDefault) {
  auto vcek = crypto::parse_certificate(testing::read_fixture("snp/gosev_vcek.der"));
  ASSERT_TRUE(vcek.ok()) << "gosev_vcek.der must load: " << vcek.error().describe();
  VerifiedChain chain = gosev_chain();
  EXPECT_EQ(chain.vek_tcb, (TcbVersion{2, 0, 5, 0x44, std::nullopt}));
  EXPECT_EQ(to_hex(chain.hwid).substr(0, 32), "3ac3fe21e13fb0990eb28a802e3fb6a2");
  Report report = parse_ok(gosev_report_bytes());
  EXPECT_EQ(code_of(verify_report(report, chain)), "ok");
  EXPECT_EQ(code_of(appraise(report, Policy{})), "snp.policy.debug");
  Policy allow_debug;
  allow_debug.allow_debug = true;
  EXPECT_EQ(code_of(appraise(report, allow_debug)), "ok");
}

TEST(SnpVerify, VcekValidityDates) {
  auto milan = cert("virtee_vcek_milan.der");
  EXPECT_EQ(format_rfc3339(crypto::not_before(milan.get())), "2023-04-03T19:23:43Z");
  EXPECT_EQ(format_rfc3339(crypto::not_after(milan.get())), "2030-04-03T19:23:43Z");
  auto gosev = cert("gosev_vcek.der");
  EXPECT_EQ(format_rfc3339(crypto::not_before(gosev.get())), "2022-09-24T00:55:28Z");
  EXPECT_EQ(format_rfc3339(crypto::not_after(gosev.get())), "2029-09-24T00:55:28Z");

  auto at = [](const char* t) { return *parse_rfc3339(t); };
  auto chain_at = [&](X509* vcek, const char* t) {
    return code_of(verify_chain(vcek, nullptr, nullptr, std::nullopt, at(t)));
  };
  EXPECT_EQ(chain_at(milan.get(), "2023-04-03T19:23:43Z"), "ok");
  EXPECT_EQ(chain_at(milan.get(), "2030-04-03T19:23:43Z"), "ok");
  EXPECT_EQ(chain_at(milan.get(), "2023-04-03T19:23:42Z"), "snp.chain.validity");
  EXPECT_EQ(chain_at(milan.get(), "2030-04-03T19:23:44Z"), "snp.chain.validity");
  EXPECT_EQ(chain_at(gosev.get(), "2029-09-25T00:00:00Z"), "snp.chain.validity");
  // The ASK (2020-10-22 .. 2045) is checked as well: before it the chain is not valid either.
  auto early =
      verify_chain(milan.get(), nullptr, nullptr, std::nullopt, at("2020-01-01T00:00:00Z"));
  EXPECT_EQ(code_of(early), "snp.chain.validity");
  EXPECT_NE(message_of(early).find("ARK"), std::string::npos) << message_of(early);
}

// ---- each report against the other's VCEK ------------------------------------------------

TEST(SnpVerify, EachReportFailsAgainstTheOtherReportsVcek) {
  // Both VCEKs chain fine; the reports were signed by other keys, so the signature, checked
  // first, is what fails.
  Report milan = parse_ok(milan_report_bytes());
  Report gosev = parse_ok(gosev_report_bytes());
  EXPECT_EQ(code_of(verify_report(milan, gosev_chain())), "snp.signature");
  EXPECT_EQ(code_of(verify_report(gosev, milan_chain())), "snp.signature");
  // The binding alone tells why: the certificate is for another chip (and another TCB).
  EXPECT_EQ(code_of(check_vek_binding(milan, gosev_chain())), "snp.vcek.chip_id");
  EXPECT_EQ(code_of(check_vek_binding(gosev, milan_chain())), "snp.vcek.chip_id");
}

// ---- tampering ----------------------------------------------------------------------------

TEST(SnpVerify, UpstreamNegativeBit7OfByte21) {
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[21] ^= 0x80; }), "snp.signature");
}

TEST(SnpVerify, TamperedMeasurement) {
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x90] ^= 0x01; }), "snp.signature");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0xBF] ^= 0x80; }), "snp.signature");
}

TEST(SnpVerify, TamperedReportData) {
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x50] ^= 0x01; }), "snp.signature");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x8F] ^= 0x01; }), "snp.signature");
}

TEST(SnpVerify, TamperedHostData) {
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0xC0] = 0x01; }), "snp.signature");
}

TEST(SnpVerify, TamperedPolicyBits) {
  // Clearing DEBUG on a debug guest, or setting it, both break the signature.
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x0A] |= 0x08; }), "snp.signature");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x0A] &= static_cast<std::uint8_t>(~0x01); }),
            "snp.signature");  // SMT bit
  Bytes gosev = gosev_report_bytes();
  gosev[0x0A] &= static_cast<std::uint8_t>(~0x08);  // pretend the debug guest is not one
  Report laundered = parse_ok(gosev);
  EXPECT_FALSE(laundered.policy.debug);
  EXPECT_EQ(code_of(verify_report(laundered, gosev_chain())), "snp.signature");
}

TEST(SnpVerify, TamperedVmplAndGuestSvn) {
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x30] = 1; }), "snp.signature");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x04] = 1; }), "snp.signature");
}

TEST(SnpVerify, TamperedReportedTcbFailsTheSignatureFirst) {
  // Raising snpSPL in REPORTED_TCB: the signature is checked before the binding, so the
  // signature is what fails (a forged field must never be diagnosed as if it were signed).
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x186] = 9; }), "snp.signature");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x38] = 9; }), "snp.signature");  // current
}

TEST(SnpVerify, VcekTcbMismatchIsDetectedByTheBinding) {
  VerifiedChain chain = milan_chain();
  Bytes bytes = milan_report_bytes();
  bytes[0x186] = 9;  // snpSPL 8 -> 9
  Report report = parse_ok(bytes);
  auto binding = check_vek_binding(report, chain);
  EXPECT_EQ(code_of(binding), "snp.vcek.tcb");
  EXPECT_NE(message_of(binding).find("snpSPL"), std::string::npos) << message_of(binding);
  EXPECT_NE(message_of(binding).find("has 9"), std::string::npos) << message_of(binding);
  EXPECT_NE(message_of(binding).find("certificate 8"), std::string::npos) << message_of(binding);

  bytes = milan_report_bytes();
  bytes[0x187] = 0x74;  // microcode
  auto micro = check_vek_binding(parse_ok(bytes), chain);
  EXPECT_EQ(code_of(micro), "snp.vcek.tcb");
  EXPECT_NE(message_of(micro).find("ucodeSPL"), std::string::npos);

  bytes = milan_report_bytes();
  bytes[0x180] = 2;  // bootloader
  EXPECT_NE(message_of(check_vek_binding(parse_ok(bytes), chain)).find("blSPL"), std::string::npos);

  EXPECT_EQ(code_of(check_vek_binding(parse_ok(milan_report_bytes()), chain)), "ok");
}

TEST(SnpVerify, ChipIdMismatchAndMasking) {
  VerifiedChain chain = milan_chain();
  Bytes bytes = milan_report_bytes();
  bytes[0x1A0 + 63] ^= 0x01;
  EXPECT_EQ(code_of(check_vek_binding(parse_ok(bytes), chain)), "snp.vcek.chip_id");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x1A0] ^= 0x01; }), "snp.signature");

  // With MASK_CHIP_KEY the firmware zeroes CHIP_ID; there is nothing to compare.
  bytes = milan_report_bytes();
  std::fill(bytes.begin() + 0x1A0, bytes.begin() + 0x1E0, 0);
  Report zeroed = parse_ok(bytes);
  EXPECT_EQ(code_of(check_vek_binding(zeroed, chain)), "snp.vcek.chip_id");
  put_le32(bytes, 0x48, 0x2);
  Report masked = parse_ok(bytes);
  EXPECT_TRUE(masked.mask_chip_key);
  EXPECT_EQ(code_of(check_vek_binding(masked, chain)), "ok");
}

TEST(SnpVerify, TamperedSignatureBytes) {
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x2A0] ^= 0x01; }), "snp.signature");  // r
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x2E8] ^= 0x01; }), "snp.signature");  // s
  // Bytes 48..71 of r and s must be zero (P-384 scalars are 48 bytes).
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x2A0 + 48] = 0x01; }), "snp.signature");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x2E8 + 71] = 0x01; }), "snp.signature");
  // All-zero signature.
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { std::fill(b.begin() + 0x2A0, b.end(), 0); }),
            "snp.signature");
  // The reserved tail after s is outside the signed region and outside r and s: ignored.
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { b[0x4A0 - 1] = 0xFF; }), "ok");
}

TEST(SnpVerify, SignatureAlgoAndSigningKey) {
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { put_le32(b, 0x34, 2); }),
            "snp.report.signature_algo");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { put_le32(b, 0x34, 0); }),
            "snp.report.signature_algo");
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { put_le32(b, 0x48, 1u << 2); }),
            "snp.report.signing_key");  // claims a VLEK, chain is a VCEK
  EXPECT_EQ(verify_tampered_milan([](Bytes& b) { put_le32(b, 0x48, 7u << 2); }),
            "snp.report.signing_key");  // claims to be unsigned
}

TEST(SnpVerify, ReportCpuidNamingAnotherProduct) {
  Bytes bytes = milan_report_bytes();
  put_le32(bytes, 0, 3);
  bytes[0x188] = 0x1A;  // Turin
  bytes[0x189] = 0x02;
  Report report = parse_ok(bytes);  // no product given: layout from the CPUID
  EXPECT_EQ(code_of(verify_report(report, milan_chain())), "snp.report.product");
  EXPECT_EQ(code_of(parse_and_verify(bytes, milan_chain())), "snp.report.product");
  // A Milan CPUID passes that check and then fails the signature (the version changed).
  bytes[0x188] = 0x19;
  bytes[0x189] = 0x01;
  EXPECT_EQ(code_of(parse_and_verify(bytes, milan_chain())), "snp.signature");
}

TEST(SnpVerify, TruncatedAndUnknownVersionThroughParseAndVerify) {
  VerifiedChain chain = milan_chain();
  Bytes bytes = milan_report_bytes();
  EXPECT_EQ(code_of(parse_and_verify(ByteView(bytes).first(1000), chain)), "snp.report.size");
  put_le32(bytes, 0, 4);
  EXPECT_EQ(code_of(parse_and_verify(bytes, chain)), "snp.report.version");
}

// ---- wrong roots --------------------------------------------------------------------------

TEST(SnpVerify, MilanVcekWithAnotherProductsRoots) {
  auto vcek = cert("virtee_vcek_milan.der");
  const UnixSeconds at = verification_time();
  // --product genoa / turin with the compiled-in roots: the Genoa/Turin ASK did not sign it.
  for (Product wrong : {Product::kGenoa, Product::kTurin}) {
    auto chain = verify_chain(vcek.get(), nullptr, nullptr, wrong, at);
    EXPECT_EQ(code_of(chain), "snp.chain.vek_signature") << product_name(wrong);
    EXPECT_NE(message_of(chain).find("SEV-Milan"), std::string::npos) << message_of(chain);
  }
  // Genoa ASK + ARK given for a Milan VCEK (product detected as Milan): the ARK is not the
  // pinned Milan one.
  auto ask_genoa = cert("ask_genoa.pem");
  auto ark_genoa = cert("ark_genoa.pem");
  EXPECT_EQ(code_of(verify_chain(vcek.get(), ask_genoa.get(), ark_genoa.get(), std::nullopt, at)),
            "snp.chain.ark_pinned");
  auto ark_turin = cert("ark_turin.pem");
  EXPECT_EQ(code_of(verify_chain(vcek.get(), nullptr, ark_turin.get(), std::nullopt, at)),
            "snp.chain.ark_pinned");
  // Genoa ASK with the (pinned) Milan ARK: the ASK is not signed by it.
  EXPECT_EQ(code_of(verify_chain(vcek.get(), ask_genoa.get(), nullptr, std::nullopt, at)),
            "snp.chain.ask_signature");
  // The whole Genoa chain with --product genoa: consistent roots, but they did not sign it.
  EXPECT_EQ(
      code_of(verify_chain(vcek.get(), ask_genoa.get(), ark_genoa.get(), Product::kGenoa, at)),
      "snp.chain.vek_signature");
  // An ASK passed as the ARK is not the pinned root either.
  auto ask_milan = cert("ask_milan.pem");
  EXPECT_EQ(code_of(verify_chain(vcek.get(), nullptr, ask_milan.get(), std::nullopt, at)),
            "snp.chain.ark_pinned");
  // The ARK given as the ASK: the ARK signed itself, not the VCEK.
  auto ark_milan = cert("ark_milan.pem");
  EXPECT_EQ(code_of(verify_chain(vcek.get(), ark_milan.get(), nullptr, std::nullopt, at)),
            "snp.chain.vek_signature");
  // The Milan ASVK is signed by the Milan ARK but did not sign a VCEK.
  EXPECT_EQ(code_of(verify_chain(vcek.get(), builtin_asvk(Product::kMilan).get(), nullptr,
                                 std::nullopt, at)),
            "snp.chain.vek_signature");
}

TEST(SnpVerify, NotAnEndorsementKeyCertificate) {
  auto ask = cert("ask_milan.pem");
  EXPECT_EQ(
      code_of(verify_chain(ask.get(), nullptr, nullptr, Product::kMilan, verification_time())),
      "snp.chain.vek_kind");
  EXPECT_EQ(code_of(verify_chain(nullptr, nullptr, nullptr, Product::kMilan, verification_time())),
            "snp.chain.vek_kind");
}

// ---- Turin --------------------------------------------------------------------------------

TEST(SnpVerify, TurinVcekChainsToTheTurinRoot) {
  auto vcek = cert("virtee_vcek_turin.der");
  auto detected = detect_product(vcek.get());
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(*detected, Product::kTurin);

  auto ask = cert("ask_turin.pem");
  auto ark = cert("ark_turin.pem");
  auto explicit_chain =
      verify_chain(vcek.get(), ask.get(), ark.get(), Product::kTurin, verification_time());
  ASSERT_TRUE(explicit_chain.ok()) << explicit_chain.error().describe();
  auto builtin_chain =
      verify_chain(vcek.get(), nullptr, nullptr, std::nullopt, verification_time());
  ASSERT_TRUE(builtin_chain.ok()) << builtin_chain.error().describe();
  auto kds = bundle("virtee_cert_chain_turin.pem");
  ASSERT_EQ(kds.size(), 2u);
  EXPECT_EQ(code_of(verify_chain(vcek.get(), kds[0].get(), kds[1].get(), std::nullopt,
                                 verification_time())),
            "ok");

  const VerifiedChain& chain = *builtin_chain;
  EXPECT_EQ(chain.product, Product::kTurin);
  // fmcSPL 0, blSPL 0, teeSPL 0, snpSPL 0, ucodeSPL 9; hwID is 8 bytes on Turin.
  EXPECT_EQ(chain.vek_tcb, (TcbVersion{0, 0, 0, 9, std::uint8_t{0}}));
  ASSERT_TRUE(chain.vek_tcb.fmc.has_value());
  EXPECT_EQ(to_hex(chain.hwid), "1e550a8ee5cf9f4d");

  // The Turin VCEK against Milan's roots.
  EXPECT_EQ(
      code_of(verify_chain(vcek.get(), nullptr, nullptr, Product::kMilan, verification_time())),
      "snp.chain.vek_signature");
}

TEST(SnpVerify, TurinBindingComparesTheChipIdPrefixAndFmc) {
  auto vcek = cert("virtee_vcek_turin.der");
  auto chain = verify_chain(vcek.get(), nullptr, nullptr, std::nullopt, verification_time());
  ASSERT_TRUE(chain.ok());
  // No Turin report is public; build the fields the binding reads.
  Report report;
  report.signing_key = SigningKey::kVcek;
  Bytes hwid = hex("1e550a8ee5cf9f4d");
  std::copy(hwid.begin(), hwid.end(), report.chip_id.begin());
  report.reported_tcb.raw = encode_tcb(chain->vek_tcb, Product::kTurin);
  EXPECT_EQ(to_hex(report.reported_tcb.raw), "0000000000000009");
  EXPECT_EQ(code_of(check_vek_binding(report, *chain)), "ok");

  Report fmc = report;
  fmc.reported_tcb.raw[0] = 1;
  auto fmc_result = check_vek_binding(fmc, *chain);
  EXPECT_EQ(code_of(fmc_result), "snp.vcek.tcb");
  EXPECT_NE(message_of(fmc_result).find("fmcSPL"), std::string::npos) << message_of(fmc_result);

  Report chip = report;
  chip.chip_id[7] ^= 0x01;
  EXPECT_EQ(code_of(check_vek_binding(chip, *chain)), "snp.vcek.chip_id");
}

// ---- roots --------------------------------------------------------------------------------

TEST(SnpRoots, CompiledInRootsEqualAmdsPublishedCertificates) {
  struct Case {
    Product product;
    const char* name;
  };
  for (Case c : {Case{Product::kMilan, "milan"}, Case{Product::kGenoa, "genoa"},
                 Case{Product::kTurin, "turin"}}) {
    SCOPED_TRACE(c.name);
    auto ark = cert(std::string("ark_") + c.name + ".pem");
    auto ask = cert(std::string("ask_") + c.name + ".pem");
    EXPECT_TRUE(crypto::same_certificate(ark.get(), builtin_ark(c.product).get()));
    EXPECT_TRUE(crypto::same_certificate(ask.get(), builtin_ask(c.product).get()));

    // go-sev-guest's VLEK bundles: ASVK then ARK, the same ARK as the VCEK chain.
    auto vlek = bundle(std::string("ask_ark_") + c.name + "_vlek.pem");
    ASSERT_EQ(vlek.size(), 2u);
    EXPECT_TRUE(crypto::same_certificate(vlek[0].get(), builtin_asvk(c.product).get()));
    EXPECT_TRUE(crypto::same_certificate(vlek[1].get(), builtin_ark(c.product).get()));
    EXPECT_EQ(code_of(crypto::verify_certificate_signature(vlek[0].get(), vlek[1].get())), "ok");
    EXPECT_EQ(code_of(crypto::verify_certificate_signature(ask.get(), ark.get())), "ok");
    EXPECT_EQ(code_of(crypto::verify_certificate_signature(ark.get(), ark.get())), "ok");
    EXPECT_NE(crypto::subject_name(vlek[0].get()).find("SEV-VLEK-"), std::string::npos);

    const RootPems& pems = builtin_root_pems(c.product);
    EXPECT_TRUE(pems.ark.starts_with("-----BEGIN CERTIFICATE-----"));
    EXPECT_EQ(code_of(crypto::parse_certificate(as_bytes(pems.asvk))), "ok");
  }
  // The products' roots differ from each other.
  EXPECT_FALSE(crypto::same_certificate(builtin_ark(Product::kMilan).get(),
                                        builtin_ark(Product::kGenoa).get()));
  EXPECT_FALSE(crypto::same_certificate(builtin_ark(Product::kGenoa).get(),
                                        builtin_ark(Product::kTurin).get()));
}

TEST(SnpRoots, DetectProduct) {
  auto milan = cert("virtee_vcek_milan.der");
  EXPECT_EQ(*detect_product(milan.get()), Product::kMilan);
  auto gosev = cert("gosev_vcek.der");
  EXPECT_EQ(*detect_product(gosev.get()), Product::kMilan);
  auto ark = cert("ark_milan.pem");  // issuer "ARK-Milan", no productName extension
  EXPECT_EQ(code_of(detect_product(ark.get())), "snp.chain.product");
}

TEST(SnpVerify, AVerifiedChainIsReusableAcrossReports) {
  VerifiedChain chain = milan_chain();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(code_of(verify_report(parse_ok(milan_report_bytes()), chain)), "ok");
  Bytes bad = milan_report_bytes();
  bad[0x90] ^= 1;
  EXPECT_EQ(code_of(verify_report(parse_ok(bad), chain)), "snp.signature");
  EXPECT_EQ(code_of(verify_report(parse_ok(milan_report_bytes()), chain)), "ok");
}

}  // namespace
}  // namespace confpod::snp
