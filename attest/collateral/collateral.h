// Attestation collateral for hosts without internet: the certificates, CRLs and signed JSON
// that AMD's Key Distribution Service and Intel's Provisioning Certification Service serve,
// saved to files on a machine with internet and imported here. parse_file() says what a file
// holds and how it is found again (kind + key); verify_item() checks it against the pinned
// AMD and Intel roots. Everything in a file is untrusted input: the KBS verifies the chain of
// whatever it takes from a store again at every use, so an item that slipped past import
// (or was written into the store by other means) still cannot make evidence pass.
//
// Kinds and keys (docs/collateral.md):
//   snp-vcek         DER VCEK           "<product>/<hwID hex>/<reported TCB hex>"
//   snp-vlek         DER VLEK           "<product>/<reported TCB hex>"
//   snp-ask, -asvk   DER ASK / ASVK     "<product>"
//   snp-ark          DER ARK            "<product>" (must be AMD's pinned one)
//   snp-crl          DER CRL by an ARK  "<product>"
//   intel-ca         DER Intel CA certificate (root, PCK Platform/Processor CA, TCB Signing)
//                                       its subject CN
//   intel-pck        DER PCK certificate "<FMSPC hex>"
//   tdx-pck-crl      DER CRL by a PCK CA "platform" | "processor"
//   tdx-root-crl     DER CRL by the root "root"
//   tdx-tcb-info     PCS response JSON   "<FMSPC hex>"
//   tdx-qe-identity  PCS response JSON   "TD_QE"
// The TCB hex is the report's 8-byte REPORTED_TCB field, so a report finds its VCEK by key.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/time.h"

namespace confpod::collateral {

enum class Kind {
  kSnpVcek,
  kSnpVlek,
  kSnpAsk,
  kSnpAsvk,
  kSnpArk,
  kSnpCrl,
  kIntelCa,
  kIntelPck,
  kTdxPckCrl,
  kTdxRootCrl,
  kTdxTcbInfo,
  kTdxQeIdentity,
};

// "snp-vcek", ..., "tdx-qe-identity".
std::string_view kind_name(Kind kind);
std::optional<Kind> parse_kind(std::string_view name);

struct Item {
  Kind kind = Kind::kSnpVcek;
  std::string key;
  std::string subject;        // for people: "VCEK genoa chip 9a1b2c3d… TCB bootloader=..."
  UnixSeconds not_after = 0;  // certificate notAfter, CRL nextUpdate, JSON nextUpdate
  Bytes data;                 // DER (certificates, CRLs) or the PCS response JSON, exact
  // The first 16 hex digits of SHA-256(data): how `collateral rm` names it.
  std::string id() const;
  bool operator==(const Item&) const = default;
};

inline constexpr std::size_t kMaxFileSize = 1u << 20;

// Everything one file holds: PEM with any number of certificates and CRLs (a KDS cert_chain,
// a PCS issuer chain), one DER certificate or CRL, an Intel PCS TCB info or QE identity
// response, or dcap-qvl's collateral JSON (split into its parts). `name` is only used in
// messages. Errors "collateral.format" (what is not recognised, and why), "collateral.size".
Result<std::vector<Item>> parse_file(ByteView contents, std::string_view name);

// Checks one item at time `now`: signatures up to the pinned AMD ARK or Intel SGX Root CA,
// validity, and for TCB info / QE identity their id. Issuers that are not pinned (a PCK CA for
// a PCK CRL or certificate, the TCB Signing certificate for TCB info and QE identity) come
// from `known`, and are themselves checked first. Errors "collateral.untrusted" (a signature,
// chain or pin fails: the message says which), "collateral.issuer_missing" (names the
// certificate to import as well), "collateral.expired".
Status verify_item(const Item& item, const std::vector<Item>& known, UnixSeconds now);

// The raw REPORTED_TCB bytes (little-endian u64) as key text.
std::string tcb_key(ByteView raw_tcb);

}  // namespace confpod::collateral
