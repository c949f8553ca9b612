// Intel TDX DCAP quotes, versions 4 and 5 (ECDSA-P256 attestation key, certification data
// type 6 wrapping the QE report and the PCK certificate chain). Parsing only: a parsed quote
// is still hostile input until verify_quote() (verify.h) has checked it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::tdx {

inline constexpr std::uint16_t kAttestationKeyEcdsaP256 = 2;
inline constexpr std::uint32_t kTeeTypeTdx = 0x81;
inline constexpr std::uint16_t kBodyTypeTd10 = 2;  // v5 body type of a TDX 1.0 TD report
inline constexpr std::uint16_t kBodyTypeTd15 = 3;  // v5 body type of a TDX 1.5 TD report
inline constexpr std::uint16_t kCertDataQeReport = 6;
inline constexpr std::uint16_t kCertDataPckChain = 5;
inline constexpr std::size_t kHeaderSize = 48;
inline constexpr std::size_t kTd10ReportSize = 584;
inline constexpr std::size_t kTd15ReportSize = 648;
inline constexpr std::size_t kQeReportSize = 384;

using Hash48 = std::array<std::uint8_t, 48>;

struct QuoteHeader {
  std::uint16_t version = 0;
  std::uint16_t att_key_type = 0;
  std::uint32_t tee_type = 0;
  std::uint16_t qe_svn = 0;   // "reserved" in the v4 spec; informational only
  std::uint16_t pce_svn = 0;  // idem: the verified PCESVN comes from the PCK certificate
  std::array<std::uint8_t, 16> qe_vendor_id{};
  std::array<std::uint8_t, 20> user_data{};
};

// The TD report body: TDX 1.0 (584 bytes) or TDX 1.5 (648 bytes, adds the last two fields).
struct TdReport {
  std::array<std::uint8_t, 16> tee_tcb_svn{};
  Hash48 mr_seam{};
  Hash48 mr_signer_seam{};
  std::array<std::uint8_t, 8> seam_attributes{};
  std::array<std::uint8_t, 8> td_attributes{};
  std::array<std::uint8_t, 8> xfam{};
  Hash48 mr_td{};
  Hash48 mr_config_id{};
  Hash48 mr_owner{};
  Hash48 mr_owner_config{};
  std::array<Hash48, 4> rtmr{};
  std::array<std::uint8_t, 64> report_data{};
  bool td15 = false;                            // tee_tcb_svn2 / mr_servicetd present
  std::array<std::uint8_t, 16> tee_tcb_svn2{};  // zero for TDX 1.0
  Hash48 mr_servicetd{};                        // zero for TDX 1.0

  bool debug() const { return (td_attributes[0] & 0x01) != 0; }
};

// The Quoting Enclave's SGX report (384 bytes), signed by the PCK key.
struct QeReport {
  std::array<std::uint8_t, 16> cpu_svn{};
  std::uint32_t miscselect = 0;
  std::array<std::uint8_t, 16> attributes{};
  std::array<std::uint8_t, 32> mr_enclave{};
  std::array<std::uint8_t, 32> mr_signer{};
  std::uint16_t isv_prod_id = 0;
  std::uint16_t isv_svn = 0;
  std::array<std::uint8_t, 64> report_data{};
};

struct Quote {
  QuoteHeader header;
  std::uint16_t body_type = kBodyTypeTd10;  // v4 quotes carry no body type: always TDX 1.0
  TdReport body;
  // Header + body exactly as received: what the attestation key signs.
  Bytes signed_region;

  std::uint32_t signature_data_len = 0;
  std::array<std::uint8_t, 64> signature{};        // r||s over signed_region
  std::array<std::uint8_t, 64> attestation_key{};  // P-256 x||y
  std::uint16_t cert_data_type = 0;                // outer: 6

  Bytes qe_report_raw;  // the 384 signed bytes
  QeReport qe_report;
  std::array<std::uint8_t, 64> qe_report_signature{};  // r||s by the PCK leaf key
  Bytes qe_auth_data;
  std::uint16_t pck_cert_data_type = 0;  // inner: 5
  std::string pck_cert_chain_pem;        // leaf, intermediate CA, root (trailing NULs removed)

  // Bytes of the quote proper; anything after it in the input was ignored.
  std::size_t size = 0;
};

// Parses a v4 or v5 TDX quote. Every length field is honoured and bytes after the signature
// data are ignored (real quotes come with padding). Errors:
//   "tdx.quote.truncated"      a field does not fit (the message names it)
//   "tdx.quote.version"        not 4 or 5
//   "tdx.quote.att_key_type"   not 2 (ECDSA-256 with P-256)
//   "tdx.quote.tee_type"       not 0x81 (TDX)
//   "tdx.quote.body_type"      v5 body type not 2/3, or its size not 584/648
//   "tdx.quote.cert_data_type" outer certification data not 6, or inner not 5
//   "tdx.quote.length"         a declared size disagrees with the structure it contains
Result<Quote> parse_quote(ByteView data);

}  // namespace confpod::tdx
