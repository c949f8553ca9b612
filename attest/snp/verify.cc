#include "attest/snp/verify.h"

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attest/snp/roots.h"

namespace confpod::snp {

namespace {

// AMD's VCEK/VLEK extensions (VCEK Certificate and KDS Interface Specification).
constexpr std::string_view kOidProductName = "1.3.6.1.4.1.3704.1.2";
constexpr std::string_view kOidBlSpl = "1.3.6.1.4.1.3704.1.3.1";
constexpr std::string_view kOidTeeSpl = "1.3.6.1.4.1.3704.1.3.2";
constexpr std::string_view kOidSnpSpl = "1.3.6.1.4.1.3704.1.3.3";
constexpr std::string_view kOidUcodeSpl = "1.3.6.1.4.1.3704.1.3.8";
constexpr std::string_view kOidFmcSpl = "1.3.6.1.4.1.3704.1.3.9";
constexpr std::string_view kOidHwid = "1.3.6.1.4.1.3704.1.4";

std::string common_name(const X509_NAME* name) {
  if (name == nullptr) return {};
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  if (data == nullptr) return {};
  const unsigned char* p = ASN1_STRING_get0_data(data);
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

std::string subject_cn(X509* cert) { return common_name(X509_get_subject_name(cert)); }
std::string issuer_cn(X509* cert) { return common_name(X509_get_issuer_name(cert)); }

std::optional<Product> product_from_text(std::string_view text) {
  // "Milan", "Milan-B0", "Genoa-B1", "Turin": the product is the part before any stepping.
  std::string_view head = text.substr(0, text.find('-'));
  auto product = parse_product(head);
  if (!product.ok()) return std::nullopt;
  return *product;
}

// The VEK's product as its issuer names it: "SEV-<Product>" or "SEV-VLEK-<Product>".
std::optional<Product> product_from_issuer(X509* vek) {
  std::string cn = issuer_cn(vek);
  std::string_view rest(cn);
  if (!rest.starts_with("SEV-")) return std::nullopt;
  rest.remove_prefix(4);
  if (rest.starts_with("VLEK-")) rest.remove_prefix(5);
  if (rest.find('-') != std::string_view::npos) return std::nullopt;
  return product_from_text(rest);
}

// A short DER value of a known tag with a one-byte length: returns its contents.
std::optional<ByteView> der_contents(ByteView der, std::uint8_t tag) {
  if (der.size() < 2 || der[0] != tag || der[1] >= 0x80) return std::nullopt;
  if (der.size() != 2u + der[1]) return std::nullopt;
  return der.subspan(2);
}

// A security patch level: a DER INTEGER in 0..255.
Result<std::uint8_t> spl_value(X509* vek, std::string_view oid, std::string_view name) {
  CONFPOD_ASSIGN_OR_RETURN(Bytes der, crypto::extension_value(vek, oid));
  auto contents = der_contents(der, 0x02);
  bool ok = contents && !contents->empty() && contents->size() <= 2 && ((*contents)[0] & 0x80) == 0;
  if (ok && contents->size() == 2) ok = (*contents)[0] == 0 && ((*contents)[1] & 0x80) != 0;
  if (!ok)
    return make_error("snp.vcek.extension", std::string(name) + " extension " + std::string(oid) +
                                                " is not a DER INTEGER 0..255: " + to_hex(der));
  return contents->back();
}

Result<TcbVersion> vek_tcb(X509* vek, Product product) {
  TcbVersion tcb;
  CONFPOD_ASSIGN_OR_RETURN(tcb.bootloader, spl_value(vek, kOidBlSpl, "blSPL"));
  CONFPOD_ASSIGN_OR_RETURN(tcb.tee, spl_value(vek, kOidTeeSpl, "teeSPL"));
  CONFPOD_ASSIGN_OR_RETURN(tcb.snp, spl_value(vek, kOidSnpSpl, "snpSPL"));
  CONFPOD_ASSIGN_OR_RETURN(tcb.microcode, spl_value(vek, kOidUcodeSpl, "ucodeSPL"));
  if (product == Product::kTurin) {
    CONFPOD_ASSIGN_OR_RETURN(tcb.fmc, spl_value(vek, kOidFmcSpl, "fmcSPL"));
  }
  return tcb;
}

// hwID: the chip's CHIP_ID, 64 bytes on Milan/Genoa and 8 on Turin. AMD's KDS stores the raw
// bytes as the extension value without an OCTET STRING header; a wrapped form is accepted too.
Result<Bytes> vek_hwid(X509* vek, Product product) {
  const std::size_t size = product == Product::kTurin ? 8 : 64;
  auto der = crypto::extension_value(vek, kOidHwid);
  if (!der.ok())
    return make_error("snp.vcek.extension", "VCEK has no hwID extension " + std::string(kOidHwid));
  if (der->size() == size) return std::move(der).value();
  auto contents = der_contents(*der, 0x04);
  if (contents && contents->size() == size) return Bytes(contents->begin(), contents->end());
  return make_error("snp.vcek.extension", "hwID extension must hold " + std::to_string(size) +
                                              " bytes for " + std::string(product_name(product)) +
                                              ", got " + to_hex(*der));
}

Status check_p384(X509* vek, const crypto::EvpPkeyPtr& key) {
  char group[64] = {};
  std::size_t len = 0;
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC ||
      EVP_PKEY_get_group_name(key.get(), group, sizeof group, &len) != 1 ||
      std::string_view(group, len) != "secp384r1")
    return make_error("snp.chain.vek_key", "certificate '" + crypto::subject_name(vek) +
                                               "' does not hold an ECDSA P-384 key");
  return ok_status();
}

Status check_valid(X509* cert, std::string_view role, UnixSeconds at) {
  auto valid = crypto::check_validity(cert, at);
  if (!valid.ok())
    return make_error("snp.chain.validity", std::string(role) + ": " + valid.error().message);
  return ok_status();
}

}  // namespace

Result<Product> detect_product(X509* vek) {
  if (auto from_issuer = product_from_issuer(vek)) return *from_issuer;
  auto der = crypto::extension_value(vek, kOidProductName);
  if (der.ok()) {
    if (auto text = der_contents(*der, 0x16)) {  // IA5String
      std::string_view name(reinterpret_cast<const char*>(text->data()), text->size());
      if (auto product = product_from_text(name)) return *product;
    }
  }
  return make_error("snp.chain.product", "cannot tell the SEV-SNP product of '" +
                                             crypto::subject_name(vek) + "' (issuer '" +
                                             issuer_cn(vek) + "'); give the product explicitly");
}

namespace {

// VCEK or VLEK, by the subject CN AMD gives each.
Result<SigningKey> vek_kind(X509* vek) {
  if (vek == nullptr) return make_error("snp.chain.vek_kind", "no VCEK/VLEK certificate given");
  const std::string cn = subject_cn(vek);
  if (cn == "SEV-VCEK") return SigningKey::kVcek;
  if (cn == "SEV-VLEK") return SigningKey::kVlek;
  return make_error("snp.chain.vek_kind", "certificate '" + crypto::subject_name(vek) +
                                              "' is neither a VCEK nor a VLEK (subject CN '" + cn +
                                              "')");
}

}  // namespace

Result<VekIdentity> read_vek_identity(X509* vek) {
  VekIdentity id;
  CONFPOD_ASSIGN_OR_RETURN(id.kind, vek_kind(vek));
  CONFPOD_ASSIGN_OR_RETURN(id.product, detect_product(vek));
  CONFPOD_ASSIGN_OR_RETURN(id.tcb, vek_tcb(vek, id.product));
  if (id.kind == SigningKey::kVcek) {
    CONFPOD_ASSIGN_OR_RETURN(id.hwid, vek_hwid(vek, id.product));
  }
  return id;
}

Result<VerifiedChain> verify_chain(X509* vek, X509* ask, X509* ark, std::optional<Product> product,
                                   UnixSeconds at) {
  VerifiedChain chain;
  CONFPOD_ASSIGN_OR_RETURN(chain.key_kind, vek_kind(vek));
  const std::string vek_role = chain.key_kind == SigningKey::kVcek ? "VCEK" : "VLEK";
  const std::string ica_role = chain.key_kind == SigningKey::kVcek ? "ASK" : "ASVK";

  if (product) {
    chain.product = *product;
  } else {
    CONFPOD_ASSIGN_OR_RETURN(chain.product, detect_product(vek));
  }
  const std::string name(product_name(chain.product));

  // The ARK is the trust anchor: only AMD's published one for this product is accepted, so a
  // host cannot bring its own root (or another product's).
  chain.ark = builtin_ark(chain.product);
  if (ark != nullptr && !crypto::same_certificate(ark, chain.ark.get()))
    return make_error("snp.chain.ark_pinned", "the given ARK '" + crypto::subject_name(ark) +
                                                  "' is not AMD's pinned " + name + " ARK");
  if (auto self = crypto::verify_certificate_signature(chain.ark.get(), chain.ark.get());
      !self.ok())
    return make_error("snp.chain.ark_signature",
                      "the " + name + " ARK is not self-signed: " + self.error().message);

  chain.intermediate = ask != nullptr                        ? crypto::clone(ask)
                       : chain.key_kind == SigningKey::kVcek ? builtin_ask(chain.product)
                                                             : builtin_asvk(chain.product);
  if (auto signed_by_ark =
          crypto::verify_certificate_signature(chain.intermediate.get(), chain.ark.get());
      !signed_by_ark.ok())
    return make_error("snp.chain.ask_signature",
                      ica_role + " '" + crypto::subject_name(chain.intermediate.get()) +
                          "' is not signed by the " + name +
                          " ARK: " + signed_by_ark.error().message);
  if (auto signed_by_ica = crypto::verify_certificate_signature(vek, chain.intermediate.get());
      !signed_by_ica.ok())
    return make_error("snp.chain.vek_signature",
                      vek_role + " (issuer '" + issuer_cn(vek) + "') is not signed by the " + name +
                          " " + ica_role + " '" + subject_cn(chain.intermediate.get()) +
                          "': " + signed_by_ica.error().message);

  CONFPOD_TRY(check_valid(chain.ark.get(), "ARK", at));
  CONFPOD_TRY(check_valid(chain.intermediate.get(), ica_role, at));
  CONFPOD_TRY(check_valid(vek, vek_role, at));

  chain.vek = crypto::clone(vek);
  chain.vek_public_key = crypto::public_key(vek);
  CONFPOD_TRY(check_p384(vek, chain.vek_public_key));

  CONFPOD_ASSIGN_OR_RETURN(chain.vek_tcb, vek_tcb(vek, chain.product));
  if (chain.key_kind == SigningKey::kVcek) {
    CONFPOD_ASSIGN_OR_RETURN(chain.hwid, vek_hwid(vek, chain.product));
  }
  chain.verified_at = at;
  return chain;
}

Status check_revocation(X509_CRL* crl, X509* ark, const VerifiedChain& chain, UnixSeconds at,
                        bool require_current) {
  if (crl == nullptr || ark == nullptr)
    return make_error("snp.crl.signature", "no CRL or no ARK to check it with");
  if (auto s = crypto::verify_crl_signature(crl, ark); !s.ok())
    return make_error("snp.crl.signature", "the CRL of '" + crypto::crl_issuer_name(crl) +
                                               "' is not signed by the ARK '" +
                                               crypto::subject_name(ark) + "'");
  if (require_current) {
    if (auto s = crypto::check_crl_validity(crl, at); !s.ok())
      return make_error("snp.crl.expired", "AMD CRL: " + s.error().message);
  }
  for (X509* cert : {chain.intermediate.get(), chain.vek.get()}) {
    if (cert != nullptr && crypto::is_revoked(crl, cert))
      return make_error("snp.chain.revoked", "'" + crypto::subject_name(cert) + "' (serial " +
                                                 crypto::serial_hex(cert) +
                                                 ") is revoked by AMD's CRL");
  }
  return ok_status();
}

Status verify_report(const Report& report, const VerifiedChain& chain) {
  if (report.signature_algo != kSignatureAlgoEcdsaP384Sha384)
    return make_error("snp.report.signature_algo",
                      "SIGNATURE_ALGO is " + std::to_string(report.signature_algo) +
                          ", only 1 (ECDSA P-384 with SHA-384) is defined");
  if (report.signing_key != chain.key_kind)
    return make_error(
        "snp.report.signing_key",
        "report says it is signed by the " + std::string(signing_key_name(report.signing_key)) +
            " but the certificate is a " + std::string(signing_key_name(chain.key_kind)));
  if (report.cpuid) {
    auto named = product_from_cpuid(report.cpuid->family, report.cpuid->model);
    if (named && *named != chain.product)
      return make_error("snp.report.product", "report CPUID names " +
                                                  std::string(product_name(*named)) +
                                                  " but the certificate chain is " +
                                                  std::string(product_name(chain.product)));
  }

  // r and s are 72-byte little-endian fields of which P-384 uses the low 48 bytes; anything
  // above must be zero or the value is not the integer that was signed.
  constexpr std::size_t kScalar = 48;
  ByteView r(report.signature_r), s(report.signature_s);
  if (!is_all_zero(r.subspan(kScalar)) || !is_all_zero(s.subspan(kScalar)))
    return make_error("snp.signature", "signature r or s exceeds 48 bytes");
  Bytes r_be = crypto::reversed(r.first(kScalar));
  Bytes s_be = crypto::reversed(s.first(kScalar));
  if (auto sig = crypto::verify_ecdsa(chain.vek_public_key.get(), crypto::Hash::kSha384,
                                      report.signed_bytes(), r_be, s_be);
      !sig.ok())
    return make_error("snp.signature", "report signature does not verify with the " +
                                           std::string(signing_key_name(chain.key_kind)) + " (" +
                                           sig.error().message + ")");
  return check_vek_binding(report, chain);
}

Status check_vek_binding(const Report& report, const VerifiedChain& chain) {
  if (chain.key_kind == SigningKey::kVcek && !report.mask_chip_key) {
    ByteView chip(report.chip_id);
    if (chain.hwid.empty() || chain.hwid.size() > chip.size() ||
        !std::equal(chain.hwid.begin(), chain.hwid.end(), chip.begin()))
      return make_error("snp.vcek.chip_id", "report CHIP_ID " + to_hex(chip) +
                                                " is not the VCEK's hwID " + to_hex(chain.hwid));
  }

  // Decode with the chain's product: a v2 report does not say which layout it uses.
  const TcbVersion reported = decode_tcb(report.reported_tcb.raw, chain.product);
  const TcbVersion& cert = chain.vek_tcb;
  struct Component {
    const char* name;
    std::uint8_t report_value;
    std::uint8_t cert_value;
  };
  std::vector<Component> components = {
      {"blSPL (bootloader)", reported.bootloader, cert.bootloader},
      {"teeSPL (tee)", reported.tee, cert.tee},
      {"snpSPL (snp)", reported.snp, cert.snp},
      {"ucodeSPL (microcode)", reported.microcode, cert.microcode},
  };
  if (chain.product == Product::kTurin)
    components.push_back({"fmcSPL (fmc)", reported.fmc.value_or(0), cert.fmc.value_or(0)});
  for (const Component& c : components)
    if (c.report_value != c.cert_value)
      return make_error("snp.vcek.tcb", std::string(c.name) + ": report REPORTED_TCB has " +
                                            std::to_string(c.report_value) + ", the " +
                                            std::string(signing_key_name(chain.key_kind)) +
                                            " certificate " + std::to_string(c.cert_value) +
                                            " (reported_tcb " + to_hex(report.reported_tcb.raw) +
                                            ")");
  return ok_status();
}

Result<Report> parse_and_verify(ByteView data, const VerifiedChain& chain) {
  CONFPOD_ASSIGN_OR_RETURN(Report report, parse_report(data, chain.product));
  CONFPOD_TRY(verify_report(report, chain));
  return report;
}

}  // namespace confpod::snp
