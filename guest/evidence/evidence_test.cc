// The evidence providers against fake <root> trees: the configfs-tsm entries, /dev nodes and
// /proc/cmdline a guest would have, filled with the real fixture reports and quotes (read in
// place from the fixtures directory).
#include "guest/evidence/evidence.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "attest/kbs/kbs.h"
#include "attest/kbs/kbs_test_util.h"
#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod::guest {
namespace {

namespace fs = std::filesystem;
using confpod::testing::read_fixture;
using confpod::testing::TempDir;

constexpr const char* kEntry = "test-entry";
const std::string kDigestHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// SNP report offsets (ABI): HOST_DATA at 0xC0. TDX v4 quote: 48-byte header, then the TD
// report, whose MRCONFIGID is at 184.
constexpr std::size_t kSnpHostData = 0xC0;
constexpr std::size_t kTdxMrConfigId = 48 + 184;

class FakeRoot {
 public:
  const std::string& path() const { return dir_.path(); }
  std::string file(const std::string& rel) const { return dir_.path() + "/" + rel; }
  void write(const std::string& rel, const std::string& content) const {
    fs::create_directories(fs::path(file(rel)).parent_path());
    std::ofstream(file(rel), std::ios::binary) << content;
  }
  void write(const std::string& rel, const Bytes& content) const {
    write(rel, std::string(content.begin(), content.end()));
  }
  Bytes read(const std::string& rel) const {
    auto b = read_file(file(rel));
    return b.ok() ? *b : Bytes{};
  }
  // A configfs-tsm entry as the kernel would show it after mkdir, with the given provider.
  std::string tsm_entry(const std::string& provider, const std::string& name = kEntry) const {
    std::string rel = "sys/kernel/config/tsm/report/" + name;
    write(rel + "/provider", provider + "\n");
    return rel;
  }

 private:
  TempDir dir_;
};

TsmEntryNamer fixed_name() {
  return [] { return std::string(kEntry); };
}

Bytes patched(Bytes b, std::size_t at, std::size_t n, std::uint8_t value) {
  std::fill(b.begin() + static_cast<std::ptrdiff_t>(at),
            b.begin() + static_cast<std::ptrdiff_t>(at + n), value);
  return b;
}

Bytes runtime_digest() {
  Bytes rd(48);
  for (std::size_t i = 0; i < rd.size(); ++i) rd[i] = static_cast<std::uint8_t>(i + 1);
  return rd;
}

Bytes padded64(Bytes b) {
  b.resize(64, 0);
  return b;
}

std::unique_ptr<EvidenceProvider> make(const std::string& tee, const FakeRoot& root) {
  auto p = make_evidence_provider(tee, root.path(), fixed_name());
  EXPECT_TRUE(p.ok()) << p.error().describe();
  return p.ok() ? std::move(*p) : nullptr;
}

// sample ------------------------------------------------------------------------------------

TEST(SampleEvidence, DigestFromTheKernelCommandLine) {
  FakeRoot root;
  root.write("proc/cmdline",
             "console=ttyS0 confpod.init_data_digest=" + kDigestHex + " quiet panic=-1\n");
  auto p = make("none", root);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->tee(), "sample");
  auto d = p->init_data_digest();
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(to_hex(*d), kDigestHex);

  // Exactly what the KBS's verify_sample (and daemon/kbs/test_client.h) expects.
  Bytes rd = runtime_digest();
  auto e = p->evidence(rd);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_EQ(*e, (nlohmann::json{{"svn", "1"}, {"report_data", to_base64(rd)}}));
  EXPECT_EQ(p->evidence(Bytes(65)).error().code, "evidence.format");
}

TEST(SampleEvidence, CommandLineErrors) {
  struct Case {
    std::string cmdline;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"console=ttyS0 quiet\n", "evidence.unavailable"},
      {"confpod.init_data_digest=" + kDigestHex.substr(1) + "\n", "evidence.format"},
      {"confpod.init_data_digest=" + kDigestHex + "0\n", "evidence.format"},
      {"confpod.init_data_digest=zz" + kDigestHex.substr(2) + "\n", "evidence.format"},
      {"confpod.init_data_digest=0x" + kDigestHex.substr(2) + "\n", "evidence.format"},
      {"confpod.init_data_digest=\n", "evidence.format"},
      {"confpod.init_data_digest=" + kDigestHex + " confpod.init_data_digest=" + kDigestHex,
       "evidence.format"},
      // A longer parameter name that merely starts alike is not it.
      {"xconfpod.init_data_digest=" + kDigestHex, "evidence.unavailable"},
  };
  for (const auto& c : cases) {
    FakeRoot root;
    root.write("proc/cmdline", c.cmdline);
    auto d = make("none", root)->init_data_digest();
    ASSERT_FALSE(d.ok()) << c.cmdline;
    EXPECT_EQ(d.error().code, c.code) << c.cmdline << ": " << d.error().describe();
    EXPECT_NE(d.error().message.find("confpod.init_data_digest"), std::string::npos)
        << d.error().message;
  }
  FakeRoot no_cmdline;
  EXPECT_EQ(make("none", no_cmdline)->init_data_digest().error().code, "evidence.unavailable");
}

// SNP over configfs-tsm ----------------------------------------------------------------------

TEST(SnpTsmEvidence, HostDataOfTheRealReportAndTheInblob) {
  const Bytes report = read_fixture("snp/virtee_report_milan.bin");
  ASSERT_EQ(report.size(), 1184u);
  FakeRoot root;
  std::string entry = root.tsm_entry("sev_guest");
  root.write(entry + "/outblob", report);
  auto p = make("snp", root);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->tee(), "snp");

  // The fixture README: host_data zero.
  auto d = p->init_data_digest();
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(*d, Bytes(32, 0));
  EXPECT_EQ(root.read(entry + "/inblob"), Bytes(64, 0));

  // The evidence: the runtime-data digest zero-padded into inblob, the report in Trustee's
  // shape (the sev crate's serde object) that re-encodes to the same bytes, no certificates
  // (no auxblob).
  Bytes rd = runtime_digest();
  auto e = p->evidence(rd);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_EQ(root.read(entry + "/inblob"), padded64(rd));
  ASSERT_TRUE((*e)["attestation_report"].is_object());
  EXPECT_EQ((*e)["attestation_report"]["measurement"].size(), 48u);
  EXPECT_EQ(snp::raw_report_from_sev_json((*e)["attestation_report"]).value(), report);
  EXPECT_TRUE((*e)["cert_chain"].is_null());

  // HOST_DATA is read from its offset: a report with it set gives those bytes.
  FakeRoot root2;
  std::string entry2 = root2.tsm_entry("sev_guest");
  root2.write(entry2 + "/outblob", patched(report, kSnpHostData, 32, 0x5a));
  auto d2 = make("snp", root2)->init_data_digest();
  ASSERT_TRUE(d2.ok()) << d2.error().describe();
  EXPECT_EQ(*d2, Bytes(32, 0x5a));
}

// The GHCB certificate table as a host attaches it: entries {GUID, offset, length}, zero end.
Bytes cert_table(const std::vector<std::pair<Bytes, Bytes>>& entries) {
  Bytes table((entries.size() + 1) * 24, 0);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& [guid, cert] = entries[i];
    std::copy(guid.begin(), guid.end(), table.begin() + static_cast<std::ptrdiff_t>(i * 24));
    std::uint32_t off = static_cast<std::uint32_t>(table.size());
    std::uint32_t len = static_cast<std::uint32_t>(cert.size());
    for (int b = 0; b < 4; ++b) {
      table[i * 24 + 16 + b] = static_cast<std::uint8_t>(off >> (8 * b));
      table[i * 24 + 20 + b] = static_cast<std::uint8_t>(len >> (8 * b));
    }
    table.insert(table.end(), cert.begin(), cert.end());
  }
  return table;
}

TEST(SnpTsmEvidence, AuxblobBecomesTheCertChain) {
  const Bytes report = read_fixture("snp/virtee_report_milan.bin");
  const Bytes vcek = read_fixture("snp/virtee_vcek_milan.der");
  const Bytes ask = read_fixture("snp/ask_milan.pem");
  const Bytes vcek_guid = from_hex("63da758de6644564adc5f4b93be8accd").value();
  // ASK in the little-endian (EFI) GUID order, an unknown GUID that is skipped.
  const Bytes ask_guid_le = from_hex("79b3b74aacbbe44fa02f05aef327c782").value();
  const Bytes other_guid = from_hex("92f81bc358114d3d97ffd19f88dc67ea").value();
  FakeRoot root;
  std::string entry = root.tsm_entry("sev_guest");
  root.write(entry + "/outblob", report);
  root.write(entry + "/auxblob",
             cert_table({{vcek_guid, vcek}, {other_guid, Bytes(10, 1)}, {ask_guid_le, ask}}));
  auto e = make("snp", root)->evidence(runtime_digest());
  ASSERT_TRUE(e.ok()) << e.error().describe();
  const auto& chain = (*e)["cert_chain"];
  ASSERT_TRUE(chain.is_array());
  ASSERT_EQ(chain.size(), 2u) << chain.dump();
  EXPECT_EQ(chain[0]["cert_type"], "VCEK");
  EXPECT_EQ(from_base64(chain[0]["data"].get<std::string>()).value(), vcek);
  EXPECT_EQ(chain[1]["cert_type"], "ASK");
  EXPECT_EQ(from_base64(chain[1]["data"].get<std::string>()).value(), ask);

  // An entry pointing outside the table, and a table without its terminator.
  Bytes bad = cert_table({{vcek_guid, vcek}});
  bad[16] = 0xff;
  bad[17] = 0xff;
  root.write(entry + "/auxblob", bad);
  EXPECT_EQ(make("snp", root)->evidence(runtime_digest()).error().code, "evidence.format");
  root.write(entry + "/auxblob", Bytes(vcek_guid.begin(), vcek_guid.end()));
  EXPECT_EQ(make("snp", root)->evidence(runtime_digest()).error().code, "evidence.format");
}

// Our evidence in the shape the KBS parses: the real report and the real VCEK from auxblob get
// through parsing, chain and signature, and stop only at the binding (the fixture's
// REPORT_DATA is not this challenge's digest).
TEST(SnpTsmEvidence, TheKbsVerifiesItUpToTheBinding) {
  FakeRoot root;
  std::string entry = root.tsm_entry("sev_guest");
  root.write(entry + "/outblob", read_fixture("snp/virtee_report_milan.bin"));
  root.write(entry + "/auxblob", cert_table({{from_hex("63da758de6644564adc5f4b93be8accd").value(),
                                              read_fixture("snp/virtee_vcek_milan.der")}}));
  auto p = make("snp", root);
  ASSERT_TRUE(p);

  const UnixSeconds now = 1767225600;  // 2026-01-01, inside the VCEK's validity
  kbs::Kbs k({}, kbs::TokenKey::generate().value(), std::make_shared<kbs::InMemoryResourceStore>());
  kbs::Reply auth = k.handle_auth(R"({"version":"0.4.0","tee":"snp","extra-params":""})", now);
  ASSERT_TRUE(auth.ok()) << auth.body;
  std::string nonce = nlohmann::json::parse(auth.body)["nonce"];
  auto tee_key = kbs::testing::make_ec_tee_key();
  auto parsed_key = kbs::parse_tee_key(tee_key.jwk);
  ASSERT_TRUE(parsed_key.ok());
  auto e = p->evidence(kbs::runtime_data_digest(nonce, *parsed_key, ""));
  ASSERT_TRUE(e.ok()) << e.error().describe();
  nlohmann::json att = {{"runtime-data", {{"nonce", nonce}, {"tee-pubkey", tee_key.jwk}}},
                        {"tee-evidence", {{"primary_evidence", *e}, {"additional_evidence", ""}}}};
  kbs::Reply r = k.handle_attest(auth.session_id, att.dump(), now);
  EXPECT_EQ(r.error_code, "kbs.binding") << r.body;
}

TEST(SnpTsmEvidence, TruncatedOrWrongReportsAndProviders) {
  const Bytes report = read_fixture("snp/virtee_report_milan.bin");
  FakeRoot root;
  std::string entry = root.tsm_entry("sev_guest");
  root.write(entry + "/outblob", Bytes(report.begin(), report.begin() + 1000));
  auto p = make("snp", root);
  EXPECT_EQ(p->init_data_digest().error().code, "evidence.format");
  EXPECT_EQ(p->evidence(runtime_digest()).error().code, "evidence.format");
  root.write(entry + "/outblob", Bytes());
  EXPECT_EQ(p->evidence(runtime_digest()).error().code, "evidence.format");
  root.write(entry + "/outblob", patched(report, 0, 4, 0x09));  // report version 9
  EXPECT_EQ(p->evidence(runtime_digest()).error().code, "evidence.format");
  root.write(entry + "/outblob", report);
  EXPECT_EQ(p->evidence(Bytes(65, 1)).error().code, "evidence.format");

  // The entry's provider is TDX: SNP evidence is not available there.
  FakeRoot tdx;
  tdx.write(tdx.tsm_entry("tdx_guest") + "/outblob", report);
  auto e = make("snp", tdx)->evidence(runtime_digest());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, "evidence.unavailable");
  EXPECT_NE(e.error().message.find("tdx_guest"), std::string::npos);
}

TEST(SnpTsmEvidence, DefaultEntryNamesAreCreatedAndRemoved) {
  FakeRoot root;
  fs::create_directories(root.file("sys/kernel/config/tsm/report"));
  auto p = make_evidence_provider("snp", root.path());
  ASSERT_TRUE(p.ok()) << p.error().describe();
  // A plain directory is no configfs: mkdir gives an empty entry without a provider file.
  auto e = (*p)->evidence(runtime_digest());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, "evidence.unavailable") << e.error().describe();
  EXPECT_NE(e.error().message.find("/confpod-"), std::string::npos) << e.error().message;
  EXPECT_TRUE(fs::is_empty(root.file("sys/kernel/config/tsm/report")));
}

// TDX over configfs-tsm ----------------------------------------------------------------------

TEST(TdxTsmEvidence, MrConfigIdOfTheRealQuote) {
  const Bytes quote = read_fixture("tdx/dcapqvl_quote_v4.dat");
  ASSERT_GT(quote.size(), 1000u);
  FakeRoot root;
  std::string entry = root.tsm_entry("tdx_guest");
  root.write(entry + "/outblob", quote);
  auto p = make("tdx", root);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->tee(), "tdx");
  // The fixture README: mr_config_id 48 zero bytes.
  auto d = p->init_data_digest();
  ASSERT_TRUE(d.ok()) << d.error().describe();
  EXPECT_EQ(*d, Bytes(48, 0));
  EXPECT_EQ(root.read(entry + "/inblob"), Bytes(64, 0));

  Bytes rd = runtime_digest();
  auto e = p->evidence(rd);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_EQ(root.read(entry + "/inblob"), padded64(rd));
  EXPECT_EQ(from_base64((*e)["quote"].get<std::string>()).value(), quote);
  EXPECT_TRUE((*e)["cc_eventlog"].is_null());

  // With the CCEL the firmware publishes, it travels as cc_eventlog.
  const Bytes ccel = read_fixture("tdx/gcp_cos113_ccel_data.dat");
  root.write("sys/firmware/acpi/tables/data/CCEL", ccel);
  e = p->evidence(rd);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_EQ(from_base64((*e)["cc_eventlog"].get<std::string>()).value(), ccel);

  // MRCONFIGID is read from its offset.
  FakeRoot root2;
  root2.write(root2.tsm_entry("tdx_guest") + "/outblob", patched(quote, kTdxMrConfigId, 48, 0x3c));
  auto d2 = make("tdx", root2)->init_data_digest();
  ASSERT_TRUE(d2.ok()) << d2.error().describe();
  EXPECT_EQ(*d2, Bytes(48, 0x3c));
}

TEST(TdxTsmEvidence, TruncatedQuote) {
  const Bytes quote = read_fixture("tdx/dcapqvl_quote_v4.dat");
  FakeRoot root;
  root.write(root.tsm_entry("tdx_guest") + "/outblob", Bytes(quote.begin(), quote.begin() + 600));
  auto p = make("tdx", root);
  EXPECT_EQ(p->init_data_digest().error().code, "evidence.format");
  EXPECT_EQ(p->evidence(runtime_digest()).error().code, "evidence.format");
}

// Choosing the provider ----------------------------------------------------------------------

TEST(DetectEvidenceProvider, ByWhatTheMachineHas) {
  auto detect = [](const FakeRoot& root) {
    return detect_evidence_provider(root.path(), fixed_name());
  };
  {
    FakeRoot root;  // nothing: sample
    auto p = detect(root);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ((*p)->tee(), "sample");
    // The one-argument form is the same choice.
    auto q = detect_evidence_provider(root.path());
    ASSERT_TRUE(q.ok());
    EXPECT_EQ((*q)->tee(), "sample");
  }
  {
    FakeRoot root;
    root.tsm_entry("sev_guest");
    auto p = detect(root);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ((*p)->tee(), "snp");
  }
  {
    FakeRoot root;
    root.tsm_entry("tdx_guest");
    auto p = detect(root);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ((*p)->tee(), "tdx");
  }
  {
    // /dev/sev-guest without configfs-tsm: the ioctl provider. A regular file is no device,
    // so the ioctl fails with evidence.io.
    FakeRoot root;
    root.write("dev/sev-guest", "");
    auto p = detect(root);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ((*p)->tee(), "snp");
    auto e = (*p)->evidence(runtime_digest());
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code, "evidence.io") << e.error().describe();
  }
  {
    // configfs-tsm whose provider is someone else's, plus /dev/sev-guest: the device.
    FakeRoot root;
    root.tsm_entry("arm_cca_guest");
    root.write("dev/sev-guest", "");
    auto p = detect(root);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    EXPECT_EQ((*p)->tee(), "snp");
  }
  {
    // A TDX guest without configfs-tsm is not quietly treated as sample.
    FakeRoot root;
    root.write("dev/tdx_guest", "");
    auto p = detect(root);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, "evidence.unavailable");
  }
}

TEST(MakeEvidenceProvider, RefusesTeesThisMachineCannotServe) {
  FakeRoot empty;
  EXPECT_EQ(make_evidence_provider("snp", empty.path()).error().code, "evidence.unavailable");
  EXPECT_EQ(make_evidence_provider("tdx", empty.path()).error().code, "evidence.unavailable");
  EXPECT_EQ(make_evidence_provider("sgx", empty.path()).error().code, "evidence.unavailable");
  auto s = make_evidence_provider("sample", empty.path());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->tee(), "sample");

  FakeRoot dev;
  dev.write("dev/sev-guest", "");
  auto p = make_evidence_provider("snp", dev.path());
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_EQ((*p)->tee(), "snp");

  EXPECT_EQ(init_data_digest_size("snp"), 32u);
  EXPECT_EQ(init_data_digest_size("none"), 32u);
  EXPECT_EQ(init_data_digest_size("sample"), 32u);
  EXPECT_EQ(init_data_digest_size("tdx"), 48u);
  EXPECT_EQ(init_data_digest_size("sgx"), 0u);
}

}  // namespace
}  // namespace confpod::guest
