// The Intel SGX Root CA, compiled in: TDX verification never trusts a root that the
// (untrusted) host supplies, whether inside the quote or in the collateral.
#pragma once

#include <string_view>

#include "attest/crypto/crypto.h"

namespace confpod::tdx {

// PEM of "CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US", valid
// 2018-05-21 .. 2049-12-31; SHA-256 of the DER 44:A0:19:6B:...:B6:74:D3.
std::string_view intel_sgx_root_ca_pem();

// Parsed once per process; each call returns a new reference to the shared certificate.
crypto::X509Ptr intel_sgx_root_ca();

}  // namespace confpod::tdx
