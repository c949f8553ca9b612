#include "attest/measure/ccel.h"

#include <gtest/gtest.h>

#include "attest/tdx/quote.h"
#include "tests/support/fixtures.h"

namespace confpod::measure {
namespace {

Bytes table() { return confpod::testing::read_fixture("tdx/gcp_cos113_ccel_table.dat"); }
Bytes data() { return confpod::testing::read_fixture("tdx/gcp_cos113_ccel_data.dat"); }

TEST(Ccel, ParsesTable) {
  auto t = parse_ccel_table(table());
  ASSERT_TRUE(t.ok()) << t.error().describe();
  EXPECT_EQ(t->revision, 1);
  EXPECT_EQ(t->oem_id, "INTEL ");
  EXPECT_EQ(t->cc_type, kCcTypeTdx);
  EXPECT_EQ(t->cc_subtype, 0);
  EXPECT_EQ(t->log_area_length, 0x40000u);
  EXPECT_EQ(t->log_area_address, 0xbedbf000u);
}

TEST(Ccel, ParsesEventLog) {
  auto log = parse_cc_event_log(data());
  ASSERT_TRUE(log.ok()) << log.error().describe();
  ASSERT_EQ(log->algorithms.size(), 1u);
  EXPECT_EQ(log->algorithms[0].id, kTpmAlgSha384);
  EXPECT_EQ(log->algorithms[0].digest_size, 48);
  EXPECT_EQ(log->events.size(), 43u);
  EXPECT_EQ(log->end, 18101u);
}

// The README's replay of the GCE COS 113 log, checked against the RTMRs the same TD put in
// its quote (parsed with attest/tdx).
TEST(Ccel, ReplaysToTheQuoteRtmrs) {
  auto replay = replay_ccel(table(), data());
  ASSERT_TRUE(replay.ok()) << replay.error().describe();
  EXPECT_EQ(replay->events[0], 16u);
  EXPECT_EQ(replay->events[1], 7u);
  EXPECT_EQ(replay->events[2], 20u);
  EXPECT_EQ(replay->events[3], 0u);

  EXPECT_EQ(to_hex(replay->rtmr[0]),
            "3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1ede"
            "ce752afd17f6");
  EXPECT_EQ(to_hex(replay->rtmr[1]),
            "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8"
            "a878c2b122c1");
  EXPECT_EQ(to_hex(replay->rtmr[2]),
            "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11"
            "f381a6fbe7c1");
  EXPECT_EQ(to_hex(replay->rtmr[3]), std::string(96, '0'));

  auto quote = tdx::parse_quote(confpod::testing::read_fixture("tdx/gcp_cos113_quote_v4.dat"));
  ASSERT_TRUE(quote.ok()) << quote.error().describe();
  for (std::size_t i = 0; i < 4; ++i)
    EXPECT_EQ(to_hex(replay->rtmr[i]), to_hex(quote->body.rtmr[i])) << "rtmr" << i;
}

TEST(Ccel, AnAlteredEventNoLongerReplays) {
  Bytes log = data();
  auto parsed = parse_cc_event_log(log);
  ASSERT_TRUE(parsed.ok());
  // Flip one bit of the SHA-384 digest of the first RTMR1 event.
  const CcEvent* target = nullptr;
  for (const CcEvent& e : parsed->events)
    if (e.mr_index == 2) {
      target = &e;
      break;
    }
  ASSERT_NE(target, nullptr);
  const std::size_t digest_at = target->offset + 12 + 2;  // index, type, count, algorithm id
  log[digest_at] ^= 1;
  auto replay = replay_ccel(table(), log);
  ASSERT_TRUE(replay.ok());
  auto good = replay_ccel(table(), data());
  EXPECT_EQ(replay->rtmr[0], good->rtmr[0]);
  EXPECT_NE(replay->rtmr[1], good->rtmr[1]);
  EXPECT_EQ(replay->rtmr[2], good->rtmr[2]);
}

std::string ccel_error(const Bytes& t, const Bytes& d) {
  auto r = replay_ccel(t, d);
  if (r.ok()) return "ok";
  EXPECT_EQ(r.error().code, "measure.ccel") << r.error().message;
  return r.error().message;
}

TEST(Ccel, RejectsBrokenTables) {
  const Bytes d = data();
  Bytes t = table();
  EXPECT_NE(ccel_error(Bytes(t.begin(), t.begin() + 40), d).find("at least 56"), std::string::npos);
  Bytes sig = t;
  sig[0] = 'X';
  EXPECT_NE(ccel_error(sig, d).find("'CCEL'"), std::string::npos);
  Bytes sum = t;
  sum[44] ^= 1;
  EXPECT_NE(ccel_error(sum, d).find("checksum"), std::string::npos);
  Bytes sev = t;
  sev[36] = 1;
  sev[9] = static_cast<std::uint8_t>(sev[9] + 1);  // keep the checksum right
  EXPECT_NE(ccel_error(sev, d).find("not TDX"), std::string::npos);
  EXPECT_NE(ccel_error(t, Bytes(d.begin(), d.begin() + 4096)).find("log area is 262144"),
            std::string::npos);
}

TEST(Ccel, RejectsBrokenLogs) {
  const Bytes d = data();
  // Cut inside the events: the message names the offset of the broken record.
  for (std::size_t n : {0u, 10u, 40u, 100u, 5000u, 18100u}) {
    auto log = parse_cc_event_log(ByteView(d).first(n));
    ASSERT_FALSE(log.ok()) << n;
    EXPECT_EQ(log.error().code, "measure.ccel");
    EXPECT_NE(log.error().message.find("truncated"), std::string::npos) << log.error().message;
  }
  Bytes spec = d;
  spec[32] = 'X';  // "Spec ID Event03" starts after index, type, SHA-1 digest, size
  EXPECT_NE(parse_cc_event_log(spec).error().message.find("Spec ID Event03"), std::string::npos);
  auto first = parse_cc_event_log(d);
  ASSERT_TRUE(first.ok());
  const std::size_t at = first->events[0].offset;
  Bytes index = d;
  index[at] = 7;
  auto bad_index = parse_cc_event_log(index);
  ASSERT_FALSE(bad_index.ok());
  EXPECT_NE(bad_index.error().message.find("MR index 7"), std::string::npos);
  EXPECT_NE(bad_index.error().message.find("offset " + std::to_string(at)), std::string::npos);
  Bytes alg = d;
  alg[at + 12] = 0x0B;  // SHA-256, not declared by this log
  EXPECT_NE(parse_cc_event_log(alg).error().message.find("not declared"), std::string::npos);
}

}  // namespace
}  // namespace confpod::measure
