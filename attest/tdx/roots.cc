#include "attest/tdx/roots.h"

#include <cstdlib>

namespace confpod::tdx {

namespace {

// Source: Intel's published root, https://certificates.trustedservices.intel.com/
// Intel_SGX_Provisioning_Certification_RootCA.pem; the same certificate google/go-tdx-guest
// ships as verify/trusted_root.pem and Phala-Network/dcap-qvl as src/TrustedRootCA.der.
constexpr std::string_view kIntelSgxRootCa = R"pem(-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----)pem";

}  // namespace

std::string_view intel_sgx_root_ca_pem() { return kIntelSgxRootCa; }

crypto::X509Ptr intel_sgx_root_ca() {
  static X509* const root = [] {
    auto parsed = crypto::parse_certificate(as_bytes(kIntelSgxRootCa));
    if (!parsed.ok()) std::abort();  // a compiled-in constant: cannot fail at run time
    return parsed->release();        // lives for the whole process
  }();
  return crypto::clone(root);
}

}  // namespace confpod::tdx
