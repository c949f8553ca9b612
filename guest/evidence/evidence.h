// Evidence the agent gathers about itself.
//
// SNP and TDX: a hardware report through configfs-tsm (/sys/kernel/config/tsm/report, Linux
// 6.7+), or for SNP the /dev/sev-guest SNP_GET_REPORT ioctl on older kernels. tee none: the
// "sample" evidence Trustee defines (no hardware: accepted only by a KBS that allows insecure
// pods), whose launch-bound init-data digest is simulated by the kernel command line
// parameter confpod.init_data_digest=<hex> (the host controls it: this proves nothing, and
// exists so that the same code path runs in tests without SEV/TDX hardware).
//
// Errors: "evidence.unavailable" (no interface for the TEE), "evidence.io",
// "evidence.format" (a report too short or of the wrong shape).
//
// configfs-tsm: every report is a fresh entry <root>/sys/kernel/config/tsm/report/<name>
// (mkdir, check `provider`, write `inblob`, read `outblob` and for SNP `auxblob`, rmdir), so
// concurrent callers never share one; `generation` is compared before and after the reads
// when present. An entry that already exists (EEXIST) is used as it is: that is how tests
// hand the code a prepared fake tree (configfs creates the attribute files on mkdir), and a
// real collision with the default random names does not happen.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::guest {

class EvidenceProvider {
 public:
  virtual ~EvidenceProvider() = default;
  // The KBS tee name: "snp", "tdx" or "sample".
  virtual std::string tee() const = 0;
  // The init-data digest the launch bound: SNP HOST_DATA (32 bytes), TDX MRCONFIGID (48
  // bytes), sample: the kernel command line value (32 bytes).
  virtual Result<Bytes> init_data_digest() = 0;
  // The "tee-evidence.primary_evidence" JSON for the KBS, carrying `report_data` (at most 64
  // bytes: the 48-byte runtime-data digest, zero-padded to 64 for hardware reports, as is for
  // sample) in the form docs/kbs.md lists: snp {"attestation_report": <base64 of the 1184
  // bytes>, "cert_chain": [{"cert_type","data": <base64>}] | null}, tdx {"quote": <base64>,
  // "cc_eventlog": <base64> | null}, sample {"svn": "1", "report_data": <base64>}.
  // Error "evidence.format" for report_data longer than 64 bytes.
  virtual Result<nlohmann::json> evidence(ByteView report_data) = 0;
};

// The name of the configfs-tsm report entry one report uses: a single path component.
// Default: "confpod-<pid>-<16 random hex>", fresh per call. Tests pass a fixed name.
using TsmEntryNamer = std::function<std::string()>;

// Picks the provider for the init-data tee ("none" or "sample" -> sample, "snp", "tdx"):
// snp uses configfs-tsm when <root>/sys/kernel/config/tsm/report exists, else
// <root>/dev/sev-guest; tdx needs configfs-tsm. `root` prefixes every path it reads (/sys,
// /dev, /proc), so tests can point it at a prepared tree. Error "evidence.unavailable".
Result<std::unique_ptr<EvidenceProvider>> make_evidence_provider(const std::string& tee,
                                                                 const std::string& root = "/");
Result<std::unique_ptr<EvidenceProvider>> make_evidence_provider(const std::string& tee,
                                                                 const std::string& root,
                                                                 TsmEntryNamer namer);

// Picks the provider by what this machine has, never by what the host claims: a configfs-tsm
// report entry whose provider is "sev_guest" (snp) or "tdx_guest" (tdx), else /dev/sev-guest
// (snp), else sample. A TDX guest device (/dev/tdx_guest) without configfs-tsm is
// "evidence.unavailable" rather than a silent fall back to sample.
Result<std::unique_ptr<EvidenceProvider>> detect_evidence_provider(const std::string& root = "/");
Result<std::unique_ptr<EvidenceProvider>> detect_evidence_provider(const std::string& root,
                                                                   TsmEntryNamer namer);

// The init-data digest length the TEE binds: 32 (SNP, sample/none) or 48 (TDX); 0 for an
// unknown tee.
std::size_t init_data_digest_size(const std::string& tee);

// The kernel command line parameter carrying the sample TEE's init-data digest (64 hex).
inline constexpr const char* kSampleDigestParameter = "confpod.init_data_digest";

}  // namespace confpod::guest
