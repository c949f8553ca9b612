// Shared helpers of the attest/snp tests: the real fixtures, loaded in place.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"
#include "attest/snp/report.h"
#include "tests/support/fixtures.h"

namespace confpod::snp::testutil {

// Inside every fixture VCEK's validity (the latest notBefore is Turin's, 2024-11-06).
inline UnixSeconds verification_time() { return *parse_rfc3339("2025-06-01T00:00:00Z"); }

inline Bytes milan_report_bytes() { return testing::read_fixture("snp/virtee_report_milan.bin"); }
inline Bytes gosev_report_bytes() { return testing::read_fixture("snp/gosev_attestation.bin"); }

inline Report parse_ok(ByteView bytes, std::optional<Product> product = std::nullopt) {
  auto report = parse_report(bytes, product);
  EXPECT_TRUE(report.ok()) << report.error().describe();
  return report.ok() ? std::move(report).value() : Report{};
}

inline crypto::X509Ptr cert(const std::string& fixture) {
  auto parsed = crypto::parse_certificate(testing::read_fixture("snp/" + fixture));
  EXPECT_TRUE(parsed.ok()) << fixture << ": " << parsed.error().describe();
  return parsed.ok() ? std::move(parsed).value() : nullptr;
}

inline std::vector<crypto::X509Ptr> bundle(const std::string& fixture) {
  auto parsed = crypto::parse_pem_certificates(testing::read_fixture_text("snp/" + fixture));
  EXPECT_TRUE(parsed.ok()) << fixture << ": " << parsed.error().describe();
  return parsed.ok() ? std::move(parsed).value() : std::vector<crypto::X509Ptr>{};
}

inline Bytes hex(std::string_view text) {
  auto bytes = from_hex(text);
  EXPECT_TRUE(bytes.ok()) << text;
  return bytes.ok() ? std::move(bytes).value() : Bytes{};
}

// The error code of a failed Result/Status, or "ok".
template <class R>
std::string code_of(const R& result) {
  return result.ok() ? std::string("ok") : result.error().code;
}

template <class R>
std::string message_of(const R& result) {
  return result.ok() ? std::string() : result.error().message;
}

inline void put_le32(Bytes& bytes, std::size_t offset, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
}
inline void put_le64(Bytes& bytes, std::size_t offset, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) bytes[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

inline const char* kMilanMeasurement =
    "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd"
    "81841f";
inline const char* kMilanReportData =
    "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a"
    "8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd";
inline const char* kGosevMeasurement =
    "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4"
    "872b01";

}  // namespace confpod::snp::testutil
