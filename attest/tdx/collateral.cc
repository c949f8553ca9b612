#include "attest/tdx/collateral.h"

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

namespace confpod::tdx {

namespace {

using nlohmann::json;

constexpr const char* kFormat = "tdx.collateral.format";

// JSON access that never throws: every accessor checks the type first. ------------------

Result<const json*> member(const json& obj, std::string_view key, const std::string& code,
                           const std::string& where) {
  if (!obj.is_object()) return make_error(code, where + " is not a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) return make_error(code, where + " lacks \"" + std::string(key) + "\"");
  return &*it;
}

Result<std::string> string_member(const json& obj, std::string_view key, const std::string& code,
                                  const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(const json* v, member(obj, key, code, where));
  if (!v->is_string()) return make_error(code, where + "." + std::string(key) + " is not a string");
  return v->get<std::string>();
}

Result<std::uint64_t> uint_member(const json& obj, std::string_view key, std::uint64_t max,
                                  const std::string& code, const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(const json* v, member(obj, key, code, where));
  if (!v->is_number_unsigned() || v->get<std::uint64_t>() > max)
    return make_error(
        code, where + "." + std::string(key) + " is not an integer in 0.." + std::to_string(max));
  return v->get<std::uint64_t>();
}

template <std::size_t N>
Result<std::array<std::uint8_t, N>> hex_member(const json& obj, std::string_view key,
                                               const std::string& code, const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(std::string text, string_member(obj, key, code, where));
  auto bytes = from_hex(text);
  if (!bytes.ok() || bytes->size() != N)
    return make_error(
        code, where + "." + std::string(key) + " is not " + std::to_string(N) + " bytes of hex");
  std::array<std::uint8_t, N> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

Result<UnixSeconds> time_member(const json& obj, std::string_view key, const std::string& code,
                                const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(std::string text, string_member(obj, key, code, where));
  auto t = parse_rfc3339(text);
  if (!t.ok()) return make_error(code, where + "." + std::string(key) + " is not an RFC 3339 time");
  return *t;
}

Result<std::string> status_member(const json& obj, const std::string& code,
                                  const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(std::string status, string_member(obj, "tcbStatus", code, where));
  if (std::find(kTcbStatuses.begin(), kTcbStatuses.end(), status) == kTcbStatuses.end())
    return make_error(code, where + ".tcbStatus \"" + status + "\" is not a known TCB status");
  return status;
}

// advisoryIDs is optional; when present it must be an array of strings.
Result<std::vector<std::string>> advisories_member(const json& obj, const std::string& code,
                                                   const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find("advisoryIDs");
  if (it == obj.end()) return out;
  if (!it->is_array()) return make_error(code, where + ".advisoryIDs is not an array");
  for (const json& id : *it) {
    if (!id.is_string()) return make_error(code, where + ".advisoryIDs holds a non-string");
    out.push_back(id.get<std::string>());
  }
  return out;
}

Result<const json*> array_member(const json& obj, std::string_view key, const std::string& code,
                                 const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(const json* v, member(obj, key, code, where));
  if (!v->is_array()) return make_error(code, where + "." + std::string(key) + " is not an array");
  return v;
}

Result<json> parse_json(std::string_view text, const std::string& code, const std::string& what) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return make_error(code, what + " is not valid JSON");
  return doc;
}

// TCB info ---------------------------------------------------------------------------------

Result<std::array<std::uint8_t, 16>> components(const json& tcb, std::string_view key,
                                                const std::string& code, const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(const json* list, array_member(tcb, key, code, where));
  if (list->size() != 16)
    return make_error(code, where + "." + std::string(key) + " does not hold 16 components");
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 16; ++i) {
    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t svn, uint_member((*list)[i], "svn", 0xFF, code,
                                                            where + "." + std::string(key)));
    out[i] = static_cast<std::uint8_t>(svn);
  }
  return out;
}

// The tcbLevels of a TDX module identity and of the QE identity share one shape: tcb.isvsvn
// (at most `max_svn`), tcbDate, tcbStatus, advisoryIDs. Highest ISVSVN first, as Intel's QVL
// keeps them (a std::set ordered by isvsvn).
template <class Level>
Result<std::vector<Level>> parse_isvsvn_levels(const json& obj, std::uint64_t max_svn,
                                               const std::string& code, const std::string& where) {
  CONFPOD_ASSIGN_OR_RETURN(const json* levels, array_member(obj, "tcbLevels", code, where));
  std::vector<Level> out;
  const std::string lw = where + ".tcbLevels[]";
  for (const json& level : *levels) {
    Level l;
    CONFPOD_ASSIGN_OR_RETURN(const json* tcb, member(level, "tcb", code, lw));
    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t isvsvn, uint_member(*tcb, "isvsvn", max_svn, code, lw));
    l.isvsvn = static_cast<decltype(l.isvsvn)>(isvsvn);
    CONFPOD_ASSIGN_OR_RETURN(l.tcb_date, string_member(level, "tcbDate", code, lw));
    CONFPOD_ASSIGN_OR_RETURN(l.tcb_status, status_member(level, code, lw));
    CONFPOD_ASSIGN_OR_RETURN(l.advisory_ids, advisories_member(level, code, lw));
    out.push_back(std::move(l));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.isvsvn > b.isvsvn; });
  return out;
}

Result<TdxModuleIdentity> parse_module(const json& obj, bool with_id_and_levels,
                                       const std::string& where) {
  const std::string code = "tdx.collateral.tcb_info";
  TdxModuleIdentity m;
  if (with_id_and_levels) {
    CONFPOD_ASSIGN_OR_RETURN(m.id, string_member(obj, "id", code, where));
  }
  CONFPOD_ASSIGN_OR_RETURN(m.mrsigner, hex_member<48>(obj, "mrsigner", code, where));
  CONFPOD_ASSIGN_OR_RETURN(m.attributes, hex_member<8>(obj, "attributes", code, where));
  CONFPOD_ASSIGN_OR_RETURN(m.attributes_mask, hex_member<8>(obj, "attributesMask", code, where));
  if (!with_id_and_levels) return m;
  CONFPOD_ASSIGN_OR_RETURN(m.tcb_levels,
                           parse_isvsvn_levels<TdxModuleTcbLevel>(obj, 0xFF, code, where));
  return m;
}

// Intel's QVL orders TCB levels (descending) by SGX components, then PCESVN, then TDX
// components, all compared lexicographically; PCS serves them in that order already.
bool higher_level(const TcbLevel& a, const TcbLevel& b) {
  if (a.sgx_components != b.sgx_components) return a.sgx_components > b.sgx_components;
  if (a.pce_svn != b.pce_svn) return a.pce_svn > b.pce_svn;
  return a.tdx_components > b.tdx_components;
}

// Raw JSON scanning, to cut a member's value out of a PCS response byte for byte. ------------

std::size_t skip_ws(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// s[i] == '"'; returns the index after the closing quote, or npos.
std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\')
      ++i;
    else if (s[i] == '"')
      return i + 1;
  }
  return std::string_view::npos;
}

std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    std::size_t depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t')
    ++i;
  return i;
}

// The exact text of the top-level member `key` of a JSON object that has already been
// validated by a full parse.
Result<std::string_view> raw_member(std::string_view doc, std::string_view key,
                                    const std::string& what) {
  const auto missing = make_error(kFormat, what + " has no \"" + std::string(key) + "\" member");
  std::size_t i = skip_ws(doc, 0);
  if (i >= doc.size() || doc[i] != '{') return missing;
  i = skip_ws(doc, i + 1);
  while (i < doc.size() && doc[i] == '"') {
    const std::size_t key_end = skip_string(doc, i);
    if (key_end == std::string_view::npos) return missing;
    const std::string_view name = doc.substr(i + 1, key_end - i - 2);
    i = skip_ws(doc, key_end);
    if (i >= doc.size() || doc[i] != ':') return missing;
    const std::size_t value_begin = skip_ws(doc, i + 1);
    const std::size_t value_end = skip_value(doc, value_begin);
    if (value_end == std::string_view::npos) return missing;
    if (name == key) return doc.substr(value_begin, value_end - value_begin);
    i = skip_ws(doc, value_end);
    if (i < doc.size() && doc[i] == ',') i = skip_ws(doc, i + 1);
  }
  return missing;
}

Result<Bytes> signature_hex(std::string_view text, const std::string& what) {
  auto sig = from_hex(text);
  if (!sig.ok() || sig->size() != 64)
    return make_error(kFormat, what + " is not 64 bytes (r||s) of hex");
  return std::move(sig).value();
}

// Time windows -----------------------------------------------------------------------------

// ASN1_TIME -> Unix seconds without depending on the process time zone.
UnixSeconds asn1_to_unix(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::numeric_limits<UnixSeconds>::min();
  // Days from civil (H. Hinnant's algorithm), proleptic Gregorian.
  const int y = tm.tm_year + 1900 - (tm.tm_mon < 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int m = tm.tm_mon + 1;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + tm.tm_mday - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

ValidityWindow crl_window(X509_CRL* crl, std::string item) {
  const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
  return {std::move(item), asn1_to_unix(X509_CRL_get0_lastUpdate(crl)),
          // A CRL without nextUpdate never expires by itself; the others still bound it.
          next ? asn1_to_unix(next) : std::numeric_limits<UnixSeconds>::max()};
}

ValidityWindow cert_window(X509* cert, const std::string& role) {
  return {role + " certificate '" + crypto::subject_name(cert) + "'", crypto::not_before(cert),
          crypto::not_after(cert)};
}

Status check_window(const ValidityWindow& w, UnixSeconds at) {
  if (at > w.not_after)
    return make_error("tdx.collateral.expired",
                      w.item + " expired at " + format_rfc3339(w.not_after) +
                          " (verification time " + format_rfc3339(at) + ")");
  if (at < w.not_before)
    return make_error("tdx.collateral.not_yet_valid",
                      w.item + " is valid only from " + format_rfc3339(w.not_before) +
                          " (verification time " + format_rfc3339(at) + ")");
  return ok_status();
}

Status verify_signed_json(std::string_view body, ByteView signature, X509* signer,
                          const std::string& what) {
  crypto::EvpPkeyPtr key = crypto::public_key(signer);
  if (!key) return make_error("tdx.collateral.signature", what + ": signer has no public key");
  if (!crypto::verify_ecdsa_concat(key.get(), crypto::Hash::kSha256, as_bytes(body), signature)
           .ok())
    return make_error("tdx.collateral.signature", what + " signature does not verify with '" +
                                                      crypto::subject_name(signer) + "'");
  return ok_status();
}

}  // namespace

// Container parsers ------------------------------------------------------------------------

Result<Collateral> parse_collateral_json(std::string_view text) {
  CONFPOD_ASSIGN_OR_RETURN(json doc, parse_json(text, kFormat, "collateral"));
  const std::string where = "collateral";
  Collateral c;
  CONFPOD_ASSIGN_OR_RETURN(c.tcb_info, string_member(doc, "tcb_info", kFormat, where));
  CONFPOD_ASSIGN_OR_RETURN(std::string tcb_sig,
                           string_member(doc, "tcb_info_signature", kFormat, where));
  CONFPOD_ASSIGN_OR_RETURN(c.tcb_info_signature, signature_hex(tcb_sig, "tcb_info_signature"));
  CONFPOD_ASSIGN_OR_RETURN(c.tcb_info_issuer_chain,
                           string_member(doc, "tcb_info_issuer_chain", kFormat, where));
  CONFPOD_ASSIGN_OR_RETURN(c.qe_identity, string_member(doc, "qe_identity", kFormat, where));
  CONFPOD_ASSIGN_OR_RETURN(std::string qe_sig,
                           string_member(doc, "qe_identity_signature", kFormat, where));
  CONFPOD_ASSIGN_OR_RETURN(c.qe_identity_signature, signature_hex(qe_sig, "qe_identity_signature"));
  CONFPOD_ASSIGN_OR_RETURN(c.qe_identity_issuer_chain,
                           string_member(doc, "qe_identity_issuer_chain", kFormat, where));
  for (auto [key, out] : {std::pair<const char*, Bytes*>{"pck_crl", &c.pck_crl},
                          std::pair<const char*, Bytes*>{"root_ca_crl", &c.root_ca_crl}}) {
    CONFPOD_ASSIGN_OR_RETURN(std::string hex, string_member(doc, key, kFormat, where));
    auto der = from_hex(hex);
    if (!der.ok() || der->empty())
      return make_error(kFormat, std::string("collateral.") + key + " is not hex of a DER CRL");
    *out = std::move(der).value();
  }
  CONFPOD_ASSIGN_OR_RETURN(c.pck_crl_issuer_chain,
                           string_member(doc, "pck_crl_issuer_chain", kFormat, where));
  return c;
}

Result<SignedObject> split_pcs_response(std::string_view response, std::string_view member) {
  const std::string what = std::string(member) + " response";
  CONFPOD_ASSIGN_OR_RETURN(json doc, parse_json(response, kFormat, what));
  CONFPOD_ASSIGN_OR_RETURN(std::string sig, string_member(doc, "signature", kFormat, what));
  SignedObject out;
  CONFPOD_ASSIGN_OR_RETURN(out.signature, signature_hex(sig, std::string(member) + " signature"));
  CONFPOD_ASSIGN_OR_RETURN(std::string_view raw, raw_member(response, member, what));
  out.body = std::string(raw);
  return out;
}

Status verify_signed_object(const SignedObject& object, X509* signer, const std::string& what) {
  return verify_signed_json(object.body, object.signature, signer, what);
}

Result<Collateral> collateral_from_pcs(std::string_view tcb_info_response,
                                       std::string_view qe_identity_response,
                                       std::string_view tcb_issuer_chain_pem, ByteView pck_crl_der,
                                       std::string_view pck_crl_issuer_chain_pem,
                                       ByteView root_crl_der) {
  Collateral c;
  CONFPOD_ASSIGN_OR_RETURN(SignedObject tcb, split_pcs_response(tcb_info_response, "tcbInfo"));
  c.tcb_info = std::move(tcb.body);
  c.tcb_info_signature = std::move(tcb.signature);
  CONFPOD_ASSIGN_OR_RETURN(SignedObject qe,
                           split_pcs_response(qe_identity_response, "enclaveIdentity"));
  c.qe_identity = std::move(qe.body);
  c.qe_identity_signature = std::move(qe.signature);
  c.tcb_info_issuer_chain = std::string(tcb_issuer_chain_pem);
  c.qe_identity_issuer_chain = std::string(tcb_issuer_chain_pem);
  c.pck_crl.assign(pck_crl_der.begin(), pck_crl_der.end());
  c.pck_crl_issuer_chain = std::string(pck_crl_issuer_chain_pem);
  c.root_ca_crl.assign(root_crl_der.begin(), root_crl_der.end());
  return c;
}

std::string collateral_to_json(const Collateral& c) {
  json doc = {
      {"tcb_info", c.tcb_info},
      {"tcb_info_signature", to_hex(c.tcb_info_signature)},
      {"tcb_info_issuer_chain", c.tcb_info_issuer_chain},
      {"qe_identity", c.qe_identity},
      {"qe_identity_signature", to_hex(c.qe_identity_signature)},
      {"qe_identity_issuer_chain", c.qe_identity_issuer_chain},
      {"pck_crl", to_hex(c.pck_crl)},
      {"pck_crl_issuer_chain", c.pck_crl_issuer_chain},
      {"root_ca_crl", to_hex(c.root_ca_crl)},
  };
  // Invalid UTF-8 cannot come from a parsed response; replacing it (rather than throwing)
  // only makes a hand-built collateral fail its signature check later.
  return doc.dump(2, ' ', false, json::error_handler_t::replace);
}

// Signed content parsers -------------------------------------------------------------------

Result<TcbInfo> parse_tcb_info(std::string_view text) {
  const std::string code = "tdx.collateral.tcb_info";
  const std::string where = "tcbInfo";
  CONFPOD_ASSIGN_OR_RETURN(json doc, parse_json(text, code, where));
  TcbInfo info;
  CONFPOD_ASSIGN_OR_RETURN(info.id, string_member(doc, "id", code, where));
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t version, uint_member(doc, "version", 1000, code, where));
  info.version = static_cast<int>(version);
  CONFPOD_ASSIGN_OR_RETURN(info.issue_date, time_member(doc, "issueDate", code, where));
  CONFPOD_ASSIGN_OR_RETURN(info.next_update, time_member(doc, "nextUpdate", code, where));
  CONFPOD_ASSIGN_OR_RETURN(info.fmspc, hex_member<6>(doc, "fmspc", code, where));
  CONFPOD_ASSIGN_OR_RETURN(info.pce_id, hex_member<2>(doc, "pceId", code, where));
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t tcb_type, uint_member(doc, "tcbType", 1000, code, where));
  info.tcb_type = static_cast<int>(tcb_type);
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t eval,
                           uint_member(doc, "tcbEvaluationDataNumber", 0xFFFFFFFF, code, where));
  info.tcb_evaluation_data_number = static_cast<std::uint32_t>(eval);
  CONFPOD_ASSIGN_OR_RETURN(const json* module, member(doc, "tdxModule", code, where));
  CONFPOD_ASSIGN_OR_RETURN(info.tdx_module, parse_module(*module, false, where + ".tdxModule"));
  if (auto it = doc.find("tdxModuleIdentities"); it != doc.end()) {
    if (!it->is_array()) return make_error(code, "tcbInfo.tdxModuleIdentities is not an array");
    for (const json& identity : *it) {
      CONFPOD_ASSIGN_OR_RETURN(TdxModuleIdentity m,
                               parse_module(identity, true, where + ".tdxModuleIdentities[]"));
      info.tdx_module_identities.push_back(std::move(m));
    }
  }
  CONFPOD_ASSIGN_OR_RETURN(const json* levels, array_member(doc, "tcbLevels", code, where));
  for (const json& level : *levels) {
    const std::string lw = where + ".tcbLevels[]";
    TcbLevel l;
    CONFPOD_ASSIGN_OR_RETURN(const json* tcb, member(level, "tcb", code, lw));
    CONFPOD_ASSIGN_OR_RETURN(l.sgx_components, components(*tcb, "sgxtcbcomponents", code, lw));
    CONFPOD_ASSIGN_OR_RETURN(std::uint64_t pce, uint_member(*tcb, "pcesvn", 0xFFFF, code, lw));
    l.pce_svn = static_cast<std::uint16_t>(pce);
    CONFPOD_ASSIGN_OR_RETURN(l.tdx_components, components(*tcb, "tdxtcbcomponents", code, lw));
    CONFPOD_ASSIGN_OR_RETURN(l.tcb_date, string_member(level, "tcbDate", code, lw));
    CONFPOD_ASSIGN_OR_RETURN(l.tcb_status, status_member(level, code, lw));
    CONFPOD_ASSIGN_OR_RETURN(l.advisory_ids, advisories_member(level, code, lw));
    info.tcb_levels.push_back(std::move(l));
  }
  std::stable_sort(info.tcb_levels.begin(), info.tcb_levels.end(), higher_level);
  return info;
}

Result<QeIdentity> parse_qe_identity(std::string_view text) {
  const std::string code = "tdx.collateral.qe_identity";
  const std::string where = "enclaveIdentity";
  CONFPOD_ASSIGN_OR_RETURN(json doc, parse_json(text, code, where));
  QeIdentity qe;
  CONFPOD_ASSIGN_OR_RETURN(qe.id, string_member(doc, "id", code, where));
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t version, uint_member(doc, "version", 1000, code, where));
  qe.version = static_cast<int>(version);
  CONFPOD_ASSIGN_OR_RETURN(qe.issue_date, time_member(doc, "issueDate", code, where));
  CONFPOD_ASSIGN_OR_RETURN(qe.next_update, time_member(doc, "nextUpdate", code, where));
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t eval,
                           uint_member(doc, "tcbEvaluationDataNumber", 0xFFFFFFFF, code, where));
  qe.tcb_evaluation_data_number = static_cast<std::uint32_t>(eval);
  // miscselect is served as the hex of the little-endian u32 (as it sits in the report).
  CONFPOD_ASSIGN_OR_RETURN(auto misc, hex_member<4>(doc, "miscselect", code, where));
  CONFPOD_ASSIGN_OR_RETURN(auto misc_mask, hex_member<4>(doc, "miscselectMask", code, where));
  qe.miscselect = load_le32(misc.data());
  qe.miscselect_mask = load_le32(misc_mask.data());
  CONFPOD_ASSIGN_OR_RETURN(qe.attributes, hex_member<16>(doc, "attributes", code, where));
  CONFPOD_ASSIGN_OR_RETURN(qe.attributes_mask, hex_member<16>(doc, "attributesMask", code, where));
  CONFPOD_ASSIGN_OR_RETURN(qe.mrsigner, hex_member<32>(doc, "mrsigner", code, where));
  CONFPOD_ASSIGN_OR_RETURN(std::uint64_t prodid,
                           uint_member(doc, "isvprodid", 0xFFFF, code, where));
  qe.isvprodid = static_cast<std::uint16_t>(prodid);
  CONFPOD_ASSIGN_OR_RETURN(qe.tcb_levels,
                           parse_isvsvn_levels<QeTcbLevel>(doc, 0xFFFF, code, where));
  return qe;
}

// Chains -----------------------------------------------------------------------------------

Result<std::vector<crypto::X509Ptr>> parse_pem_chain_strict(std::string_view pem,
                                                            const std::string& error_code,
                                                            const std::string& what) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  std::size_t blocks = 0;
  for (std::size_t i = pem.find(kBegin); i != std::string_view::npos;
       i = pem.find(kBegin, i + kBegin.size()))
    ++blocks;
  auto certs = crypto::parse_pem_certificates(pem);
  if (!certs.ok()) return make_error(error_code, what + ": no parsable PEM certificate");
  if (certs->size() != blocks)
    return make_error(error_code, what + ": " + std::to_string(blocks) +
                                      " PEM certificate blocks but only " +
                                      std::to_string(certs->size()) + " parse");
  return std::move(certs).value();
}

Status verify_chain_to_root(const std::vector<crypto::X509Ptr>& chain, X509* trusted_root,
                            X509_CRL* root_crl, UnixSeconds at, const ChainErrorCodes& codes,
                            const std::string& what) {
  if (trusted_root == nullptr) return make_error(codes.chain, what + ": no trusted root given");
  std::size_t n = chain.size();
  if (n > 0 && X509_check_issued(chain[n - 1].get(), chain[n - 1].get()) == X509_V_OK) {
    // A self-issued last certificate is the chain's root: it must be ours, byte for byte.
    if (!crypto::same_certificate(chain[n - 1].get(), trusted_root))
      return make_error(codes.chain, what + ": chain ends in '" +
                                         crypto::subject_name(chain[n - 1].get()) +
                                         "', not the pinned Intel SGX Root CA");
    --n;
  }
  if (n == 0) return make_error(codes.chain, what + ": chain has no certificate below the root");
  if (!crypto::check_validity(trusted_root, at).ok())
    return make_error(codes.validity,
                      what + ": the trusted root is not valid at " + format_rfc3339(at));
  for (std::size_t i = 0; i < n; ++i) {
    X509* cert = chain[i].get();
    X509* issuer = i + 1 < n ? chain[i + 1].get() : trusted_root;
    if (auto v = crypto::check_validity(cert, at); !v.ok())
      return make_error(codes.validity, what + ": " + v.error().message);
    if (X509_check_ca(issuer) < 1)
      return make_error(codes.chain,
                        what + ": issuer '" + crypto::subject_name(issuer) + "' is not a CA");
    if (auto s = crypto::verify_certificate_signature(cert, issuer); !s.ok())
      return make_error(codes.chain, what + ": " + s.error().message);
    if (issuer == trusted_root && root_crl != nullptr && crypto::is_revoked(root_crl, cert))
      return make_error(codes.revoked, what + ": '" + crypto::subject_name(cert) +
                                           "' is revoked by the root CA CRL");
  }
  return ok_status();
}

// Verification -----------------------------------------------------------------------------

Status check_collateral_time(const VerifiedCollateral& collateral, UnixSeconds at) {
  for (const ValidityWindow& w : collateral.windows) CONFPOD_TRY(check_window(w, at));
  return ok_status();
}

Result<VerifiedCollateral> verify_collateral(const Collateral& c, X509* trusted_root,
                                             UnixSeconds at) {
  if (trusted_root == nullptr) return make_error("tdx.collateral.chain", "no trusted root given");
  const ChainErrorCodes codes{"tdx.collateral.chain", "tdx.collateral.chain",
                              "tdx.collateral.chain"};
  VerifiedCollateral v;
  v.root = crypto::clone(trusted_root);

  // Parse everything first so that the windows can be checked before any signature.
  auto root_crl = crypto::parse_crl(c.root_ca_crl);
  if (!root_crl.ok()) return make_error(kFormat, "root_ca_crl: " + root_crl.error().message);
  v.root_ca_crl = std::move(root_crl).value();
  auto pck_crl = crypto::parse_crl(c.pck_crl);
  if (!pck_crl.ok()) return make_error(kFormat, "pck_crl: " + pck_crl.error().message);
  v.pck_crl = std::move(pck_crl).value();
  CONFPOD_ASSIGN_OR_RETURN(auto tcb_chain, parse_pem_chain_strict(c.tcb_info_issuer_chain, kFormat,
                                                                  "tcb_info_issuer_chain"));
  CONFPOD_ASSIGN_OR_RETURN(
      auto qe_chain,
      parse_pem_chain_strict(c.qe_identity_issuer_chain, kFormat, "qe_identity_issuer_chain"));
  CONFPOD_ASSIGN_OR_RETURN(auto crl_chain, parse_pem_chain_strict(c.pck_crl_issuer_chain, kFormat,
                                                                  "pck_crl_issuer_chain"));
  CONFPOD_ASSIGN_OR_RETURN(v.tcb_info, parse_tcb_info(c.tcb_info));
  CONFPOD_ASSIGN_OR_RETURN(v.qe_identity, parse_qe_identity(c.qe_identity));

  // 1. Windows: the JSON items, the CRLs and the certificates that sign them.
  v.windows.push_back({"tcb_info", v.tcb_info.issue_date, v.tcb_info.next_update});
  v.windows.push_back({"qe_identity", v.qe_identity.issue_date, v.qe_identity.next_update});
  v.windows.push_back(crl_window(v.pck_crl.get(), "pck_crl"));
  v.windows.push_back(crl_window(v.root_ca_crl.get(), "root_ca_crl"));
  for (const auto* chain : {&tcb_chain, &qe_chain, &crl_chain})
    for (const auto& cert : *chain)
      if (!crypto::same_certificate(cert.get(), trusted_root))
        v.windows.push_back(cert_window(cert.get(), "collateral"));
  v.windows.push_back(cert_window(trusted_root, "root"));
  v.valid_from = std::numeric_limits<UnixSeconds>::min();
  v.expires = std::numeric_limits<UnixSeconds>::max();
  for (const ValidityWindow& w : v.windows) {
    v.valid_from = std::max(v.valid_from, w.not_before);
    v.expires = std::min(v.expires, w.not_after);
  }
  CONFPOD_TRY(check_collateral_time(v, at));

  // 2. The root CA CRL, signed by the root itself.
  if (!crypto::verify_crl_signature(v.root_ca_crl.get(), trusted_root).ok())
    return make_error("tdx.collateral.crl", "root_ca_crl is not signed by the trusted root");

  // 3 + 4. TCB info and QE identity: chain to the root, then the signature over the bytes.
  CONFPOD_TRY(verify_chain_to_root(tcb_chain, trusted_root, v.root_ca_crl.get(), at, codes,
                                   "tcb_info_issuer_chain"));
  CONFPOD_TRY(verify_signed_json(c.tcb_info, c.tcb_info_signature, tcb_chain[0].get(), "tcb_info"));
  CONFPOD_TRY(verify_chain_to_root(qe_chain, trusted_root, v.root_ca_crl.get(), at, codes,
                                   "qe_identity_issuer_chain"));
  CONFPOD_TRY(
      verify_signed_json(c.qe_identity, c.qe_identity_signature, qe_chain[0].get(), "qe_identity"));

  // 5. Only TDX TCB info (v3) and the TD Quoting Enclave's identity (v2) apply to TDX quotes.
  if (v.tcb_info.id != "TDX" || v.tcb_info.version != 3)
    return make_error("tdx.collateral.tcb_info",
                      "TCB info is id \"" + v.tcb_info.id + "\" version " +
                          std::to_string(v.tcb_info.version) + " (expected \"TDX\" version 3)");
  if (v.qe_identity.id != "TD_QE" || v.qe_identity.version != 2)
    return make_error("tdx.collateral.qe_identity", "QE identity is id \"" + v.qe_identity.id +
                                                        "\" version " +
                                                        std::to_string(v.qe_identity.version) +
                                                        " (expected \"TD_QE\" version 2)");

  // 6. The PCK CRL, signed by the CA at the bottom of its chain.
  CONFPOD_TRY(verify_chain_to_root(crl_chain, trusted_root, v.root_ca_crl.get(), at, codes,
                                   "pck_crl_issuer_chain"));
  if (!crypto::verify_crl_signature(v.pck_crl.get(), crl_chain[0].get()).ok())
    return make_error("tdx.collateral.crl", "pck_crl is not signed by '" +
                                                crypto::subject_name(crl_chain[0].get()) + "'");
  v.pck_crl_issuer = crypto::clone(crl_chain[0].get());
  return v;
}

}  // namespace confpod::tdx
