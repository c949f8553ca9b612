#include "attest/tdx/verify.h"

#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>

#include "attest/tdx/signature_cache.h"

namespace confpod::tdx {

namespace {

// TEE_TCB_SVN bytes 0 and 1 are the TDX module's own SVN and major version; from TDX 1.5
// (major > 0) they are judged by the module identity, not by the platform TCB levels.
constexpr std::size_t kModuleSvnIndex = 0;
constexpr std::size_t kModuleMajorIndex = 1;

std::string hex_of(ByteView b) { return to_hex(b); }

bool components_at_least(const std::array<std::uint8_t, 16>& have,
                         const std::array<std::uint8_t, 16>& need, std::size_t from) {
  for (std::size_t i = from; i < have.size(); ++i)
    if (have[i] < need[i]) return false;
  return true;
}

// Intel QVL's convergence of a TCB status with a second one (TDX module or QE): an
// out-of-date second component makes the platform out of date, a revoked one revokes it.
std::string converge(const std::string& status, const std::string& other) {
  if (other == "OutOfDate") {
    if (status == "UpToDate" || status == "SWHardeningNeeded") return "OutOfDate";
    if (status == "ConfigurationNeeded" || status == "ConfigurationAndSWHardeningNeeded")
      return "OutOfDateConfigurationNeeded";
  }
  if (other == "Revoked") return "Revoked";
  return status;
}

void add_advisories(std::vector<std::string>& out, const std::vector<std::string>& ids) {
  for (const auto& id : ids)
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
}

Status check_module_identity(const TdxModuleIdentity& expected, const TdReport& td,
                             const std::string& name) {
  if (td.mr_signer_seam != expected.mrsigner)
    return make_error("tdx.tdx_module", "MR_SIGNER_SEAM " + hex_of(td.mr_signer_seam) +
                                            " is not the mrsigner " + hex_of(expected.mrsigner) +
                                            " of " + name);
  for (std::size_t i = 0; i < td.seam_attributes.size(); ++i) {
    if ((td.seam_attributes[i] & expected.attributes_mask[i]) !=
        (expected.attributes[i] & expected.attributes_mask[i]))
      return make_error("tdx.tdx_module", "SEAM attributes " + hex_of(td.seam_attributes) +
                                              " do not match " + hex_of(expected.attributes) +
                                              " under mask " + hex_of(expected.attributes_mask) +
                                              " of " + name);
  }
  return ok_status();
}

Result<crypto::EvpPkeyPtr> key_of(X509* cert, const std::string& code) {
  crypto::EvpPkeyPtr key = crypto::public_key(cert);
  if (!key)
    return make_error(code,
                      "certificate '" + crypto::subject_name(cert) + "' has no usable public key");
  return key;
}

}  // namespace

Result<VerifiedSignatures> verify_quote_signatures(const Quote& quote, X509* trusted_root,
                                                   UnixSeconds at) {
  // 1. PCK chain: leaf -> PCK CA -> the pinned root; a root in the quote must be that root.
  CONFPOD_ASSIGN_OR_RETURN(
      auto chain, parse_pem_chain_strict(quote.pck_cert_chain_pem, "tdx.pck.chain", "PCK chain"));
  if (chain.size() < 2 || chain.size() > 3)
    return make_error("tdx.pck.chain", "PCK chain has " + std::to_string(chain.size()) +
                                           " certificates (expected leaf, CA[, root])");
  const ChainErrorCodes codes{"tdx.pck.chain", "tdx.pck.validity", "tdx.pck.revoked"};
  CONFPOD_TRY(verify_chain_to_root(chain, trusted_root, nullptr, at, codes, "PCK chain"));
  if (chain.size() == 3 && !crypto::same_certificate(chain[2].get(), trusted_root))
    return make_error("tdx.pck.chain", "PCK chain's third certificate is not the pinned root");
  if (crypto::subject_name(chain[0].get()).find("SGX PCK Certificate") == std::string::npos)
    return make_error("tdx.pck.chain", "leaf '" + crypto::subject_name(chain[0].get()) +
                                           "' is not an SGX PCK Certificate");

  VerifiedSignatures out;
  CONFPOD_ASSIGN_OR_RETURN(out.pck, parse_pck_extensions(chain[0].get()));

  // 2. The QE report, signed by the PCK key: the hardware vouches for the Quoting Enclave.
  CONFPOD_ASSIGN_OR_RETURN(auto pck_key, key_of(chain[0].get(), "tdx.pck.chain"));
  if (!crypto::verify_ecdsa_concat(pck_key.get(), crypto::Hash::kSha256, quote.qe_report_raw,
                                   quote.qe_report_signature)
           .ok())
    return make_error("tdx.qe_report.signature",
                      "QE report signature does not verify with the PCK leaf key");

  // 3. The QE binds the attestation key (and its auth data) into its report data.
  Bytes bound(quote.attestation_key.begin(), quote.attestation_key.end());
  bound.insert(bound.end(), quote.qe_auth_data.begin(), quote.qe_auth_data.end());
  const Bytes expected = crypto::sha256(bound);
  const ByteView report_data(quote.qe_report.report_data);
  if (!std::equal(expected.begin(), expected.end(), report_data.begin()) ||
      !is_all_zero(report_data.subspan(32)))
    return make_error("tdx.qe_report.binding",
                      "QE report data " + to_hex(report_data) +
                          " is not SHA-256(attestation key || QE auth data) " + to_hex(expected) +
                          " followed by 32 zero bytes");

  // 4. The quote itself, signed by the now-trusted attestation key.
  auto att_key = crypto::ec_public_key_from_xy(NID_X9_62_prime256v1, quote.attestation_key);
  if (!att_key.ok())
    return make_error("tdx.quote.attestation_key", "attestation key is not a P-256 point");
  if (!crypto::verify_ecdsa_concat(att_key->get(), crypto::Hash::kSha256, quote.signed_region,
                                   quote.signature)
           .ok())
    return make_error("tdx.quote.signature",
                      "quote signature over header and body does not verify with the "
                      "attestation key");

  out.pck_leaf = std::move(chain[0]);
  out.pck_intermediate = std::move(chain[1]);
  return out;
}

Status match_qe_identity(const QeReport& qe, const QeIdentity& id) {
  if (qe.mr_signer != id.mrsigner)
    return make_error("tdx.qe_identity",
                      "QE MRSIGNER " + to_hex(qe.mr_signer) + " is not " + to_hex(id.mrsigner));
  if (qe.isv_prod_id != id.isvprodid)
    return make_error("tdx.qe_identity", "QE ISVPRODID " + std::to_string(qe.isv_prod_id) +
                                             " is not " + std::to_string(id.isvprodid));
  if ((qe.miscselect & id.miscselect_mask) != (id.miscselect & id.miscselect_mask)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "QE MISCSELECT %08x does not match %08x under mask %08x",
                  qe.miscselect, id.miscselect, id.miscselect_mask);
    return make_error("tdx.qe_identity", buf);
  }
  for (std::size_t i = 0; i < qe.attributes.size(); ++i)
    if ((qe.attributes[i] & id.attributes_mask[i]) != (id.attributes[i] & id.attributes_mask[i]))
      return make_error("tdx.qe_identity", "QE ATTRIBUTES " + to_hex(qe.attributes) +
                                               " do not match " + to_hex(id.attributes) +
                                               " under mask " + to_hex(id.attributes_mask));
  return ok_status();
}

Result<Verdict> evaluate_tcb(const TcbInfo& info, const PckExtensions& pck, const TdReport& td,
                             const QeIdentity& qe_identity, std::uint16_t qe_isvsvn) {
  Verdict v;
  const std::uint8_t module_major = td.tee_tcb_svn[kModuleMajorIndex];

  // TDX module identity: the base tdxModule for major version 0, else "TDX_<major, hex>".
  const TdxModuleIdentity* module = &info.tdx_module;
  std::string module_name = "tdxModule";
  if (module_major > 0) {
    char wanted[8];
    std::snprintf(wanted, sizeof wanted, "TDX_%02X", module_major);
    module = nullptr;
    for (const auto& identity : info.tdx_module_identities) {
      std::string id = identity.id;
      std::transform(id.begin(), id.end(), id.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (id == wanted) {
        module = &identity;
        break;
      }
    }
    if (module == nullptr)
      return make_error("tdx.tdx_module", std::string("TCB info has no TDX module identity ") +
                                              wanted + " for TEE_TCB_SVN major version " +
                                              std::to_string(module_major));
    module_name = wanted;
  }
  CONFPOD_TRY(check_module_identity(*module, td, module_name));

  // Platform: the first (highest) level the PCK's SGX TCB and PCESVN reach, then among those
  // the first the TD's TEE_TCB_SVN reaches (bytes 0-1 skipped when the module is judged
  // by its own identity).
  const std::size_t tdx_from = module_major > 0 ? 2 : 0;
  const TcbLevel* sgx_level = nullptr;
  const TcbLevel* level = nullptr;
  for (const TcbLevel& l : info.tcb_levels) {
    if (!components_at_least(pck.tcb_components, l.sgx_components, 0) || pck.pce_svn < l.pce_svn)
      continue;
    if (sgx_level == nullptr) sgx_level = &l;
    if (components_at_least(td.tee_tcb_svn, l.tdx_components, tdx_from)) {
      level = &l;
      break;
    }
  }
  if (sgx_level == nullptr)
    return make_error("tdx.tcb.not_supported",
                      "no TCB level is reached by the PCK's TCB components " +
                          to_hex(pck.tcb_components) + " and PCESVN " +
                          std::to_string(pck.pce_svn));
  if (level == nullptr)
    return make_error("tdx.tcb.not_supported",
                      "no TCB level is reached by TEE_TCB_SVN " + to_hex(td.tee_tcb_svn));
  v.platform_tcb_status = level->tcb_status;
  v.tcb_date = level->tcb_date;
  add_advisories(v.advisory_ids, level->advisory_ids);
  std::string status = level->tcb_status;

  // The TDX module's own level, from its identity (TDX 1.5 and later).
  if (module_major > 0) {
    const std::uint8_t module_svn = td.tee_tcb_svn[kModuleSvnIndex];
    const TdxModuleTcbLevel* module_level = nullptr;
    for (const auto& l : module->tcb_levels)
      if (module_svn >= l.isvsvn) {
        module_level = &l;
        break;
      }
    if (module_level == nullptr)
      return make_error("tdx.tcb.not_supported", "TDX module SVN " + std::to_string(module_svn) +
                                                     " is below every level of " + module_name);
    v.module_tcb_status = module_level->tcb_status;
    add_advisories(v.advisory_ids, module_level->advisory_ids);
    status = converge(status, module_level->tcb_status);
  }

  // The Quoting Enclave's level.
  const QeTcbLevel* qe_level = nullptr;
  for (const auto& l : qe_identity.tcb_levels)
    if (qe_isvsvn >= l.isvsvn) {
      qe_level = &l;
      break;
    }
  if (qe_level == nullptr)
    return make_error("tdx.tcb.not_supported", "QE ISVSVN " + std::to_string(qe_isvsvn) +
                                                   " is below every QE identity level");
  v.qe_tcb_status = qe_level->tcb_status;
  add_advisories(v.advisory_ids, qe_level->advisory_ids);
  status = converge(status, qe_level->tcb_status);

  if (status == "Revoked")
    return make_error("tdx.tcb.revoked",
                      "TCB is revoked (platform " + v.platform_tcb_status + ", TDX module " +
                          (v.module_tcb_status.empty() ? "-" : v.module_tcb_status) + ", QE " +
                          v.qe_tcb_status + ")");
  v.tcb_status = status;
  return v;
}

Result<Verdict> verify_quote(const Quote& quote, const VerifiedCollateral& collateral,
                             UnixSeconds at, SignatureCache* cache) {
  CONFPOD_TRY(check_collateral_time(collateral, at));
  CONFPOD_ASSIGN_OR_RETURN(VerifiedSignatures sigs,
                           cache != nullptr
                               ? cache->verify(quote, collateral.root.get(), at)
                               : verify_quote_signatures(quote, collateral.root.get(), at));
  X509* leaf = sigs.pck_leaf.get();
  X509* intermediate = sigs.pck_intermediate.get();

  // Revocation: the PCK CRL must be the one of the quote's PCK CA.
  if (X509_NAME_cmp(X509_CRL_get_issuer(collateral.pck_crl.get()),
                    X509_get_subject_name(intermediate)) != 0)
    return make_error("tdx.pck.crl_issuer",
                      "PCK CRL issuer '" + crypto::crl_issuer_name(collateral.pck_crl.get()) +
                          "' is not the PCK CA '" + crypto::subject_name(intermediate) + "'");
  // verify_collateral checked the CRL against its own issuer chain; re-check only when the
  // quote's CA is a different certificate (e.g. re-issued under the same name).
  if (!crypto::same_certificate(intermediate, collateral.pck_crl_issuer.get()) &&
      !crypto::verify_crl_signature(collateral.pck_crl.get(), intermediate).ok())
    return make_error("tdx.pck.crl_issuer", "PCK CRL is not signed by the quote's PCK CA '" +
                                                crypto::subject_name(intermediate) + "'");
  if (crypto::is_revoked(collateral.pck_crl.get(), leaf))
    return make_error("tdx.pck.revoked", "PCK certificate serial " + crypto::serial_hex(leaf) +
                                             " is revoked by the PCK CRL");
  if (crypto::is_revoked(collateral.root_ca_crl.get(), intermediate))
    return make_error("tdx.pck.revoked", "PCK CA '" + crypto::subject_name(intermediate) +
                                             "' is revoked by the root CA CRL");

  CONFPOD_TRY(match_qe_identity(quote.qe_report, collateral.qe_identity));

  const TcbInfo& info = collateral.tcb_info;
  if (sigs.pck.fmspc != info.fmspc)
    return make_error("tdx.fmspc", "PCK FMSPC " + to_hex(sigs.pck.fmspc) +
                                       " is not the TCB info's " + to_hex(info.fmspc));
  if (sigs.pck.pce_id != info.pce_id)
    return make_error("tdx.pceid", "PCK PCE-ID " + to_hex(sigs.pck.pce_id) +
                                       " is not the TCB info's " + to_hex(info.pce_id));

  CONFPOD_ASSIGN_OR_RETURN(
      Verdict v,
      evaluate_tcb(info, sigs.pck, quote.body, collateral.qe_identity, quote.qe_report.isv_svn));
  v.fmspc = sigs.pck.fmspc;
  v.pce_id = sigs.pck.pce_id;
  v.pce_svn = sigs.pck.pce_svn;
  v.cpu_svn = sigs.pck.cpu_svn;
  v.qe_isvsvn = quote.qe_report.isv_svn;
  v.collateral_expiry = collateral.expires;
  return v;
}

}  // namespace confpod::tdx
