#include "attest/tdx/quote.h"

#include <algorithm>
#include <cstring>

namespace confpod::tdx {

namespace {

constexpr const char* kTruncated = "tdx.quote.truncated";

template <std::size_t N>
Status read_array(ByteReader& reader, std::array<std::uint8_t, N>& out, std::string_view field) {
  CONFPOD_ASSIGN_OR_RETURN(ByteView bytes, reader.take(N, field));
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return ok_status();
}

Status parse_header(ByteReader& reader, QuoteHeader& header) {
  CONFPOD_ASSIGN_OR_RETURN(header.version, reader.u16("header.version"));
  if (header.version != 4 && header.version != 5)
    return make_error("tdx.quote.version",
                      "quote version " + std::to_string(header.version) + " (expected 4 or 5)");
  CONFPOD_ASSIGN_OR_RETURN(header.att_key_type, reader.u16("header.att_key_type"));
  if (header.att_key_type != kAttestationKeyEcdsaP256)
    return make_error("tdx.quote.att_key_type", "attestation key type " +
                                                    std::to_string(header.att_key_type) +
                                                    " (expected 2, ECDSA-256 with P-256)");
  CONFPOD_ASSIGN_OR_RETURN(header.tee_type, reader.u32("header.tee_type"));
  if (header.tee_type != kTeeTypeTdx)
    return make_error("tdx.quote.tee_type",
                      "TEE type " + std::to_string(header.tee_type) + " (expected 0x81, TDX)");
  CONFPOD_ASSIGN_OR_RETURN(header.qe_svn, reader.u16("header.qe_svn"));
  CONFPOD_ASSIGN_OR_RETURN(header.pce_svn, reader.u16("header.pce_svn"));
  CONFPOD_TRY(read_array(reader, header.qe_vendor_id, "header.qe_vendor_id"));
  CONFPOD_TRY(read_array(reader, header.user_data, "header.user_data"));
  return ok_status();
}

Status parse_td_report(ByteView body, bool td15, TdReport& report) {
  ByteReader reader(body, kTruncated);
  CONFPOD_TRY(read_array(reader, report.tee_tcb_svn, "body.tee_tcb_svn"));
  CONFPOD_TRY(read_array(reader, report.mr_seam, "body.mr_seam"));
  CONFPOD_TRY(read_array(reader, report.mr_signer_seam, "body.mr_signer_seam"));
  CONFPOD_TRY(read_array(reader, report.seam_attributes, "body.seam_attributes"));
  CONFPOD_TRY(read_array(reader, report.td_attributes, "body.td_attributes"));
  CONFPOD_TRY(read_array(reader, report.xfam, "body.xfam"));
  CONFPOD_TRY(read_array(reader, report.mr_td, "body.mr_td"));
  CONFPOD_TRY(read_array(reader, report.mr_config_id, "body.mr_config_id"));
  CONFPOD_TRY(read_array(reader, report.mr_owner, "body.mr_owner"));
  CONFPOD_TRY(read_array(reader, report.mr_owner_config, "body.mr_owner_config"));
  for (std::size_t i = 0; i < report.rtmr.size(); ++i)
    CONFPOD_TRY(read_array(reader, report.rtmr[i], "body.rtmr" + std::to_string(i)));
  CONFPOD_TRY(read_array(reader, report.report_data, "body.report_data"));
  report.td15 = td15;
  if (td15) {
    CONFPOD_TRY(read_array(reader, report.tee_tcb_svn2, "body.tee_tcb_svn2"));
    CONFPOD_TRY(read_array(reader, report.mr_servicetd, "body.mr_servicetd"));
  }
  return ok_status();
}

QeReport parse_qe_report(ByteView raw) {  // raw.size() == kQeReportSize, checked by the caller
  QeReport r;
  const std::uint8_t* p = raw.data();
  std::memcpy(r.cpu_svn.data(), p, 16);
  r.miscselect = load_le32(p + 16);
  std::memcpy(r.attributes.data(), p + 48, 16);
  std::memcpy(r.mr_enclave.data(), p + 64, 32);
  std::memcpy(r.mr_signer.data(), p + 128, 32);
  r.isv_prod_id = load_le16(p + 256);
  r.isv_svn = load_le16(p + 258);
  std::memcpy(r.report_data.data(), p + 320, 64);
  return r;
}

// Certification data type 6: QE report, its signature, QE authentication data, then the
// nested certification data (type 5, the PCK chain). `data` is exactly the declared size.
Status parse_qe_report_cert_data(ByteView data, Quote& quote) {
  ByteReader reader(data, kTruncated);
  CONFPOD_ASSIGN_OR_RETURN(ByteView qe_report, reader.take(kQeReportSize, "qe_report"));
  quote.qe_report_raw.assign(qe_report.begin(), qe_report.end());
  quote.qe_report = parse_qe_report(qe_report);
  CONFPOD_TRY(read_array(reader, quote.qe_report_signature, "qe_report_signature"));
  CONFPOD_ASSIGN_OR_RETURN(std::uint16_t auth_len, reader.u16("qe_auth_data.size"));
  CONFPOD_ASSIGN_OR_RETURN(ByteView auth, reader.take(auth_len, "qe_auth_data"));
  quote.qe_auth_data.assign(auth.begin(), auth.end());
  CONFPOD_ASSIGN_OR_RETURN(quote.pck_cert_data_type, reader.u16("pck_cert_data.type"));
  if (quote.pck_cert_data_type != kCertDataPckChain)
    return make_error("tdx.quote.cert_data_type", "inner certification data type " +
                                                      std::to_string(quote.pck_cert_data_type) +
                                                      " (expected 5, PCK certificate chain)");
  CONFPOD_ASSIGN_OR_RETURN(std::uint32_t chain_len, reader.u32("pck_cert_data.size"));
  CONFPOD_ASSIGN_OR_RETURN(ByteView chain, reader.take(chain_len, "pck_cert_data"));
  if (reader.remaining() != 0)
    return make_error("tdx.quote.length", "QE report certification data has " +
                                              std::to_string(reader.remaining()) +
                                              " bytes after the PCK certificate chain");
  // The chain is PEM text; quotes often NUL-terminate it.
  std::size_t end = chain.size();
  while (end > 0 && chain[end - 1] == 0) --end;
  quote.pck_cert_chain_pem.assign(reinterpret_cast<const char*>(chain.data()), end);
  return ok_status();
}

}  // namespace

Result<Quote> parse_quote(ByteView data) {
  Quote quote;
  ByteReader reader(data, kTruncated);
  CONFPOD_TRY(parse_header(reader, quote.header));

  std::size_t body_size = kTd10ReportSize;
  if (quote.header.version == 5) {
    CONFPOD_ASSIGN_OR_RETURN(quote.body_type, reader.u16("body.type"));
    CONFPOD_ASSIGN_OR_RETURN(std::uint32_t declared_size, reader.u32("body.size"));
    if (quote.body_type == kBodyTypeTd10) {
      body_size = kTd10ReportSize;
    } else if (quote.body_type == kBodyTypeTd15) {
      body_size = kTd15ReportSize;
    } else {
      return make_error("tdx.quote.body_type",
                        "v5 body type " + std::to_string(quote.body_type) +
                            " (expected 2, TDX 1.0 report, or 3, TDX 1.5 report)");
    }
    if (declared_size != body_size)
      return make_error("tdx.quote.body_type", "v5 body type " + std::to_string(quote.body_type) +
                                                   " declares size " +
                                                   std::to_string(declared_size) + " (expected " +
                                                   std::to_string(body_size) + ")");
  }
  CONFPOD_ASSIGN_OR_RETURN(ByteView body, reader.take(body_size, "body"));
  CONFPOD_TRY(parse_td_report(body, quote.body_type == kBodyTypeTd15, quote.body));
  quote.signed_region.assign(data.begin(), data.begin() + reader.offset());

  CONFPOD_ASSIGN_OR_RETURN(quote.signature_data_len, reader.u32("signature_data_len"));
  CONFPOD_ASSIGN_OR_RETURN(ByteView sig_data,
                           reader.take(quote.signature_data_len, "signature_data"));
  quote.size = reader.offset();  // everything after this is padding and is ignored

  ByteReader sig(sig_data, kTruncated);
  CONFPOD_TRY(read_array(sig, quote.signature, "quote_signature"));
  CONFPOD_TRY(read_array(sig, quote.attestation_key, "attestation_key"));
  CONFPOD_ASSIGN_OR_RETURN(quote.cert_data_type, sig.u16("certification_data.type"));
  if (quote.cert_data_type != kCertDataQeReport)
    return make_error("tdx.quote.cert_data_type",
                      "certification data type " + std::to_string(quote.cert_data_type) +
                          " (expected 6, QE report certification data)");
  CONFPOD_ASSIGN_OR_RETURN(std::uint32_t cert_len, sig.u32("certification_data.size"));
  CONFPOD_ASSIGN_OR_RETURN(ByteView cert_data, sig.take(cert_len, "certification_data"));
  if (sig.remaining() != 0)
    return make_error("tdx.quote.length", "signature data has " + std::to_string(sig.remaining()) +
                                              " bytes after the certification data");
  CONFPOD_TRY(parse_qe_report_cert_data(cert_data, quote));
  return quote;
}

}  // namespace confpod::tdx
