// Shared helpers for the TDX tests: fixtures, the README's verification times, hex.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "attest/base/bytes.h"
#include "attest/base/time.h"
#include "attest/tdx/collateral.h"
#include "tests/support/fixtures.h"

namespace confpod::tdx::testing {

// README cases: instants inside each fixture's collateral window.
inline constexpr UnixSeconds kV4At = 1752919234;   // 2025-07-19T10:00:34Z
inline constexpr UnixSeconds kV5At = 1774003274;   // 2026-03-20T10:41:14Z
inline constexpr UnixSeconds kPcsAt = 1688173200;  // 2023-07-01T01:00:00Z

inline Bytes fixture(const std::string& name) {
  return confpod::testing::read_fixture("tdx/" + name);
}
inline std::string fixture_text(const std::string& name) {
  return confpod::testing::read_fixture_text("tdx/" + name);
}

inline std::string hex(ByteView b) { return to_hex(b); }

inline UnixSeconds at(const char* rfc3339) {
  auto t = parse_rfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return t.ok() ? *t : 0;
}

// go-tdx-guest's Intel PCS responses for FMSPC 50806f000000, assembled.
inline Result<Collateral> pcs_collateral() {
  return collateral_from_pcs(
      fixture_text("gotdx_pcs_tcbinfo_50806f000000.json"),
      fixture_text("gotdx_pcs_qeidentity.json"), fixture_text("gotdx_tcb_info_issuer_chain.pem"),
      fixture("gotdx_pckcrl_platform.der"), fixture_text("gotdx_pck_crl_issuer_chain.pem"),
      fixture("gotdx_rootcrl.der"));
}

}  // namespace confpod::tdx::testing
