// The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): which platform
// (FMSPC, PCE-ID) and which TCB (16 component SVNs, PCESVN) the PCK key was issued for.
#pragma once

#include <openssl/x509.h>

#include <array>
#include <cstdint>

#include "attest/base/result.h"

namespace confpod::tdx {

inline constexpr const char* kSgxExtensionsOid = "1.2.840.113741.1.13.1";

struct PckExtensions {
  std::array<std::uint8_t, 16> ppid{};
  // TCB component SVNs (OIDs ...13.1.2.1 .. .2.16): what TCB levels are compared against.
  std::array<std::uint8_t, 16> tcb_components{};
  std::uint16_t pce_svn = 0;               // ...13.1.2.17
  std::array<std::uint8_t, 16> cpu_svn{};  // ...13.1.2.18, the raw CPUSVN
  std::array<std::uint8_t, 2> pce_id{};    // ...13.1.3
  std::array<std::uint8_t, 6> fmspc{};     // ...13.1.4
  int sgx_type = -1;                       // ...13.1.5: 0 Standard, 1 Scalable, ...
};

// Parses the SGX extension of `cert`. Error "tdx.pck.extension" when it is missing,
// malformed, or lacks PPID, any TCB component, PCESVN, CPUSVN, PCE-ID or FMSPC.
Result<PckExtensions> parse_pck_extensions(X509* cert);

}  // namespace confpod::tdx
