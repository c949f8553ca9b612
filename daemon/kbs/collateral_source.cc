#include "daemon/kbs/collateral_source.h"

#include <openssl/pem.h>

#include <algorithm>
#include <cstring>

#include "attest/crypto/crypto.h"
#include "attest/snp/roots.h"
#include "attest/tdx/pck.h"
#include "attest/tdx/roots.h"
#include "daemon/pods/log.h"

namespace confpod::kbs_http {
namespace {

using collateral::Kind;

Error missing(const std::string& message) { return make_error("kbs.collateral.missing", message); }

std::string pem_of(ByteView der) {
  auto cert = crypto::parse_certificate(der);
  if (!cert.ok()) return {};
  struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
  };
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert->get()) != 1) return {};
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string common_name(X509_NAME* name) {
  char buf[256] = {};
  const int n = X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// The first (newest expiry) item of `kind` with `key`.
Result<collateral::Item> first(store::SqliteCollateralStore& store, Kind kind,
                               const std::string& key, const std::string& hint) {
  CONFPOD_ASSIGN_OR_RETURN(auto items, store.find(kind, key));
  if (items.empty())
    return missing("no " + std::string(collateral::kind_name(kind)) + " \"" + key +
                   "\" in the collateral store; import " + hint +
                   " (confpodctl collateral import)");
  return std::move(items.front());
}

}  // namespace

Result<Bytes> CollateralSource::snp_vek(const snp::Report& report) {
  std::vector<snp::Product> products;
  if (report.product) {
    products.push_back(*report.product);
  } else {
    products = {snp::Product::kMilan, snp::Product::kGenoa, snp::Product::kTurin};
  }
  const std::string tcb = collateral::tcb_key(report.reported_tcb.raw);
  const bool vlek = report.signing_key == snp::SigningKey::kVlek;
  std::string tried;
  for (snp::Product product : products) {
    const std::string name(snp::product_name(product));
    std::string key;
    if (vlek) {
      key = name + "/" + tcb;
    } else {
      const std::size_t hwid_size = product == snp::Product::kTurin ? 8 : 64;
      key = name + "/" + to_hex(ByteView(report.chip_id.data(), hwid_size)) + "/" + tcb;
    }
    CONFPOD_ASSIGN_OR_RETURN(auto items, store_.find(vlek ? Kind::kSnpVlek : Kind::kSnpVcek, key));
    if (!items.empty()) return std::move(items.front().data);
    tried += (tried.empty() ? "" : ", ") + key;
  }
  if (!vlek && report.mask_chip_key)
    return missing(
        "the report masks its CHIP_ID (MASK_CHIP_KEY), so no VCEK can be found for "
        "it; the guest must send its certificate chain");
  // What AMD's KDS serves it as, for an operator with internet.
  std::string url;
  if (!vlek && report.product) {
    const auto t = snp::decode_tcb(report.reported_tcb.raw, *report.product);
    std::string product(snp::product_name(*report.product));
    product[0] = static_cast<char>(product[0] - 'a' + 'A');
    const std::size_t hwid_size = *report.product == snp::Product::kTurin ? 8 : 64;
    url = " (AMD KDS: https://kdsintf.amd.com/vcek/v1/" + product + "/" +
          to_hex(ByteView(report.chip_id.data(), hwid_size)) +
          "?blSPL=" + std::to_string(t.bootloader) + "&teeSPL=" + std::to_string(t.tee) +
          "&snpSPL=" + std::to_string(t.snp) + "&ucodeSPL=" + std::to_string(t.microcode) +
          (t.fmc ? "&fmcSPL=" + std::to_string(*t.fmc) : "") + ")";
  }
  return missing(std::string("no ") + (vlek ? "VLEK" : "VCEK") + " for this report in the " +
                 "collateral store (looked for " + tried + "); import it" + url +
                 " with confpodctl collateral import");
}

Status CollateralSource::snp_revocation(const snp::VerifiedChain& chain, UnixSeconds now,
                                        bool require_crl) {
  const std::string product(snp::product_name(chain.product));
  CONFPOD_ASSIGN_OR_RETURN(auto crls, store_.find(Kind::kSnpCrl, product));
  // Every stored CRL of the product counts, each verified from its own bytes (the store's
  // columns are not trusted to pick one): an older CRL cannot hide a newer revocation, and a
  // "CRL" the pinned ARK did not sign fails closed.
  const crypto::X509Ptr ark = snp::builtin_ark(chain.product);
  bool current = false;
  for (const collateral::Item& item : crls) {
    auto crl = crypto::parse_crl(item.data);
    if (!crl.ok()) return make_error("snp.crl.signature", "a stored AMD CRL does not parse");
    CONFPOD_TRY(snp::check_revocation(crl->get(), ark.get(), chain, now, false));
    current = current || crypto::check_crl_validity(crl->get(), now).ok();
  }
  if (!require_crl || current) return ok_status();
  std::string kds = product;
  kds[0] = static_cast<char>(kds[0] - 'a' + 'A');
  return missing("no current AMD CRL for " + product +
                 " in the collateral store and [kbs] require_crl = true; import "
                 "https://kdsintf.amd.com/vcek/v1/" +
                 kds + "/crl (confpodctl collateral import)");
}

Result<std::shared_ptr<const tdx::VerifiedCollateral>> CollateralSource::tdx_collateral(
    const tdx::Quote& quote, UnixSeconds now) {
  CONFPOD_ASSIGN_OR_RETURN(auto chain, crypto::parse_pem_certificates(quote.pck_cert_chain_pem));
  if (chain.size() < 2)
    return make_error("kbs.evidence.tdx", "the quote's PCK chain has no issuing CA");
  CONFPOD_ASSIGN_OR_RETURN(tdx::PckExtensions pck, tdx::parse_pck_extensions(chain[0].get()));
  const std::string fmspc = to_hex(pck.fmspc);
  const std::string ca_name = common_name(X509_get_issuer_name(chain[0].get()));
  const std::string ca = ca_name == "Intel SGX PCK Processor CA" ? "processor" : "platform";
  const std::string cache_key = fmspc + "/" + ca;
  const std::uint64_t generation = store_.generation();
  {
    std::lock_guard lock(mu_);
    auto it = tdx_cache_.find(cache_key);
    if (it != tdx_cache_.end() && it->second.generation == generation) return it->second.collateral;
  }
  const std::string pcs = "https://api.trustedservices.intel.com/tdx/certification/v4";
  CONFPOD_ASSIGN_OR_RETURN(auto tcb_info,
                           first(store_, Kind::kTdxTcbInfo, fmspc, pcs + "/tcb?fmspc=" + fmspc));
  CONFPOD_ASSIGN_OR_RETURN(auto qe_identity,
                           first(store_, Kind::kTdxQeIdentity, "TD_QE", pcs + "/qe/identity"));
  CONFPOD_ASSIGN_OR_RETURN(auto signer,
                           first(store_, Kind::kIntelCa, "Intel SGX TCB Signing",
                                 "the TCB-Info-Issuer-Chain PEM that " + pcs + "/tcb sends"));
  CONFPOD_ASSIGN_OR_RETURN(auto pck_crl, first(store_, Kind::kTdxPckCrl, ca,
                                               pcs + "/pckcrl?ca=" + ca + "&encoding=der"));
  CONFPOD_ASSIGN_OR_RETURN(
      auto root_crl,
      first(store_, Kind::kTdxRootCrl, "root",
            "the Intel SGX Root CA CRL (https://certificates.trustedservices.intel.com/"
            "IntelSGXRootCA.der)"));
  const std::string root_pem(tdx::intel_sgx_root_ca_pem());
  const std::string tcb_chain = pem_of(signer.data) + root_pem;
  // The PCK CA that signed the CRL is the one in the quote's own chain; verify_collateral
  // checks it against the pinned root like everything else.
  std::string crl_chain;
  {
    auto ca_der = [&]() {
      unsigned char* out = nullptr;
      const int n = i2d_X509(chain[1].get(), &out);
      Bytes der(out, out + (n > 0 ? n : 0));
      OPENSSL_free(out);
      return der;
    }();
    crl_chain = pem_of(ca_der) + root_pem;
  }
  auto as_text = [](const Bytes& b) {
    return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
  };
  CONFPOD_ASSIGN_OR_RETURN(
      tdx::Collateral assembled,
      tdx::collateral_from_pcs(as_text(tcb_info.data), as_text(qe_identity.data), tcb_chain,
                               pck_crl.data, crl_chain, root_crl.data));
  auto root = tdx::intel_sgx_root_ca();
  CONFPOD_ASSIGN_OR_RETURN(tdx::VerifiedCollateral verified,
                           tdx::verify_collateral(assembled, root.get(), now));
  auto shared = std::make_shared<const tdx::VerifiedCollateral>(std::move(verified));
  std::lock_guard lock(mu_);
  ++verifications_;
  tdx_cache_[cache_key] = Cached{generation, shared};
  return shared;
}

std::vector<store::CollateralEntry> expiring_within(std::vector<store::CollateralEntry> entries,
                                                    UnixSeconds now, int days) {
  std::vector<store::CollateralEntry> out;
  for (store::CollateralEntry& e : entries)
    if (e.item.not_after <= now + static_cast<UnixSeconds>(days) * 86400)
      out.push_back(std::move(e));
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.item.not_after < b.item.not_after; });
  return out;
}

namespace {

constexpr std::uint64_t kDayUsec = 24ull * 3600 * 1000 * 1000;

struct ExpiryWatch {
  store::SqliteCollateralStore& store;
  CollateralCheck on_check;
};

void log_expiring(const ExpiryWatch& watch) {
  auto entries = watch.store.list();
  if (!entries.ok()) {
    pods::log_warning("cannot check collateral expiry", {{"error", entries.error().describe()}});
    return;
  }
  if (watch.on_check) watch.on_check(*entries);
  const UnixSeconds now = now_unix();
  for (const store::CollateralEntry& e : expiring_within(std::move(*entries), now)) {
    pods::log_warning(e.item.not_after < now ? "collateral has expired" : "collateral expires soon",
                      {{"id", e.item.id()},
                       {"kind", std::string(collateral::kind_name(e.item.kind))},
                       {"subject", e.item.subject},
                       {"not_after", format_rfc3339(e.item.not_after)}});
  }
}

int on_expiry_timer(sd_event_source* source, std::uint64_t, void* userdata) {
  log_expiring(*static_cast<ExpiryWatch*>(userdata));
  sd_event_source_set_time_relative(source, kDayUsec);
  sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
  return 0;
}

}  // namespace

Result<EventSourcePtr> watch_collateral_expiry(sd_event* event, store::SqliteCollateralStore& store,
                                               CollateralCheck on_check) {
  auto watch = std::make_unique<ExpiryWatch>(ExpiryWatch{store, std::move(on_check)});
  sd_event_source* raw = nullptr;
  // 1 µs: as soon as the loop runs (a daemon that starts logs the state at once).
  const int r =
      sd_event_add_time_relative(event, &raw, CLOCK_MONOTONIC, 1, 0, &on_expiry_timer, watch.get());
  if (r < 0)
    return make_error("kbs.collateral.timer",
                      std::string("sd_event_add_time: ") + std::strerror(-r));
  EventSourcePtr source(raw);
  // The watch lives as long as its event source.
  sd_event_source_set_destroy_callback(
      raw, [](void* userdata) { delete static_cast<ExpiryWatch*>(userdata); });
  (void)watch.release();
  return source;
}

}  // namespace confpod::kbs_http
