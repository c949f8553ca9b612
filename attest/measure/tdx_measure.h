// Expected Intel TDX MRTD of a TD booted from a TDVF image (OVMF built with TDX support, or
// td-shim), as the TDX module accumulates it while the VMM builds the TD.
//
// The image's TDX metadata (located through the OVMF GUIDed table entry
// e47a6535-984a-4798-865e-4685a7bf8ec2) lists the sections the VMM copies into or reserves in
// TD memory. For every page the VMM adds (TDH.MEM.PAGE.ADD) the module hashes a 128-byte
// record "MEM.PAGE.ADD" + GPA; for a section with the MR.EXTEND attribute it then extends each
// 256-byte chunk of that page (TDH.MR.EXTEND): a 128-byte record "MR.EXTEND" + GPA, then the
// 256 bytes. MRTD is the SHA-384 of that whole stream. Sections are processed in metadata
// order, page by page (KVM adds a page, then extends it). See docs/measure.md.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/measure/ovmf.h"

namespace confpod::measure {

// Error code "measure.tdvf": no TDX metadata, bad descriptor, sections outside the image,
// misaligned, overlapping or implausibly large, unknown types or attributes.

inline constexpr Guid kTdxMetadataGuid = guid("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae");

enum class TdvfSectionType : std::uint32_t {
  kBfv = 0,           // boot firmware volume (code)
  kCfv = 1,           // configuration firmware volume (variables)
  kTdHob = 2,         // the HOB list the VMM writes
  kTempMem = 3,       // temporary memory, zero
  kPermMem = 4,       // permanent memory (usually added later with PAGE.AUG)
  kPayload = 5,       // td-shim payload
  kPayloadParam = 6,  // td-shim payload parameters
  kTdInfo = 7,
  kTdParams = 8,
};

inline constexpr std::uint32_t kTdvfAttrMrExtend = 1u << 0;
inline constexpr std::uint32_t kTdvfAttrPageAug = 1u << 1;

struct TdvfSection {
  std::uint32_t data_offset = 0;  // in the image
  std::uint32_t raw_data_size = 0;
  std::uint64_t memory_address = 0;  // GPA
  std::uint64_t memory_data_size = 0;
  TdvfSectionType type = TdvfSectionType::kBfv;
  std::uint32_t attributes = 0;
};

std::string_view to_string(TdvfSectionType type);

// Parses and validates the TDX metadata ("TDVF" descriptor, version 1).
Result<std::vector<TdvfSection>> parse_tdvf_metadata(ByteView image);

// MRTD of a TD built from `image` (what TDREPORT/quote field MRTD holds).
Result<Sha384Digest> tdx_mrtd(ByteView image);

}  // namespace confpod::measure
