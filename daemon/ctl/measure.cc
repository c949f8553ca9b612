#include "daemon/ctl/measure.h"

#include <optional>

#include "attest/base/bytes.h"
#include "attest/measure/cache.h"
#include "attest/measure/ccel.h"
#include "attest/measure/snp_measure.h"
#include "attest/measure/tdx_measure.h"

namespace confpod::ctl {

namespace {

// Firmware images are a few MiB; event logs and ACPI tables far less.
constexpr std::size_t kMaxFirmwareBytes = 64u << 20;
constexpr std::size_t kMaxCcelBytes = 16u << 20;

int usage_error(std::ostream& err, const std::string& what) {
  err << "error: " << what << "\n";
  return kExitUsage;
}

int rejected(std::ostream& err, const Error& error) {
  err << "rejected: " << error.describe() << "\n";
  return kExitRejected;
}

// 1 to 16 hex digits, "0x" optional: "0x21", "21" and "0X21" are all 0x21.
std::optional<std::uint64_t> parse_hex_u64(std::string text) {
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) text.erase(0, 2);
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return std::nullopt;
    value = (value << 4) | static_cast<std::uint64_t>(digit);
  }
  return value;
}

}  // namespace

int measure_snp(const MeasureSnpArgs& args, std::ostream& out, std::ostream& err) {
  using namespace confpod::measure;
  if (args.ovmf.empty()) return usage_error(err, "--ovmf is required");
  if (args.kernel.empty() && (!args.initrd.empty() || !args.append.empty()))
    return usage_error(err, "--initrd and --append need --kernel");
  if (args.vcpus == 0 || args.vcpus > kMaxVcpus)
    return usage_error(err, "--vcpus must be 1.." + std::to_string(kMaxVcpus));

  SnpParams params;
  params.vcpus = args.vcpus;
  auto signature = vcpu_signature(args.vcpu_type);
  if (!signature.ok()) return usage_error(err, "--vcpu-type: " + signature.error().message);
  params.vcpu_signature = *signature;
  auto features = parse_hex_u64(args.guest_features);
  if (!features)
    return usage_error(
        err, "--guest-features '" + args.guest_features + "' is not a hex number such as 0x21");
  params.guest_features = *features;
  auto vmm = parse_vmm_type(args.vmm_type);
  if (!vmm.ok()) return usage_error(err, "--vmm-type: " + vmm.error().message);
  params.vmm = *vmm;

  auto ovmf = read_file(args.ovmf, kMaxFirmwareBytes);
  if (!ovmf.ok()) return usage_error(err, "--ovmf: " + ovmf.error().message);

  std::optional<KernelHashes> kernel;
  if (!args.kernel.empty()) {
    // Streamed: an initrd may be larger than anything worth holding in memory.
    auto k = file_sha256(args.kernel);
    if (!k.ok()) return usage_error(err, "--kernel: " + k.error().message);
    KernelHashes hashes;
    hashes.kernel = *k;
    if (!args.initrd.empty()) {
      auto i = file_sha256(args.initrd);
      if (!i.ok()) return usage_error(err, "--initrd: " + i.error().message);
      hashes.initrd = *i;
    } else {
      hashes.initrd = sha256_of(ByteView{});
    }
    hashes.cmdline = cmdline_sha256(args.append);
    kernel = hashes;
  }

  auto digest = snp_launch_digest(*ovmf, kernel, params);
  if (!digest.ok()) {
    if (digest.error().code == "measure.params") return usage_error(err, digest.error().message);
    return rejected(err, digest.error());
  }
  out << to_hex(*digest) << "\n";
  return kExitOk;
}

int measure_tdx(const MeasureTdxArgs& args, std::ostream& out, std::ostream& err) {
  if (args.firmware.empty()) return usage_error(err, "--firmware is required");
  auto image = read_file(args.firmware, kMaxFirmwareBytes);
  if (!image.ok()) return usage_error(err, "--firmware: " + image.error().message);
  auto mrtd = measure::tdx_mrtd(*image);
  if (!mrtd.ok()) return rejected(err, mrtd.error());
  out << to_hex(*mrtd) << "\n";
  return kExitOk;
}

int measure_rtmr(const MeasureRtmrArgs& args, std::ostream& out, std::ostream& err) {
  if (args.ccel_table.empty() || args.ccel_data.empty())
    return usage_error(err, "--ccel-table and --ccel-data are required");
  auto table = read_file(args.ccel_table, kMaxCcelBytes);
  if (!table.ok()) return usage_error(err, "--ccel-table: " + table.error().message);
  auto data = read_file(args.ccel_data, kMaxCcelBytes);
  if (!data.ok()) return usage_error(err, "--ccel-data: " + data.error().message);
  auto replay = measure::replay_ccel(*table, *data);
  if (!replay.ok()) return rejected(err, replay.error());
  for (std::size_t i = 0; i < replay->rtmr.size(); ++i)
    out << "rtmr" << i << "=" << to_hex(replay->rtmr[i]) << "\n";
  return kExitOk;
}

}  // namespace confpod::ctl
