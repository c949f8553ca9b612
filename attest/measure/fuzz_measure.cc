// libFuzzer entry point: firmware images and event logs are hostile input to the measurement
// code (the host supplies them), so every parser here must survive any byte string. The same
// bytes are tried as an OVMF image (SNP), a TDVF image (TDX), a CCEL table and a CC event log.
#include <cstddef>
#include <cstdint>

#include "attest/measure/ccel.h"
#include "attest/measure/snp_measure.h"
#include "attest/measure/tdx_measure.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace confpod::measure;
  confpod::ByteView bytes(data, size);

  auto info = parse_ovmf_sev(bytes);
  if (info.ok()) {
    SnpParams params;
    params.vcpus = 2;
    params.vcpu_signature = cpu_signature(25, 1, 1);
    (void)snp_launch_digest_from(Sha384Digest{}, *info, std::nullopt, params);
    (void)snp_launch_digest_from(Sha384Digest{}, *info, kernel_hashes({}, {}, "console=ttyS0"),
                                 params);
    params.vmm = VmmType::kEc2;
    (void)snp_launch_digest_from(Sha384Digest{}, *info, std::nullopt, params);
    if (size <= (1u << 20)) (void)snp_launch_digest(bytes, std::nullopt, params);
  }

  (void)tdx_mrtd(bytes);

  (void)parse_ccel_table(bytes);
  auto log = parse_cc_event_log(bytes);
  if (log.ok()) (void)replay_rtmrs(*log);
  return 0;
}
