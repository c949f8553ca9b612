#include "attest/collateral/collateral.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <memory>
#include <nlohmann/json.hpp>

#include "attest/base/json_scan.h"
#include "attest/crypto/crypto.h"
#include "attest/snp/report.h"
#include "attest/snp/roots.h"
#include "attest/snp/verify.h"
#include "attest/tdx/collateral.h"
#include "attest/tdx/pck.h"
#include "attest/tdx/roots.h"

namespace confpod::collateral {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<Kind, std::string_view>, 12> kKindNames = {{
    {Kind::kSnpVcek, "snp-vcek"},
    {Kind::kSnpVlek, "snp-vlek"},
    {Kind::kSnpAsk, "snp-ask"},
    {Kind::kSnpAsvk, "snp-asvk"},
    {Kind::kSnpArk, "snp-ark"},
    {Kind::kSnpCrl, "snp-crl"},
    {Kind::kIntelCa, "intel-ca"},
    {Kind::kIntelPck, "intel-pck"},
    {Kind::kTdxPckCrl, "tdx-pck-crl"},
    {Kind::kTdxRootCrl, "tdx-root-crl"},
    {Kind::kTdxTcbInfo, "tdx-tcb-info"},
    {Kind::kTdxQeIdentity, "tdx-qe-identity"},
}};

constexpr std::string_view kPlatformCa = "Intel SGX PCK Platform CA";
constexpr std::string_view kProcessorCa = "Intel SGX PCK Processor CA";
constexpr std::string_view kRootCa = "Intel SGX Root CA";
constexpr std::string_view kTcbSigning = "Intel SGX TCB Signing";

Error format_error(std::string_view name, const std::string& message) {
  return make_error("collateral.format", std::string(name) + ": " + message);
}

Error untrusted(const Item& item, const std::string& message) {
  return make_error("collateral.untrusted", item.subject + ": " + message);
}

std::string common_name(const X509_NAME* name) {
  char buf[256] = {};
  int n = X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(name), NID_commonName, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::string day(UnixSeconds t) { return format_rfc3339(t).substr(0, 10); }

Bytes der_of(X509* cert) {
  unsigned char* out = nullptr;
  int n = i2d_X509(cert, &out);
  Bytes der;
  if (n > 0) der.assign(out, out + n);
  OPENSSL_free(out);
  return der;
}

Bytes der_of(X509_CRL* crl) {
  unsigned char* out = nullptr;
  int n = i2d_X509_CRL(crl, &out);
  Bytes der;
  if (n > 0) der.assign(out, out + n);
  OPENSSL_free(out);
  return der;
}

Result<snp::Product> product_of(std::string_view text, std::string_view name) {
  auto product = snp::parse_product(text);
  if (!product.ok())
    return format_error(name, "unknown SEV-SNP product \"" + std::string(text) + "\"");
  return *product;
}

Result<Item> classify_certificate(X509* cert, std::string_view name) {
  Item item;
  const std::string subject = common_name(X509_get_subject_name(cert));
  item.not_after = crypto::not_after(cert);
  item.data = der_of(cert);
  const std::string until = ", valid until " + day(item.not_after);
  if (subject == "SEV-VCEK" || subject == "SEV-VLEK") {
    auto id = snp::read_vek_identity(cert);
    if (!id.ok()) return format_error(name, id.error().message);
    const std::string product(snp::product_name(id->product));
    const std::string tcb = tcb_key(snp::encode_tcb(id->tcb, id->product));
    if (id->kind == snp::SigningKey::kVcek) {
      item.kind = Kind::kSnpVcek;
      item.key = product + "/" + to_hex(id->hwid) + "/" + tcb;
      item.subject = "VCEK " + product + " chip " + to_hex(id->hwid).substr(0, 16) + "… TCB " +
                     snp::to_string(id->tcb);
    } else {
      item.kind = Kind::kSnpVlek;
      item.key = product + "/" + tcb;
      item.subject = "VLEK " + product + " TCB " + snp::to_string(id->tcb);
    }
  } else if (subject.starts_with("ARK-")) {
    CONFPOD_ASSIGN_OR_RETURN(snp::Product p, product_of(subject.substr(4), name));
    item.kind = Kind::kSnpArk;
    item.key = std::string(snp::product_name(p));
    item.subject = "ARK " + item.key;
  } else if (subject.starts_with("SEV-VLEK-")) {
    CONFPOD_ASSIGN_OR_RETURN(snp::Product p, product_of(subject.substr(9), name));
    item.kind = Kind::kSnpAsvk;
    item.key = std::string(snp::product_name(p));
    item.subject = "ASVK " + item.key;
  } else if (subject.starts_with("SEV-")) {
    CONFPOD_ASSIGN_OR_RETURN(snp::Product p, product_of(subject.substr(4), name));
    item.kind = Kind::kSnpAsk;
    item.key = std::string(snp::product_name(p));
    item.subject = "ASK " + item.key;
  } else if (subject == "Intel SGX PCK Certificate") {
    auto ext = tdx::parse_pck_extensions(cert);
    if (!ext.ok()) return format_error(name, ext.error().message);
    item.kind = Kind::kIntelPck;
    item.key = to_hex(ext->fmspc);
    item.subject = "PCK certificate FMSPC " + item.key;
  } else if (subject.starts_with("Intel SGX ")) {
    item.kind = Kind::kIntelCa;
    item.key = subject;
    item.subject = subject;
  } else {
    return format_error(name, "certificate '" + crypto::subject_name(cert) +
                                  "' is neither AMD SEV-SNP nor Intel SGX/TDX collateral");
  }
  item.subject += until;
  return item;
}

Result<Item> classify_crl(X509_CRL* crl, std::string_view name) {
  Item item;
  const std::string issuer = common_name(X509_CRL_get_issuer(crl));
  item.not_after = crypto::crl_next_update(crl);
  item.data = der_of(crl);
  if (issuer.starts_with("ARK-")) {
    CONFPOD_ASSIGN_OR_RETURN(snp::Product p, product_of(issuer.substr(4), name));
    item.kind = Kind::kSnpCrl;
    item.key = std::string(snp::product_name(p));
    item.subject = "AMD CRL " + item.key;
  } else if (issuer == kPlatformCa || issuer == kProcessorCa) {
    item.kind = Kind::kTdxPckCrl;
    item.key = issuer == kPlatformCa ? "platform" : "processor";
    item.subject = "PCK CRL " + item.key;
  } else if (issuer == kRootCa) {
    item.kind = Kind::kTdxRootCrl;
    item.key = "root";
    item.subject = "Intel root CA CRL";
  } else {
    return format_error(name, "a CRL of '" + crypto::crl_issuer_name(crl) +
                                  "', which issues no SEV-SNP or TDX collateral");
  }
  item.subject += ", next update " + day(item.not_after);
  return item;
}

// An Intel PCS response ({"tcbInfo"|"enclaveIdentity": {...}, "signature": "..."}).
Result<Item> classify_pcs_response(std::string_view text, std::string_view member,
                                   std::string_view name) {
  auto signed_object = tdx::split_pcs_response(text, member);
  if (!signed_object.ok()) return format_error(name, signed_object.error().message);
  Item item;
  item.data = Bytes(text.begin(), text.end());
  if (member == "tcbInfo") {
    auto info = tdx::parse_tcb_info(signed_object->body);
    if (!info.ok()) return format_error(name, info.error().message);
    if (info->id != "TDX")
      return format_error(name, "TCB info with id \"" + info->id +
                                    "\": TDX needs the one PCS serves under "
                                    "/tdx/certification/v4/tcb");
    item.kind = Kind::kTdxTcbInfo;
    item.key = to_hex(info->fmspc);
    item.not_after = info->next_update;
    item.subject = "TDX TCB info FMSPC " + item.key + ", evaluation data number " +
                   std::to_string(info->tcb_evaluation_data_number);
  } else {
    auto identity = tdx::parse_qe_identity(signed_object->body);
    if (!identity.ok()) return format_error(name, identity.error().message);
    if (identity->id != "TD_QE")
      return format_error(name, "QE identity with id \"" + identity->id +
                                    "\": TDX needs TD_QE (/tdx/certification/v4/qe/identity)");
    item.kind = Kind::kTdxQeIdentity;
    item.key = "TD_QE";
    item.not_after = identity->next_update;
    item.subject = "TDX QE identity, evaluation data number " +
                   std::to_string(identity->tcb_evaluation_data_number);
  }
  item.subject += ", next update " + day(item.not_after);
  return item;
}

Result<std::vector<Item>> parse_pem(std::string_view text, std::string_view name);

Result<Item> classify_der_crl(ByteView der, std::string_view name) {
  auto crl = crypto::parse_crl(der);
  if (!crl.ok()) return format_error(name, "a CRL that does not parse");
  return classify_crl(crl->get(), name);
}

// dcap-qvl's QuoteCollateralV3 JSON: every part as its own item.
Result<std::vector<Item>> split_dcap_collateral(std::string_view text, std::string_view name) {
  auto c = tdx::parse_collateral_json(text);
  if (!c.ok()) return format_error(name, c.error().message);
  std::vector<Item> out;
  auto response = [](std::string_view member, const std::string& body, const Bytes& sig) {
    return "{\"" + std::string(member) + "\":" + body + ",\"signature\":\"" + to_hex(sig) + "\"}";
  };
  CONFPOD_ASSIGN_OR_RETURN(
      Item tcb, classify_pcs_response(response("tcbInfo", c->tcb_info, c->tcb_info_signature),
                                      "tcbInfo", name));
  out.push_back(std::move(tcb));
  CONFPOD_ASSIGN_OR_RETURN(
      Item qe,
      classify_pcs_response(response("enclaveIdentity", c->qe_identity, c->qe_identity_signature),
                            "enclaveIdentity", name));
  out.push_back(std::move(qe));
  for (const std::string* chain :
       {&c->tcb_info_issuer_chain, &c->qe_identity_issuer_chain, &c->pck_crl_issuer_chain}) {
    CONFPOD_ASSIGN_OR_RETURN(auto certs, parse_pem(*chain, name));
    for (Item& i : certs) out.push_back(std::move(i));
  }
  CONFPOD_ASSIGN_OR_RETURN(Item pck_crl, classify_der_crl(c->pck_crl, name));
  out.push_back(std::move(pck_crl));
  CONFPOD_ASSIGN_OR_RETURN(Item root_crl, classify_der_crl(c->root_ca_crl, name));
  out.push_back(std::move(root_crl));
  return out;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct OpenSslFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};

Result<std::vector<Item>> parse_pem(std::string_view text, std::string_view name) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return format_error(name, "out of memory");
  std::vector<Item> out;
  while (true) {
    char* raw_type = nullptr;
    char* raw_header = nullptr;
    unsigned char* raw_data = nullptr;
    long len = 0;
    const int ok = PEM_read_bio(bio.get(), &raw_type, &raw_header, &raw_data, &len);
    std::unique_ptr<char, OpenSslFree> type(raw_type), header(raw_header);
    std::unique_ptr<unsigned char, OpenSslFree> data(raw_data);
    if (ok == 0) break;  // no further block (text between blocks is ignored, as openssl does)
    const std::string block = raw_type;
    ByteView der(raw_data, static_cast<std::size_t>(len));
    if (block == "CERTIFICATE") {
      auto cert = crypto::parse_certificate(der);
      if (!cert.ok()) return format_error(name, "a CERTIFICATE block that does not parse");
      CONFPOD_ASSIGN_OR_RETURN(Item item, classify_certificate(cert->get(), name));
      out.push_back(std::move(item));
    } else if (block == "X509 CRL") {
      CONFPOD_ASSIGN_OR_RETURN(Item item, classify_der_crl(der, name));
      out.push_back(std::move(item));
    } else {
      return format_error(name, "a PEM block of type \"" + block.substr(0, 40) +
                                    "\" (only CERTIFICATE and X509 CRL are collateral)");
    }
  }
  ERR_clear_error();
  if (out.empty()) return format_error(name, "no PEM certificate or CRL in it");
  return out;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
    s.remove_prefix(1);
  return s;
}

Status check_time(const Item& item, UnixSeconds not_before, UnixSeconds now) {
  if (now > item.not_after)
    return make_error("collateral.expired",
                      item.subject + ": expired on " + format_rfc3339(item.not_after));
  if (not_before != 0 && now < not_before)
    return make_error("collateral.untrusted",
                      item.subject + ": not valid before " + format_rfc3339(not_before));
  return ok_status();
}

const Item* find_ca(const std::vector<Item>& known, std::string_view subject) {
  for (const Item& i : known)
    if (i.kind == Kind::kIntelCa && i.key == subject) return &i;
  return nullptr;
}

// An Intel CA from `known`, verified to the pinned root, parsed.
Result<crypto::X509Ptr> intel_issuer(const Item& item, std::string_view subject,
                                     const std::vector<Item>& known, UnixSeconds now) {
  const Item* ca = find_ca(known, subject);
  if (ca == nullptr)
    return make_error("collateral.issuer_missing",
                      item.subject + ": its issuer '" + std::string(subject) +
                          "' is not in the store; import its issuer chain too (PCS serves it "
                          "in a response header; save it as PEM)");
  CONFPOD_TRY(verify_item(*ca, known, now));
  return crypto::parse_certificate(ca->data);
}

}  // namespace

std::string_view kind_name(Kind kind) {
  for (const auto& [k, name] : kKindNames)
    if (k == kind) return name;
  return "?";
}

std::optional<Kind> parse_kind(std::string_view name) {
  for (const auto& [k, n] : kKindNames)
    if (n == name) return k;
  return std::nullopt;
}

std::string Item::id() const { return to_hex(crypto::sha256(data)).substr(0, 16); }

std::string tcb_key(ByteView raw_tcb) { return to_hex(raw_tcb); }

Result<std::vector<Item>> parse_file(ByteView contents, std::string_view name) {
  if (contents.size() > kMaxFileSize)
    return make_error("collateral.size",
                      std::string(name) + ": " + std::to_string(contents.size()) +
                          " bytes, more than the limit of " + std::to_string(kMaxFileSize));
  if (contents.empty()) return format_error(name, "empty");
  std::string_view text(reinterpret_cast<const char*>(contents.data()), contents.size());
  std::vector<Item> items;
  if (trimmed(text).starts_with("{")) {
    if (scan_json(text, JsonLimits{32}) != JsonScan::kWithinLimits)
      return format_error(name, "JSON nested deeper than 32 levels, or unbalanced");
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
      return format_error(name, "JSON that does not parse");
    if (doc.contains("tcbInfo")) {
      CONFPOD_ASSIGN_OR_RETURN(Item item, classify_pcs_response(text, "tcbInfo", name));
      items.push_back(std::move(item));
    } else if (doc.contains("enclaveIdentity")) {
      CONFPOD_ASSIGN_OR_RETURN(Item item, classify_pcs_response(text, "enclaveIdentity", name));
      items.push_back(std::move(item));
    } else if (doc.contains("tcb_info") && doc.contains("qe_identity")) {
      CONFPOD_ASSIGN_OR_RETURN(items, split_dcap_collateral(text, name));
    } else {
      return format_error(name,
                          "JSON that is neither a PCS TCB info or QE identity response "
                          "nor dcap-qvl collateral");
    }
  } else if (text.find("-----BEGIN ") != std::string_view::npos) {
    CONFPOD_ASSIGN_OR_RETURN(items, parse_pem(text, name));
  } else if (auto cert = crypto::parse_certificate(contents); cert.ok()) {
    CONFPOD_ASSIGN_OR_RETURN(Item item, classify_certificate(cert->get(), name));
    items.push_back(std::move(item));
  } else if (auto crl = crypto::parse_crl(contents); crl.ok()) {
    CONFPOD_ASSIGN_OR_RETURN(Item item, classify_crl(crl->get(), name));
    items.push_back(std::move(item));
  } else {
    return format_error(name, "neither PEM, a DER certificate or CRL, nor PCS JSON");
  }
  // One copy of each (a chain file repeats the root an earlier file brought).
  std::vector<Item> unique;
  for (Item& i : items)
    if (std::none_of(unique.begin(), unique.end(), [&](const Item& u) { return u.data == i.data; }))
      unique.push_back(std::move(i));
  return unique;
}

Status verify_item(const Item& item, const std::vector<Item>& known, UnixSeconds now) {
  switch (item.kind) {
    case Kind::kSnpVcek:
    case Kind::kSnpVlek: {
      auto cert = crypto::parse_certificate(item.data);
      if (!cert.ok()) return untrusted(item, cert.error().message);
      // The ASK/ASVK is AMD's compiled-in one, and the ARK is pinned: an imported VCEK must
      // chain to them.
      auto chain = snp::verify_chain(cert->get(), nullptr, nullptr, std::nullopt, now);
      if (!chain.ok()) {
        if (chain.error().code == "snp.chain.validity" && now > item.not_after)
          return make_error("collateral.expired", item.subject + ": " + chain.error().message);
        return untrusted(item, chain.error().message);
      }
      return ok_status();
    }
    case Kind::kSnpAsk:
    case Kind::kSnpAsvk:
    case Kind::kSnpArk: {
      auto cert = crypto::parse_certificate(item.data);
      if (!cert.ok()) return untrusted(item, cert.error().message);
      CONFPOD_ASSIGN_OR_RETURN(snp::Product product, product_of(item.key, item.subject));
      crypto::X509Ptr ark = snp::builtin_ark(product);
      if (item.kind == Kind::kSnpArk) {
        if (!crypto::same_certificate(cert->get(), ark.get()))
          return untrusted(item, "not AMD's pinned " + item.key + " ARK");
      } else if (auto s = crypto::verify_certificate_signature(cert->get(), ark.get()); !s.ok()) {
        return untrusted(item, "not signed by AMD's " + item.key + " ARK: " + s.error().message);
      }
      return check_time(item, crypto::not_before(cert->get()), now);
    }
    case Kind::kSnpCrl: {
      auto crl = crypto::parse_crl(item.data);
      if (!crl.ok()) return untrusted(item, crl.error().message);
      CONFPOD_ASSIGN_OR_RETURN(snp::Product product, product_of(item.key, item.subject));
      crypto::X509Ptr ark = snp::builtin_ark(product);
      if (auto s = crypto::verify_crl_signature(crl->get(), ark.get()); !s.ok())
        return untrusted(item, "not signed by AMD's " + item.key + " ARK: " + s.error().message);
      return check_time(item, 0, now);
    }
    case Kind::kIntelCa:
    case Kind::kIntelPck: {
      auto cert = crypto::parse_certificate(item.data);
      if (!cert.ok()) return untrusted(item, cert.error().message);
      crypto::X509Ptr root = tdx::intel_sgx_root_ca();
      const std::string issuer = common_name(X509_get_issuer_name(cert->get()));
      if (item.kind == Kind::kIntelCa && item.key == kRootCa) {
        if (!crypto::same_certificate(cert->get(), root.get()))
          return untrusted(item, "not Intel's pinned SGX Root CA");
      } else if (issuer == kRootCa) {
        if (auto s = crypto::verify_certificate_signature(cert->get(), root.get()); !s.ok())
          return untrusted(item, "not signed by Intel's SGX Root CA: " + s.error().message);
      } else if (item.kind == Kind::kIntelPck &&
                 (issuer == kPlatformCa || issuer == kProcessorCa)) {
        CONFPOD_ASSIGN_OR_RETURN(crypto::X509Ptr ca, intel_issuer(item, issuer, known, now));
        if (auto s = crypto::verify_certificate_signature(cert->get(), ca.get()); !s.ok())
          return untrusted(item, "not signed by '" + issuer + "': " + s.error().message);
      } else {
        return untrusted(item, "issued by '" + issuer + "', which does not chain to Intel's root");
      }
      return check_time(item, crypto::not_before(cert->get()), now);
    }
    case Kind::kTdxPckCrl:
    case Kind::kTdxRootCrl: {
      auto crl = crypto::parse_crl(item.data);
      if (!crl.ok()) return untrusted(item, crl.error().message);
      crypto::X509Ptr issuer;
      if (item.kind == Kind::kTdxRootCrl) {
        issuer = tdx::intel_sgx_root_ca();
      } else {
        CONFPOD_ASSIGN_OR_RETURN(
            issuer,
            intel_issuer(item, item.key == "platform" ? kPlatformCa : kProcessorCa, known, now));
      }
      if (auto s = crypto::verify_crl_signature(crl->get(), issuer.get()); !s.ok())
        return untrusted(item, "not signed by its CA: " + s.error().message);
      return check_time(item, 0, now);
    }
    case Kind::kTdxTcbInfo:
    case Kind::kTdxQeIdentity: {
      const std::string_view text(reinterpret_cast<const char*>(item.data.data()),
                                  item.data.size());
      auto object = tdx::split_pcs_response(
          text, item.kind == Kind::kTdxTcbInfo ? "tcbInfo" : "enclaveIdentity");
      if (!object.ok()) return untrusted(item, object.error().message);
      CONFPOD_ASSIGN_OR_RETURN(crypto::X509Ptr signer, intel_issuer(item, kTcbSigning, known, now));
      if (auto s = tdx::verify_signed_object(*object, signer.get(), item.subject); !s.ok())
        return untrusted(item, s.error().message);
      return check_time(item, 0, now);
    }
  }
  return untrusted(item, "unknown kind");
}

}  // namespace confpod::collateral
