// The OVMF "GUIDed table" at the end of a firmware image, and the digest helpers the
// measurement code shares.
//
// OVMF (and TDVF, which is OVMF built for TDX) ends with the reset vector. The 32 bytes at the
// very end hold the reset vector jump; immediately before them sits a footer entry
// {u16 length, GUID 96b582de-1fb2-45f7-baea-a366c55a082d} whose length covers the whole
// table. The table is a run of entries laid out back to front: each entry ends with
// {u16 length, GUID} and its data precedes that trailer. This is how a VMM finds the SEV
// metadata, the SEV-ES AP reset address, the SEV hashes table and the TDX metadata without
// knowing the firmware build. (edk2 OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm.)
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"

namespace confpod::measure {

using Sha256Digest = std::array<std::uint8_t, 32>;
using Sha384Digest = std::array<std::uint8_t, 48>;

Sha256Digest sha256_of(ByteView data);
Sha384Digest sha384_of(ByteView data);

// A GUID in the on-disk (EFI_GUID, mixed-endian) byte order: the first three groups are
// little-endian, the last two are stored as written.
using Guid = std::array<std::uint8_t, 16>;

namespace detail {
constexpr std::uint8_t guid_nibble(char c) {
  return static_cast<std::uint8_t>(c >= '0' && c <= '9'   ? c - '0'
                                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                          : c - 'A' + 10);
}
constexpr std::uint8_t guid_byte(std::string_view s, std::size_t at) {
  return static_cast<std::uint8_t>((guid_nibble(s[at]) << 4) | guid_nibble(s[at + 1]));
}
}  // namespace detail

// From the canonical 36-character text form, e.g. "96b582de-1fb2-45f7-baea-a366c55a082d".
constexpr Guid guid(std::string_view s) {
  // Positions of each stored byte's two hex digits in the text form.
  constexpr std::size_t kAt[16] = {6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34};
  Guid g{};
  for (std::size_t i = 0; i < 16; ++i) g[i] = detail::guid_byte(s, kAt[i]);
  return g;
}

std::string guid_to_string(const Guid& g);

inline constexpr Guid kOvmfTableFooterGuid = guid("96b582de-1fb2-45f7-baea-a366c55a082d");
inline constexpr Guid kSevEsResetBlockGuid = guid("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
inline constexpr Guid kSevHashTableRvGuid = guid("7255371f-3a3b-4b04-927b-1da6efa8d454");
inline constexpr Guid kSevMetadataGuid = guid("dc886566-984a-4798-a75e-5585a7bf67cc");
inline constexpr Guid kTdxMetadataOffsetGuid = guid("e47a6535-984a-4798-865e-4685a7bf8ec2");

struct OvmfTableEntry {
  Guid guid{};
  ByteView data;  // the entry's payload (without its 18-byte trailer), a view into the image
};

struct OvmfTable {
  std::vector<OvmfTableEntry> entries;  // in image order, back to front as the table is read

  // The first entry with this GUID, if any.
  const OvmfTableEntry* find(const Guid& g) const;
  // The little-endian u32 at the start of that entry's data. Error `code` naming `what`
  // when the entry is absent or shorter than 4 bytes.
  Result<std::uint32_t> u32(const Guid& g, std::string_view what, const std::string& code) const;
};

// Parses the GUIDed table of a firmware image. Views point into `image`.
// Errors (code `code`, e.g. "measure.ovmf" or "measure.tdvf"): image too small, footer GUID
// missing, table or entry lengths that do not fit.
Result<OvmfTable> parse_ovmf_table(ByteView image, const std::string& code);

}  // namespace confpod::measure
