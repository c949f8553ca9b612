#include "attest/snp/report.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace confpod::snp {

namespace {

// Offsets of the ATTESTATION_REPORT fields (SEV-SNP Firmware ABI specification, table
// "ATTESTATION_REPORT Structure").
constexpr std::size_t kOffVersion = 0x000;
constexpr std::size_t kOffGuestSvn = 0x004;
constexpr std::size_t kOffPolicy = 0x008;
constexpr std::size_t kOffFamilyId = 0x010;
constexpr std::size_t kOffImageId = 0x020;
constexpr std::size_t kOffVmpl = 0x030;
constexpr std::size_t kOffSignatureAlgo = 0x034;
constexpr std::size_t kOffCurrentTcb = 0x038;
constexpr std::size_t kOffPlatformInfo = 0x040;
constexpr std::size_t kOffSignerInfo = 0x048;
constexpr std::size_t kOffReportData = 0x050;
constexpr std::size_t kOffMeasurement = 0x090;
constexpr std::size_t kOffHostData = 0x0C0;
constexpr std::size_t kOffIdKeyDigest = 0x0E0;
constexpr std::size_t kOffAuthorKeyDigest = 0x110;
constexpr std::size_t kOffReportId = 0x140;
constexpr std::size_t kOffReportIdMa = 0x160;
constexpr std::size_t kOffReportedTcb = 0x180;
constexpr std::size_t kOffCpuidFamily = 0x188;  // v3+
constexpr std::size_t kOffCpuidModel = 0x189;
constexpr std::size_t kOffCpuidStepping = 0x18A;
constexpr std::size_t kOffChipId = 0x1A0;
constexpr std::size_t kOffCommittedTcb = 0x1E0;
constexpr std::size_t kOffCurrentBuild = 0x1E8;
constexpr std::size_t kOffCurrentMinor = 0x1E9;
constexpr std::size_t kOffCurrentMajor = 0x1EA;
constexpr std::size_t kOffCommittedBuild = 0x1EC;
constexpr std::size_t kOffCommittedMinor = 0x1ED;
constexpr std::size_t kOffCommittedMajor = 0x1EE;
constexpr std::size_t kOffLaunchTcb = 0x1F0;
constexpr std::size_t kOffLaunchMitVector = 0x1F8;  // v5+
constexpr std::size_t kOffCurrentMitVector = 0x200;
constexpr std::size_t kOffSignatureR = 0x2A0;
constexpr std::size_t kOffSignatureS = 0x2E8;

template <std::size_t N>
std::array<std::uint8_t, N> copy_field(ByteView data, std::size_t offset) {
  std::array<std::uint8_t, N> out{};
  std::memcpy(out.data(), data.data() + offset, N);
  return out;
}

bool bit(std::uint64_t value, unsigned index) { return ((value >> index) & 1u) != 0; }

Tcb read_tcb(ByteView data, std::size_t offset, Product layout) {
  Tcb tcb;
  tcb.raw = copy_field<8>(data, offset);
  tcb.version = decode_tcb(tcb.raw, layout);
  return tcb;
}

}  // namespace

std::string_view product_name(Product product) {
  switch (product) {
    case Product::kMilan:
      return "milan";
    case Product::kGenoa:
      return "genoa";
    case Product::kTurin:
      return "turin";
  }
  return "unknown";
}

Result<Product> parse_product(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (Product p : {Product::kMilan, Product::kGenoa, Product::kTurin})
    if (lower == product_name(p)) return p;
  return make_error("snp.product",
                    "unknown SEV-SNP product '" + std::string(name) + "' (milan, genoa, turin)");
}

std::optional<Product> product_from_cpuid(std::uint8_t family, std::uint8_t model) {
  // Family/model ranges per AMD's KDS specification ("Determining the Product Name"), as
  // virtee/sev's Generation::identify_cpu also maps them.
  if (family == 0x19) {
    if (model <= 0x0F) return Product::kMilan;
    if ((model >= 0x10 && model <= 0x1F) || (model >= 0xA0 && model <= 0xAF))
      return Product::kGenoa;
  }
  if (family == 0x1A && model <= 0x11) return Product::kTurin;
  return std::nullopt;
}

TcbVersion decode_tcb(const RawTcb& raw, Product product) {
  TcbVersion tcb;
  if (product == Product::kTurin) {
    tcb.fmc = raw[0];
    tcb.bootloader = raw[1];
    tcb.tee = raw[2];
    tcb.snp = raw[3];
  } else {
    tcb.bootloader = raw[0];
    tcb.tee = raw[1];
    tcb.snp = raw[6];
  }
  tcb.microcode = raw[7];
  return tcb;
}

RawTcb encode_tcb(const TcbVersion& tcb, Product product) {
  RawTcb raw{};
  if (product == Product::kTurin) {
    raw[0] = tcb.fmc.value_or(0);
    raw[1] = tcb.bootloader;
    raw[2] = tcb.tee;
    raw[3] = tcb.snp;
  } else {
    raw[0] = tcb.bootloader;
    raw[1] = tcb.tee;
    raw[6] = tcb.snp;
  }
  raw[7] = tcb.microcode;
  return raw;
}

std::string to_string(const TcbVersion& tcb) {
  std::string out = "bootloader=" + std::to_string(tcb.bootloader) +
                    " tee=" + std::to_string(tcb.tee) + " snp=" + std::to_string(tcb.snp) +
                    " microcode=" + std::to_string(tcb.microcode);
  if (tcb.fmc) out += " fmc=" + std::to_string(*tcb.fmc);
  return out;
}

GuestPolicy decode_policy(std::uint64_t raw) {
  GuestPolicy p;
  p.raw = raw;
  p.abi_minor = static_cast<std::uint8_t>(raw & 0xFF);
  p.abi_major = static_cast<std::uint8_t>((raw >> 8) & 0xFF);
  p.smt = bit(raw, 16);
  p.migrate_ma = bit(raw, 18);
  p.debug = bit(raw, 19);
  p.single_socket = bit(raw, 20);
  p.cxl_allowed = bit(raw, 21);
  p.mem_aes_256_xts = bit(raw, 22);
  p.rapl_disabled = bit(raw, 23);
  p.ciphertext_hiding = bit(raw, 24);
  p.page_swap_disabled = bit(raw, 25);
  return p;
}

PlatformInfo decode_platform_info(std::uint64_t raw) {
  PlatformInfo p;
  p.raw = raw;
  p.smt_enabled = bit(raw, 0);
  p.tsme_enabled = bit(raw, 1);
  p.ecc_enabled = bit(raw, 2);
  p.rapl_disabled = bit(raw, 3);
  p.ciphertext_hiding_enabled = bit(raw, 4);
  p.alias_check_complete = bit(raw, 5);
  p.tio_enabled = bit(raw, 7);
  return p;
}

std::string_view signing_key_name(SigningKey key) {
  switch (key) {
    case SigningKey::kVcek:
      return "vcek";
    case SigningKey::kVlek:
      return "vlek";
    case SigningKey::kNone:
      return "none";
  }
  return "unknown";
}

std::string to_string(const FirmwareVersion& version) {
  return std::to_string(version.major) + "." + std::to_string(version.minor) + "." +
         std::to_string(version.build);
}

std::string format_hex(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[value & 0xF]);
    value >>= 4;
  } while (value != 0);
  return "0x" + out;
}

Result<Report> parse_report(ByteView data, std::optional<Product> product) {
  if (data.size() != kReportSize)
    return make_error("snp.report.size", "an SEV-SNP report is " + std::to_string(kReportSize) +
                                             " bytes, got " + std::to_string(data.size()));
  const std::uint8_t* p = data.data();

  Report r;
  r.version = load_le32(p + kOffVersion);
  if (r.version != 2 && r.version != 3 && r.version != 5)
    return make_error(
        "snp.report.version",
        "unsupported report version " + std::to_string(r.version) + " (supported: 2, 3, 5)");

  const std::uint32_t signer_info = load_le32(p + kOffSignerInfo);
  const auto signing_key = static_cast<std::uint8_t>((signer_info >> 2) & 0x7);
  if (signing_key != 0 && signing_key != 1 && signing_key != 7)
    return make_error("snp.report.signing_key",
                      "SIGNING_KEY " + std::to_string(signing_key) + " is reserved");

  if (r.version >= 3) {
    r.cpuid = Cpuid{p[kOffCpuidFamily], p[kOffCpuidModel], p[kOffCpuidStepping]};
    std::optional<Product> named = product_from_cpuid(r.cpuid->family, r.cpuid->model);
    // The CPUID fields are part of the signed report; a product that contradicts them is
    // the wrong root of trust for this report.
    if (product && named && *named != *product)
      return make_error("snp.report.product",
                        "report CPUID (family 0x" + to_hex(ByteView(&r.cpuid->family, 1)) +
                            " model 0x" + to_hex(ByteView(&r.cpuid->model, 1)) + ") names " +
                            std::string(product_name(*named)) + ", expected " +
                            std::string(product_name(*product)));
    r.product = product ? product : named;
  } else {
    r.product = product;
  }
  // Milan and Genoa share a TCB layout, so Milan stands for "not Turin" here.
  const Product layout = r.product.value_or(Product::kMilan);

  r.raw.assign(data.begin(), data.end());
  r.guest_svn = load_le32(p + kOffGuestSvn);
  r.policy = decode_policy(load_le64(p + kOffPolicy));
  r.family_id = copy_field<16>(data, kOffFamilyId);
  r.image_id = copy_field<16>(data, kOffImageId);
  r.vmpl = load_le32(p + kOffVmpl);
  r.signature_algo = load_le32(p + kOffSignatureAlgo);
  r.current_tcb = read_tcb(data, kOffCurrentTcb, layout);
  r.platform_info = decode_platform_info(load_le64(p + kOffPlatformInfo));
  r.author_key_en = (signer_info & 0x1) != 0;
  r.mask_chip_key = (signer_info & 0x2) != 0;
  r.signing_key = static_cast<SigningKey>(signing_key);
  r.report_data = copy_field<64>(data, kOffReportData);
  r.measurement = copy_field<48>(data, kOffMeasurement);
  r.host_data = copy_field<32>(data, kOffHostData);
  r.id_key_digest = copy_field<48>(data, kOffIdKeyDigest);
  r.author_key_digest = copy_field<48>(data, kOffAuthorKeyDigest);
  r.report_id = copy_field<32>(data, kOffReportId);
  r.report_id_ma = copy_field<32>(data, kOffReportIdMa);
  r.reported_tcb = read_tcb(data, kOffReportedTcb, layout);
  r.chip_id = copy_field<64>(data, kOffChipId);
  r.committed_tcb = read_tcb(data, kOffCommittedTcb, layout);
  r.current = FirmwareVersion{p[kOffCurrentMajor], p[kOffCurrentMinor], p[kOffCurrentBuild]};
  r.committed =
      FirmwareVersion{p[kOffCommittedMajor], p[kOffCommittedMinor], p[kOffCommittedBuild]};
  r.launch_tcb = read_tcb(data, kOffLaunchTcb, layout);
  if (r.version >= 5) {
    r.launch_mit_vector = load_le64(p + kOffLaunchMitVector);
    r.current_mit_vector = load_le64(p + kOffCurrentMitVector);
  }
  r.signature_r = copy_field<72>(data, kOffSignatureR);
  r.signature_s = copy_field<72>(data, kOffSignatureS);
  return r;
}

}  // namespace confpod::snp
