// AMD SEV-SNP attestation report (ATTESTATION_REPORT, versions 2, 3 and 5): the exact
// 1184-byte layout of the SEV-SNP Firmware ABI specification, parsed from untrusted bytes.
//
// Parsing checks only the shape (size, version, reserved signing-key values); nothing in a
// parsed Report is trustworthy until verify_report() has checked its signature.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::snp {

inline constexpr std::size_t kReportSize = 0x4A0;  // 1184 bytes, every version
inline constexpr std::size_t kSignedSize = 0x2A0;  // the signature covers bytes [0, 0x2A0)
inline constexpr std::uint32_t kSignatureAlgoEcdsaP384Sha384 = 1;

// The EPYC generations that run SEV-SNP. The product decides the root certificates and the
// layout of TCB_VERSION.
enum class Product { kMilan, kGenoa, kTurin };

// "milan", "genoa", "turin".
std::string_view product_name(Product product);
// Inverse of product_name (case-insensitive). Error "snp.product".
Result<Product> parse_product(std::string_view name);
// The product a (v3+) report's CPUID family/model names, as AMD's KDS specification maps
// them; nullopt for a family/model this code does not know.
std::optional<Product> product_from_cpuid(std::uint8_t family, std::uint8_t model);

// TCB_VERSION decoded. Milan and Genoa lay the 8 bytes out as
// [bootloader, tee, 4 reserved, snp, microcode]; Turin as
// [fmc, bootloader, tee, snp, 3 reserved, microcode].
struct TcbVersion {
  std::uint8_t bootloader = 0;
  std::uint8_t tee = 0;
  std::uint8_t snp = 0;
  std::uint8_t microcode = 0;
  std::optional<std::uint8_t> fmc;  // Turin and later only

  bool operator==(const TcbVersion&) const = default;
};
using RawTcb = std::array<std::uint8_t, 8>;  // as in the report (little-endian u64)

TcbVersion decode_tcb(const RawTcb& raw, Product product);
RawTcb encode_tcb(const TcbVersion& tcb, Product product);
// "bootloader=3 tee=0 snp=8 microcode=115" (+ " fmc=N" when present).
std::string to_string(const TcbVersion& tcb);

// One TCB_VERSION field of a report: the signed bytes and their decoding.
struct Tcb {
  RawTcb raw{};
  TcbVersion version;
};

// GUEST POLICY (report offset 0x08), the bits the guest owner set at launch.
struct GuestPolicy {
  std::uint64_t raw = 0;
  std::uint8_t abi_minor = 0;       // bits 7:0
  std::uint8_t abi_major = 0;       // bits 15:8
  bool smt = false;                 // bit 16: SMT may be enabled on the host
  bool migrate_ma = false;          // bit 18: a migration agent may be associated
  bool debug = false;               // bit 19: the hypervisor may debug (read/write) the guest
  bool single_socket = false;       // bit 20
  bool cxl_allowed = false;         // bit 21
  bool mem_aes_256_xts = false;     // bit 22
  bool rapl_disabled = false;       // bit 23
  bool ciphertext_hiding = false;   // bit 24
  bool page_swap_disabled = false;  // bit 25
};
GuestPolicy decode_policy(std::uint64_t raw);

// PLATFORM_INFO (report offset 0x40): the host's configuration when the report was made.
struct PlatformInfo {
  std::uint64_t raw = 0;
  bool smt_enabled = false;                // bit 0
  bool tsme_enabled = false;               // bit 1
  bool ecc_enabled = false;                // bit 2
  bool rapl_disabled = false;              // bit 3
  bool ciphertext_hiding_enabled = false;  // bit 4
  bool alias_check_complete = false;       // bit 5
  bool tio_enabled = false;                // bit 7
};
PlatformInfo decode_platform_info(std::uint64_t raw);

// SIGNING_KEY (report offset 0x48, bits 4:2): which endorsement key signed the report.
enum class SigningKey : std::uint8_t { kVcek = 0, kVlek = 1, kNone = 7 };
std::string_view signing_key_name(SigningKey key);  // "vcek", "vlek", "none"

struct FirmwareVersion {
  std::uint8_t major = 0;
  std::uint8_t minor = 0;
  std::uint8_t build = 0;
  bool operator==(const FirmwareVersion&) const = default;
};
std::string to_string(const FirmwareVersion& version);  // "1.55.21"

// An integer field (policy, platform info) as "0x" + lower-case hex: 0x30000.
std::string format_hex(std::uint64_t value);

struct Cpuid {
  std::uint8_t family = 0;  // combined family, e.g. 0x19
  std::uint8_t model = 0;   // combined model
  std::uint8_t stepping = 0;
};

struct Report {
  Bytes raw;  // all kReportSize bytes as received

  std::uint32_t version = 0;
  std::uint32_t guest_svn = 0;
  GuestPolicy policy;
  std::array<std::uint8_t, 16> family_id{};
  std::array<std::uint8_t, 16> image_id{};
  std::uint32_t vmpl = 0;
  std::uint32_t signature_algo = 0;
  Tcb current_tcb;
  PlatformInfo platform_info;
  bool author_key_en = false;  // signer info bit 0
  bool mask_chip_key = false;  // signer info bit 1: CHIP_ID is zeroed
  SigningKey signing_key = SigningKey::kVcek;
  std::array<std::uint8_t, 64> report_data{};
  std::array<std::uint8_t, 48> measurement{};
  std::array<std::uint8_t, 32> host_data{};
  std::array<std::uint8_t, 48> id_key_digest{};
  std::array<std::uint8_t, 48> author_key_digest{};
  std::array<std::uint8_t, 32> report_id{};
  std::array<std::uint8_t, 32> report_id_ma{};
  Tcb reported_tcb;            // the TCB the signing VCEK was derived from
  std::optional<Cpuid> cpuid;  // version 3 and later
  std::array<std::uint8_t, 64> chip_id{};
  Tcb committed_tcb;
  FirmwareVersion current;
  FirmwareVersion committed;
  Tcb launch_tcb;
  std::optional<std::uint64_t> launch_mit_vector;   // version 5 and later
  std::optional<std::uint64_t> current_mit_vector;  // version 5 and later
  std::array<std::uint8_t, 72> signature_r{};       // little-endian
  std::array<std::uint8_t, 72> signature_s{};       // little-endian

  // The product whose TCB layout decoded the Tcb fields: the one passed to parse_report,
  // else the one the CPUID fields name. nullopt when neither says (a version 2 report parsed
  // without a product): the Tcb fields are then decoded with the Milan/Genoa layout.
  std::optional<Product> product;

  // The bytes the signature covers.
  ByteView signed_bytes() const { return ByteView(raw).first(kSignedSize); }
};

// Parses a report. `product`, when known (e.g. from the verified VCEK chain), selects the TCB
// layout; a v3+ report whose CPUID names another product is rejected ("snp.report.product").
// Errors: "snp.report.size", "snp.report.version", "snp.report.signing_key",
// "snp.report.product".
Result<Report> parse_report(ByteView data, std::optional<Product> product = std::nullopt);

}  // namespace confpod::snp
