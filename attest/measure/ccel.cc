#include "attest/measure/ccel.h"

#include <algorithm>
#include <cstring>

namespace confpod::measure {

namespace {

constexpr const char* kCcel = "measure.ccel";
constexpr std::size_t kCcelTableSize = 56;
constexpr std::uint32_t kFill = 0xFFFFFFFF;
constexpr char kSpecIdSignature[16] = "Spec ID Event03";  // with its NUL: 16 bytes
constexpr std::size_t kMaxAlgorithms = 16;

std::string at(std::size_t offset) { return " at log offset " + std::to_string(offset); }

// Reads from the log with the record's start offset in every error.
class LogReader {
 public:
  LogReader(ByteView log, std::size_t pos) : log_(log), pos_(pos) {}
  std::size_t pos() const { return pos_; }
  std::size_t remaining() const { return log_.size() - pos_; }

  Result<ByteView> take(std::size_t n, std::size_t record, std::string_view field) {
    if (n > remaining())
      return make_error(kCcel, "event" + at(record) + " truncated: " + std::string(field) +
                                   " needs " + std::to_string(n) + " bytes, " +
                                   std::to_string(remaining()) + " left");
    ByteView out = log_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  Result<std::uint32_t> u32(std::size_t record, std::string_view field) {
    CONFPOD_ASSIGN_OR_RETURN(ByteView b, take(4, record, field));
    return load_le32(b.data());
  }
  Result<std::uint16_t> u16(std::size_t record, std::string_view field) {
    CONFPOD_ASSIGN_OR_RETURN(ByteView b, take(2, record, field));
    return load_le16(b.data());
  }

 private:
  ByteView log_;
  std::size_t pos_;
};

Result<std::vector<TcgAlgorithm>> parse_spec_id(ByteView event) {
  ByteReader r(event, kCcel);
  CONFPOD_ASSIGN_OR_RETURN(ByteView signature, r.take(16, "Spec ID Event signature"));
  if (std::memcmp(signature.data(), kSpecIdSignature, 16) != 0)
    return make_error(kCcel,
                      "first event is not a 'Spec ID Event03' header; not a crypto-agile "
                      "(TCG2) event log");
  CONFPOD_TRY(r.skip(4 + 4, "Spec ID Event platform class and version"));
  CONFPOD_ASSIGN_OR_RETURN(std::uint32_t count, r.u32("Spec ID Event numberOfAlgorithms"));
  if (count == 0 || count > kMaxAlgorithms)
    return make_error(kCcel, "Spec ID Event lists " + std::to_string(count) +
                                 " digest algorithms (expected 1.." +
                                 std::to_string(kMaxAlgorithms) + ")");
  std::vector<TcgAlgorithm> algorithms;
  for (std::uint32_t i = 0; i < count; ++i) {
    TcgAlgorithm a;
    CONFPOD_ASSIGN_OR_RETURN(a.id, r.u16("Spec ID Event algorithmId"));
    CONFPOD_ASSIGN_OR_RETURN(a.digest_size, r.u16("Spec ID Event digestSize"));
    if (a.digest_size == 0 || a.digest_size > 64)
      return make_error(kCcel, "Spec ID Event gives algorithm " + std::to_string(a.id) +
                                   " digest size " + std::to_string(a.digest_size));
    if (a.id == kTpmAlgSha384 && a.digest_size != 48)
      return make_error(kCcel, "Spec ID Event gives SHA-384 digest size " +
                                   std::to_string(a.digest_size) + " (expected 48)");
    algorithms.push_back(a);
  }
  if (std::none_of(algorithms.begin(), algorithms.end(),
                   [](const TcgAlgorithm& a) { return a.id == kTpmAlgSha384; }))
    return make_error(kCcel,
                      "event log has no SHA-384 digests (algorithm 0x000c); RTMRs cannot "
                      "be replayed");
  return algorithms;
}

}  // namespace

Result<CcelTable> parse_ccel_table(ByteView table) {
  if (table.size() < kCcelTableSize)
    return make_error(kCcel, "CCEL table is " + std::to_string(table.size()) +
                                 " bytes, expected at least " + std::to_string(kCcelTableSize));
  if (std::memcmp(table.data(), "CCEL", 4) != 0)
    return make_error(kCcel, "ACPI table signature is not 'CCEL'");
  const std::uint32_t length = load_le32(table.data() + 4);
  if (length < kCcelTableSize || length > table.size())
    return make_error(kCcel, "CCEL table length field " + std::to_string(length) + " (have " +
                                 std::to_string(table.size()) + " bytes, need at least " +
                                 std::to_string(kCcelTableSize) + ")");
  std::uint8_t sum = 0;
  for (std::size_t i = 0; i < length; ++i) sum = static_cast<std::uint8_t>(sum + table[i]);
  if (sum != 0)
    return make_error(kCcel, "CCEL table checksum fails (bytes sum to " + std::to_string(sum) +
                                 " mod 256, expected 0)");
  CcelTable t;
  t.revision = table[8];
  t.oem_id.assign(reinterpret_cast<const char*>(table.data() + 10), 6);
  t.cc_type = table[36];
  t.cc_subtype = table[37];
  t.log_area_length = load_le64(table.data() + 40);
  t.log_area_address = load_le64(table.data() + 48);
  if (t.cc_type != kCcTypeTdx)
    return make_error(kCcel, "CCEL CC type " + std::to_string(t.cc_type) +
                                 " is not TDX (2); RTMR replay is TDX only");
  return t;
}

Result<CcEventLog> parse_cc_event_log(ByteView log) {
  CcEventLog out;
  LogReader r(log, 0);
  // TCG_PCR_EVENT (SHA-1 layout) holding the Spec ID Event.
  {
    CONFPOD_TRY(r.u32(0, "first event index"));
    CONFPOD_ASSIGN_OR_RETURN(std::uint32_t type, r.u32(0, "first event type"));
    if (type != kEvNoAction)
      return make_error(kCcel, "first event has type " + std::to_string(type) +
                                   ", expected EV_NO_ACTION (3) carrying the Spec ID Event");
    CONFPOD_TRY(r.take(20, 0, "first event SHA-1 digest"));
    CONFPOD_ASSIGN_OR_RETURN(std::uint32_t size, r.u32(0, "first event size"));
    CONFPOD_ASSIGN_OR_RETURN(ByteView event, r.take(size, 0, "Spec ID Event"));
    CONFPOD_ASSIGN_OR_RETURN(out.algorithms, parse_spec_id(event));
  }

  while (r.remaining() >= 4) {
    const std::size_t record = r.pos();
    if (load_le32(log.data() + record) == kFill) break;  // unused log area
    CcEvent e;
    e.offset = record;
    CONFPOD_ASSIGN_OR_RETURN(e.mr_index, r.u32(record, "MR index"));
    if (e.mr_index > 4)
      return make_error(kCcel, "event" + at(record) + " has MR index " +
                                   std::to_string(e.mr_index) +
                                   " (TDX has 0 = MRTD, 1..4 = "
                                   "RTMR0..3)");
    CONFPOD_ASSIGN_OR_RETURN(e.event_type, r.u32(record, "event type"));
    CONFPOD_ASSIGN_OR_RETURN(std::uint32_t count, r.u32(record, "digest count"));
    if (count > out.algorithms.size())
      return make_error(kCcel, "event" + at(record) + " has " + std::to_string(count) +
                                   " digests; the log declares " +
                                   std::to_string(out.algorithms.size()) + " algorithms");
    bool have_sha384 = false;
    for (std::uint32_t i = 0; i < count; ++i) {
      CONFPOD_ASSIGN_OR_RETURN(std::uint16_t alg, r.u16(record, "digest algorithm"));
      auto known = std::find_if(out.algorithms.begin(), out.algorithms.end(),
                                [alg](const TcgAlgorithm& a) { return a.id == alg; });
      if (known == out.algorithms.end())
        return make_error(kCcel, "event" + at(record) + " has a digest of algorithm " +
                                     std::to_string(alg) + ", not declared in the Spec ID Event");
      CONFPOD_ASSIGN_OR_RETURN(ByteView digest, r.take(known->digest_size, record, "digest"));
      if (alg == kTpmAlgSha384) {
        std::copy(digest.begin(), digest.end(), e.sha384.begin());
        have_sha384 = true;
      }
    }
    if (!have_sha384) return make_error(kCcel, "event" + at(record) + " has no SHA-384 digest");
    CONFPOD_ASSIGN_OR_RETURN(std::uint32_t size, r.u32(record, "event size"));
    CONFPOD_ASSIGN_OR_RETURN(e.data, r.take(size, record, "event data"));
    out.events.push_back(e);
  }
  out.end = r.pos();
  return out;
}

RtmrReplay replay_rtmrs(const CcEventLog& log) {
  RtmrReplay out;
  std::array<std::uint8_t, 96> buffer{};
  for (const CcEvent& e : log.events) {
    if (e.mr_index == 0 || e.mr_index > 4 || e.event_type == kEvNoAction) continue;
    const std::size_t i = e.mr_index - 1;
    std::copy(out.rtmr[i].begin(), out.rtmr[i].end(), buffer.begin());
    std::copy(e.sha384.begin(), e.sha384.end(), buffer.begin() + 48);
    out.rtmr[i] = sha384_of(buffer);
    ++out.events[i];
  }
  return out;
}

Result<RtmrReplay> replay_ccel(ByteView table, ByteView log_area) {
  CONFPOD_ASSIGN_OR_RETURN(CcelTable t, parse_ccel_table(table));
  if (log_area.size() < t.log_area_length)
    return make_error(kCcel, "event log is " + std::to_string(log_area.size()) +
                                 " bytes; the CCEL table says the log area is " +
                                 std::to_string(t.log_area_length));
  CONFPOD_ASSIGN_OR_RETURN(
      CcEventLog log,
      parse_cc_event_log(log_area.first(static_cast<std::size_t>(t.log_area_length))));
  return replay_rtmrs(log);
}

}  // namespace confpod::measure
