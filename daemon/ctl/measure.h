// `confpodctl measure snp|tdx|rtmr`: expected launch measurements computed from the files a
// guest is launched with (attest/measure, docs/measure.md).
#pragma once

#include <ostream>
#include <string>

#include "daemon/ctl/verify.h"  // kExitOk, kExitRejected, kExitUsage

namespace confpod::ctl {

struct MeasureSnpArgs {
  std::string ovmf;
  std::string kernel;  // optional; --initrd and --append need it
  std::string initrd;  // optional
  std::string append;  // optional
  unsigned vcpus = 0;
  std::string vcpu_type;               // QEMU -cpu model name: EPYC-v4, EPYC-Milan, ...
  std::string guest_features = "0x1";  // hex, "0x" optional
  std::string vmm_type = "qemu";       // qemu | ec2
};

struct MeasureTdxArgs {
  std::string firmware;
};

struct MeasureRtmrArgs {
  std::string ccel_table;
  std::string ccel_data;
};

// Each prints the measurement on `out` (lower-case hex; for rtmr four `rtmrN=<hex>` lines) and
// returns kExitOk. Unusable arguments or unreadable files: one `error: ...` line on `err`,
// kExitUsage. Files that were read but cannot be measured (bad firmware, an OVMF that cannot
// measure a kernel, a broken event log): one `rejected: <code>: <message>` line, kExitRejected.
int measure_snp(const MeasureSnpArgs& args, std::ostream& out, std::ostream& err);
int measure_tdx(const MeasureTdxArgs& args, std::ostream& out, std::ostream& err);
int measure_rtmr(const MeasureRtmrArgs& args, std::ostream& out, std::ostream& err);

}  // namespace confpod::ctl
