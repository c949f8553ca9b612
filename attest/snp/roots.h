// AMD's published SEV-SNP root certificates, compiled in so that verification never trusts
// a root the (untrusted) host supplies: per product the ARK (AMD Root Key, self-signed), the
// ASK (AMD SEV Key, signs VCEKs) and the ASVK (AMD SEV VLEK Key, signs VLEKs), both signed
// by the ARK.
#pragma once

#include <string_view>

#include "attest/crypto/crypto.h"
#include "attest/snp/report.h"

namespace confpod::snp {

// The PEM text, exactly as AMD's Key Distribution Service serves it.
struct RootPems {
  std::string_view ark;
  std::string_view ask;
  std::string_view asvk;
};
const RootPems& builtin_root_pems(Product product);

// Parsed once per process; each call returns a new reference to the shared certificate.
crypto::X509Ptr builtin_ark(Product product);
crypto::X509Ptr builtin_ask(Product product);
crypto::X509Ptr builtin_asvk(Product product);

}  // namespace confpod::snp
