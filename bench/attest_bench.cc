// Attestation verification throughput against raw OpenSSL signature verification, both
// measured in this run on this machine, so the ratio is what matters:
//   SNP: reports verified per second (certificate chain cached) / raw ECDSA P-384 verifies
//        per second. Target >= 0.9.
//   TDX: quotes verified per second (collateral cached) / raw ECDSA P-256 verifies per second.
//        A quote needs at least two P-256 verifications of its own (QE report, quote) on top
//        of the PCK chain, so the ratio is bounded near 0.5 even with the chain cached.
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "attest/base/bytes.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"
#include "attest/snp/appraisal.h"
#include "attest/snp/report.h"
#include "attest/snp/verify.h"
#include "attest/tdx/appraisal.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/quote.h"
#include "attest/tdx/roots.h"
#include "attest/tdx/signature_cache.h"
#include "attest/tdx/verify.h"

namespace {

using confpod::Bytes;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "attest_bench: %s\n", what.c_str());
  std::exit(1);
}

template <class R>
auto must(R result, const char* what) {
  if (!result.ok()) die(std::string(what) + ": " + result.error().describe());
  return std::move(result).value();
}

std::string fixtures_dir() {
  const char* dir = std::getenv("CONFPOD_FIXTURES_DIR");
  return dir && *dir ? dir : CONFPOD_FIXTURES_DIR;
}

Bytes fixture(const std::string& rel) {
  return must(confpod::read_file(fixtures_dir() + "/" + rel), "fixture");
}

// Operations per second of `op`, best of several short rounds (the least disturbed).
double rate(const std::function<bool()>& op, double round_seconds, int rounds) {
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    long n = 0;
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(round_seconds);
    Clock::time_point now;
    do {
      for (int i = 0; i < 16; ++i)
        if (!op()) die("operation failed during measurement");
      n += 16;
      now = Clock::now();
    } while (now < deadline);
    best = std::max(best, n / std::chrono::duration<double>(now - start).count());
  }
  return best;
}

// Interleaves rounds of subject and baseline so both see the same machine conditions.
std::pair<double, double> compare(const std::function<bool()>& subject,
                                  const std::function<bool()>& baseline) {
  double s = 0, b = 0;
  for (int i = 0; i < 5; ++i) {
    b = std::max(b, rate(baseline, 0.2, 1));
    s = std::max(s, rate(subject, 0.2, 1));
  }
  return {s, b};
}

// A DER ECDSA signature of `message` under a fresh key, and that key: the raw-verify baseline.
struct RawSignature {
  confpod::crypto::EvpPkeyPtr key;
  Bytes der;
};

RawSignature make_raw_signature(const char* curve, const EVP_MD* md, const Bytes& message) {
  RawSignature raw{confpod::crypto::EvpPkeyPtr(EVP_EC_gen(curve)), {}};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, raw.key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1)
    die("cannot sign baseline message");
  raw.der.resize(len);
  EVP_DigestSign(ctx.get(), raw.der.data(), &len, message.data(), message.size());
  raw.der.resize(len);
  return raw;
}

bool raw_verify(const RawSignature& raw, const EVP_MD* md, const Bytes& message) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, raw.key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), raw.der.data(), raw.der.size(), message.data(),
                          message.size()) == 1;
}

void report(const char* name, double subject, double baseline, const char* unit,
            const char* target) {
  std::printf("%-4s %10.0f %s/s   raw ECDSA %10.0f verifies/s   ratio %.3f   (target %s)\n", name,
              subject, unit, baseline, subject / baseline, target);
}

void bench_snp() {
  Bytes report_bytes = fixture("snp/virtee_report_milan.bin");
  auto vcek =
      must(confpod::crypto::parse_certificate(fixture("snp/virtee_vcek_milan.der")), "vcek");
  auto chain = must(
      confpod::snp::verify_chain(vcek.get(), nullptr, nullptr, std::nullopt, confpod::now_unix()),
      "chain");
  confpod::snp::Policy policy;
  auto subject = [&] {
    auto report = confpod::snp::parse_and_verify(report_bytes, chain);
    return report.ok() && confpod::snp::appraise(*report, policy).ok();
  };
  Bytes signed_part(report_bytes.begin(), report_bytes.begin() + 0x2A0);
  RawSignature raw = make_raw_signature("P-384", EVP_sha384(), signed_part);
  auto baseline = [&] { return raw_verify(raw, EVP_sha384(), signed_part); };
  auto [s, b] = compare(subject, baseline);
  report("SNP", s, b, "reports", ">= 0.9");
}

void bench_tdx() {
  Bytes quote_bytes = fixture("tdx/dcapqvl_quote_v4.dat");
  auto text = must(confpod::read_text_file(fixtures_dir() + "/tdx/dcapqvl_collateral_v4.json"),
                   "collateral");
  auto at = must(confpod::parse_rfc3339("2025-07-19T10:00:34Z"), "time");
  auto collateral = must(confpod::tdx::parse_collateral_json(text), "collateral");
  auto root = confpod::tdx::intel_sgx_root_ca();
  auto verified = must(confpod::tdx::verify_collateral(collateral, root.get(), at), "collateral");
  confpod::tdx::Policy policy;
  auto subject = [&] {
    auto quote = confpod::tdx::parse_quote(quote_bytes);
    if (!quote.ok()) return false;
    auto verdict = confpod::tdx::verify_quote(*quote, verified, at);
    return verdict.ok() && confpod::tdx::appraise(*quote, *verdict, policy).ok();
  };
  Bytes signed_part(quote_bytes.begin(), quote_bytes.begin() + 632);
  RawSignature raw = make_raw_signature("P-256", EVP_sha256(), signed_part);
  auto baseline = [&] { return raw_verify(raw, EVP_sha256(), signed_part); };
  auto [s, b] = compare(subject, baseline);
  report("TDX cold", s, b, "quotes ", "report only; every quote verifies its PCK chain");
  // Repeated quotes of one platform: the PCK chain and QE report come from the cache
  // (attest/tdx/signature_cache.h); the quote's own signature is still verified each time.
  confpod::tdx::SignatureCache cache;
  auto warm = [&] {
    auto quote = confpod::tdx::parse_quote(quote_bytes);
    if (!quote.ok()) return false;
    auto verdict = confpod::tdx::verify_quote(*quote, verified, at, &cache);
    return verdict.ok() && confpod::tdx::appraise(*quote, *verdict, policy).ok();
  };
  auto [w, wb] = compare(warm, baseline);
  report("TDX warm", w, wb, "quotes ", ">= 0.8");
}

}  // namespace

int main() {
  bench_snp();
  bench_tdx();
  return 0;
}
