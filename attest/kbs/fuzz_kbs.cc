// libFuzzer entry point: KBS request bodies are hostile input. The same bytes are fed to the
// auth handler, to the attest handler of a fresh session, to the tee-pubkey parser and to the
// token verifier; every outcome must be a Reply, never a crash, throw or leak.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "attest/kbs/kbs.h"
#include "attest/snp/report_json.h"

namespace {

confpod::kbs::Kbs& instance() {
  static confpod::kbs::Kbs* kbs = [] {
    confpod::kbs::Options options;
    options.allow_insecure = true;
    options.max_sessions = 64;
    auto key = confpod::kbs::TokenKey::generate();
    auto* k = new confpod::kbs::Kbs(options, std::move(key).value(),
                                    std::make_shared<confpod::kbs::InMemoryResourceStore>());
    confpod::kbs::ReferenceValues rv;
    rv.pod = "fuzz";
    rv.tee = "sample";
    rv.init_data_digest = confpod::Bytes(32, 0);
    rv.resources = {"default/key/one"};
    (void)k->set_reference_values(rv);
    return k;
  }();
  return *kbs;
}

}  // namespace

// The same input with runtime-data.nonce replaced by a fresh session's challenge, so the
// evidence verifiers behind the nonce check are reached.
void attest_with_fresh_nonce(confpod::kbs::Kbs& kbs, const char* tee, nlohmann::json doc,
                             confpod::UnixSeconds now) {
  auto auth = kbs.handle_auth(
      std::string(R"({"version":"0.4.0","tee":")") + tee + R"(","extra-params":""})", now);
  if (!auth.ok()) return;
  auto challenge = nlohmann::json::parse(auth.body, nullptr, false);
  if (doc.is_object() && doc.contains("runtime-data") && doc["runtime-data"].is_object())
    doc["runtime-data"]["nonce"] = challenge["nonce"];
  (void)kbs.handle_attest(auth.session_id,
                          doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), now);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static confpod::UnixSeconds now = 1'700'000'000;
  now += 1000;  // every earlier session has expired, so the table never fills up
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto& kbs = instance();
  (void)kbs.handle_auth(text, now);
  auto auth = kbs.handle_auth(R"({"version":"0.4.0","tee":"sample","extra-params":""})", now);
  if (auth.ok()) {
    (void)kbs.handle_attest(auth.session_id, text, now);
    (void)kbs.handle_resource_with_session(auth.session_id, text, now);
  }
  (void)kbs.handle_resource_with_token(text, "default/key/one", now);
  auto parsed = confpod::kbs::parse_bounded_json(text, confpod::kbs::kMaxAttestBody);
  if (!parsed.ok()) return 0;
  (void)confpod::kbs::parse_tee_key(*parsed);
  if (!parsed->is_object()) return 0;
  for (const char* tee : {"sample", "snp", "tdx"}) attest_with_fresh_nonce(kbs, tee, *parsed, now);
  auto rt = parsed->find("runtime-data");
  if (rt != parsed->end() && rt->is_object() && rt->contains("tee-pubkey"))
    (void)confpod::kbs::parse_tee_key((*rt)["tee-pubkey"]);
  auto ev = parsed->find("tee-evidence");
  if (ev != parsed->end() && ev->is_object() && ev->contains("primary_evidence")) {
    const auto& primary = (*ev)["primary_evidence"];
    if (primary.is_object() && primary.contains("attestation_report"))
      (void)confpod::snp::raw_report_from_sev_json(primary["attestation_report"]);
  }
  return 0;
}
