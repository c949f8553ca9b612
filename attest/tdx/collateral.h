// DCAP collateral for TDX quotes: the TCB info and QE identity that Intel's PCS signs, the
// certificate chains that sign them, and the PCK and root CA CRLs. Collateral is fetched by
// the untrusted host, so it is kept as the exact served bytes and only trusted after
// verify_collateral() has chained every item to the pinned Intel SGX Root CA.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/base/time.h"
#include "attest/crypto/crypto.h"

namespace confpod::tdx {

struct Collateral {
  std::string tcb_info;               // the tcbInfo JSON object, byte-exact as served
  Bytes tcb_info_signature;           // 64 bytes r||s (ECDSA P-256, SHA-256) over tcb_info
  std::string tcb_info_issuer_chain;  // PEM: Intel SGX TCB Signing, then the root
  std::string qe_identity;            // the enclaveIdentity JSON object, byte-exact
  Bytes qe_identity_signature;
  std::string qe_identity_issuer_chain;
  Bytes pck_crl;                     // DER, issued by the PCK Platform or Processor CA
  std::string pck_crl_issuer_chain;  // PEM: that CA, then the root
  Bytes root_ca_crl;                 // DER, issued by the Intel SGX Root CA
};

// The dcap-qvl "QuoteCollateralV3" JSON object (keys tcb_info, tcb_info_signature,
// tcb_info_issuer_chain, qe_identity, qe_identity_signature, qe_identity_issuer_chain,
// pck_crl, pck_crl_issuer_chain, root_ca_crl; signatures and CRLs in hex). Parses the
// container only; nothing in it is trusted yet. Error "tdx.collateral.format".
Result<Collateral> parse_collateral_json(std::string_view json);

// From Intel PCS response bodies: `GET .../tdx/certification/v4/tcb` ({"tcbInfo":{...},
// "signature":"hex"}), `GET .../qe/identity` ({"enclaveIdentity":{...},"signature":"hex"}),
// the TCB-Info-Issuer-Chain header (URL-decoded PEM; it also signs the QE identity), the PCK
// CRL (DER), its issuer chain (PEM) and the root CA CRL (DER). The signed objects are cut
// out of the responses byte for byte, never re-serialized. Error "tdx.collateral.format".
Result<Collateral> collateral_from_pcs(std::string_view tcb_info_response,
                                       std::string_view qe_identity_response,
                                       std::string_view tcb_issuer_chain_pem, ByteView pck_crl_der,
                                       std::string_view pck_crl_issuer_chain_pem,
                                       ByteView root_crl_der);

// One signed object of an Intel PCS response ({"tcbInfo": {...}, "signature": "hex"}, or
// "enclaveIdentity"): the object's exact bytes, cut out of the response, and the signature.
struct SignedObject {
  std::string body;
  Bytes signature;  // 64 bytes r||s
};
// Error "tdx.collateral.format".
Result<SignedObject> split_pcs_response(std::string_view response, std::string_view member);
// The signature of `object` by `signer`'s key (ECDSA P-256, SHA-256). Nothing about the
// signer itself is checked. Error "tdx.collateral.signature" naming `what`.
Status verify_signed_object(const SignedObject& object, X509* signer, const std::string& what);

// The dcap-qvl JSON form that parse_collateral_json() reads back to an equal Collateral.
std::string collateral_to_json(const Collateral& collateral);

// The parsed, signed contents -------------------------------------------------------------

inline constexpr std::array<std::string_view, 7> kTcbStatuses = {
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked"};

struct TcbLevel {
  std::array<std::uint8_t, 16> sgx_components{};
  std::uint16_t pce_svn = 0;
  std::array<std::uint8_t, 16> tdx_components{};
  std::string tcb_date;    // RFC 3339, as served
  std::string tcb_status;  // one of kTcbStatuses
  std::vector<std::string> advisory_ids;
};

struct TdxModuleTcbLevel {
  std::uint8_t isvsvn = 0;
  std::string tcb_date;
  std::string tcb_status;
  std::vector<std::string> advisory_ids;
};

// `tdxModule` (no id, no levels) or one of `tdxModuleIdentities` ("TDX_01", ...).
struct TdxModuleIdentity {
  std::string id;
  std::array<std::uint8_t, 48> mrsigner{};
  std::array<std::uint8_t, 8> attributes{};
  std::array<std::uint8_t, 8> attributes_mask{};
  std::vector<TdxModuleTcbLevel> tcb_levels;  // highest isvsvn first
};

struct TcbInfo {
  std::string id;   // "TDX"
  int version = 0;  // 3
  UnixSeconds issue_date = 0;
  UnixSeconds next_update = 0;
  std::array<std::uint8_t, 6> fmspc{};
  std::array<std::uint8_t, 2> pce_id{};
  int tcb_type = 0;
  std::uint32_t tcb_evaluation_data_number = 0;
  TdxModuleIdentity tdx_module;
  std::vector<TdxModuleIdentity> tdx_module_identities;
  std::vector<TcbLevel> tcb_levels;  // highest first, ordered as Intel's QVL orders them
};

struct QeTcbLevel {
  std::uint16_t isvsvn = 0;
  std::string tcb_date;
  std::string tcb_status;
  std::vector<std::string> advisory_ids;
};

struct QeIdentity {
  std::string id;   // "TD_QE"
  int version = 0;  // 2
  UnixSeconds issue_date = 0;
  UnixSeconds next_update = 0;
  std::uint32_t tcb_evaluation_data_number = 0;
  std::uint32_t miscselect = 0;
  std::uint32_t miscselect_mask = 0;
  std::array<std::uint8_t, 16> attributes{};
  std::array<std::uint8_t, 16> attributes_mask{};
  std::array<std::uint8_t, 32> mrsigner{};
  std::uint16_t isvprodid = 0;
  std::vector<QeTcbLevel> tcb_levels;  // highest isvsvn first
};

// Content parsers for the signed JSON objects (exposed for tests). They check shape and
// types only; verify_collateral() checks id, version and the signature.
// Errors "tdx.collateral.tcb_info" / "tdx.collateral.qe_identity".
Result<TcbInfo> parse_tcb_info(std::string_view json);
Result<QeIdentity> parse_qe_identity(std::string_view json);

// Verified collateral ------------------------------------------------------------------------

// One item's validity window, kept so that every quote re-checks its own verification time.
struct ValidityWindow {
  std::string item;  // "tcb_info", "qe_identity", "pck_crl", "root_ca_crl", or a certificate
  UnixSeconds not_before = 0;
  UnixSeconds not_after = 0;
};

// Collateral whose signatures, chains and CRLs have been verified. Independent of any quote:
// verify once, then reuse for many quotes (verify_quote re-checks the windows at its `at`).
struct VerifiedCollateral {
  TcbInfo tcb_info;
  QeIdentity qe_identity;
  crypto::X509Ptr root;            // the trusted root it was verified against
  crypto::X509Ptr pck_crl_issuer;  // PCK Platform/Processor CA that signed pck_crl
  crypto::X509CrlPtr pck_crl;
  crypto::X509CrlPtr root_ca_crl;
  std::vector<ValidityWindow> windows;
  UnixSeconds valid_from = 0;  // latest not_before of the windows
  UnixSeconds expires = 0;     // earliest not_after of the windows
};

// Verifies, at time `at` (nothing is trusted by default: expired collateral fails closed):
//  1. every item is inside its window: TCB info and QE identity issueDate..nextUpdate, both
//     CRLs thisUpdate..nextUpdate, every certificate of the issuer chains notBefore..notAfter
//     ("tdx.collateral.expired" naming the item and its end, "tdx.collateral.not_yet_valid");
//  2. the root CA CRL is signed by `trusted_root` ("tdx.collateral.crl");
//  3. each issuer chain ends at `trusted_root` (a root in the chain must be byte-identical to
//     it) with every signature valid and no certificate revoked by the root CA CRL
//     ("tdx.collateral.chain");
//  4. the TCB info and QE identity signatures by the leaves of their chains over the exact
//     served bytes ("tdx.collateral.signature");
//  5. TCB info id "TDX" version 3 ("tdx.collateral.tcb_info"), QE identity id "TD_QE"
//     version 2 ("tdx.collateral.qe_identity");
//  6. the PCK CRL is signed by the CA its issuer chain names ("tdx.collateral.crl").
// Unparsable items: "tdx.collateral.format".
Result<VerifiedCollateral> verify_collateral(const Collateral& collateral, X509* trusted_root,
                                             UnixSeconds at);

// Checks `at` against every window of verified collateral (what verify_quote does first).
Status check_collateral_time(const VerifiedCollateral& collateral, UnixSeconds at);

// Shared with verify.cc: certificates of a PEM bundle, refusing a bundle where any
// "-----BEGIN CERTIFICATE-----" block fails to parse (a corrupted chain is not a shorter one).
Result<std::vector<crypto::X509Ptr>> parse_pem_chain_strict(std::string_view pem,
                                                            const std::string& error_code,
                                                            const std::string& what);

// Verifies chain[0] -> ... -> trusted_root at `at`. A trailing root in `chain` must be
// byte-identical to trusted_root; certificates issued by the root are checked against
// root_crl when given; every issuer must be a CA.
struct ChainErrorCodes {
  std::string chain;     // a signature, the pinning or a CA flag
  std::string validity;  // notBefore/notAfter
  std::string revoked;   // listed in root_crl
};
Status verify_chain_to_root(const std::vector<crypto::X509Ptr>& chain, X509* trusted_root,
                            X509_CRL* root_crl, UnixSeconds at, const ChainErrorCodes& codes,
                            const std::string& what);

}  // namespace confpod::tdx
