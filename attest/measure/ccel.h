// Replaying a TDX guest's RTMRs from its Confidential Computing Event Log.
//
// The guest firmware records every RTMR extension in a TCG2 "crypto agile" event log (TCG PC
// Client Platform Firmware Profile, section 10) and publishes it through the ACPI CCEL table
// (ACPI 6.5, 5.2.34): CC type, log area minimum length (LAML) and start address (LASA). Linux
// exposes them as /sys/firmware/acpi/tables/CCEL and /sys/firmware/acpi/tables/data/CCEL.
//
// The log starts with a TCG_PCR_EVENT (SHA-1 layout) carrying the "Spec ID Event03" header,
// which lists the digest algorithms and sizes; then TCG_PCR_EVENT2 records follow until the
// 0xFF fill of the unused log area. A record's index is a CC measurement register index
// (UEFI 2.10, EFI_CC_MEASUREMENT_PROTOCOL): 0 = MRTD, 1..4 = RTMR0..3. Replay: each RTMR starts
// at 48 zero bytes and RTMR = SHA-384(RTMR || event's SHA-384 digest) for every event except
// EV_NO_ACTION ones, which are informational.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "attest/base/bytes.h"
#include "attest/base/result.h"
#include "attest/measure/ovmf.h"

namespace confpod::measure {

// Error code "measure.ccel" for everything below: bad table (signature, length, checksum, CC
// type), log shorter than the table says, malformed or truncated events (the message gives
// the byte offset), digests of unknown algorithms, events without a SHA-384 digest, MR
// indices beyond RTMR3.

inline constexpr std::uint8_t kCcTypeTdx = 2;
inline constexpr std::uint16_t kTpmAlgSha384 = 0x000C;
inline constexpr std::uint32_t kEvNoAction = 0x3;

struct CcelTable {
  std::uint8_t revision = 0;
  std::string oem_id;  // 6 characters
  std::uint8_t cc_type = 0;
  std::uint8_t cc_subtype = 0;
  std::uint64_t log_area_length = 0;   // LAML
  std::uint64_t log_area_address = 0;  // LASA
};

// Parses the ACPI CCEL table and checks signature, length, checksum and that it is TDX's.
Result<CcelTable> parse_ccel_table(ByteView table);

struct TcgAlgorithm {
  std::uint16_t id = 0;
  std::uint16_t digest_size = 0;
};

struct CcEvent {
  std::size_t offset = 0;  // of the record in the log
  std::uint32_t mr_index = 0;
  std::uint32_t event_type = 0;
  Sha384Digest sha384{};
  ByteView data;  // the event data, a view into the log
};

struct CcEventLog {
  std::vector<TcgAlgorithm> algorithms;  // from the Spec ID event
  std::vector<CcEvent> events;           // the TCG_PCR_EVENT2 records, in log order
  std::size_t end = 0;                   // offset just past the last record
};

// Parses a crypto-agile event log (the log area). Stops at 0xFFFFFFFF fill or at the end.
Result<CcEventLog> parse_cc_event_log(ByteView log);

struct RtmrReplay {
  std::array<Sha384Digest, 4> rtmr{};
  std::array<std::size_t, 4> events{};  // events extended into each RTMR
};

RtmrReplay replay_rtmrs(const CcEventLog& log);

// Table + log area as read from sysfs: the log is bounded by the table's LAML; a log file
// shorter than LAML is an error.
Result<RtmrReplay> replay_ccel(ByteView table, ByteView log_area);

}  // namespace confpod::measure
