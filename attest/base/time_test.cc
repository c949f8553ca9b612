#include "attest/base/time.h"

#include <gtest/gtest.h>

#include <limits>

namespace confpod {
namespace {

TEST(Rfc3339, ParsesTheFixtureInstants) {
  EXPECT_EQ(*parse_rfc3339("2025-07-19T10:00:34Z"), 1752919234);
  EXPECT_EQ(*parse_rfc3339("2026-03-20T10:41:14Z"), 1774003274);
  EXPECT_EQ(*parse_rfc3339("2023-07-01T01:00:00Z"), 1688173200);
  EXPECT_EQ(*parse_rfc3339("1970-01-01T00:00:00Z"), 0);
}

TEST(Rfc3339, HandlesFractionsAndOffsets) {
  EXPECT_EQ(*parse_rfc3339("2023-07-01T01:00:00.999Z"), 1688173200);
  EXPECT_EQ(*parse_rfc3339("2023-07-01T03:00:00+02:00"), 1688173200);
  EXPECT_EQ(*parse_rfc3339("2023-06-30T20:00:00-05:00"), 1688173200);
}

TEST(Rfc3339, RejectsMalformedTimes) {
  for (const char* bad :
       {"", "2023-07-01", "2023-07-01T01:00:00", "2023-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
        "2023-07-01T25:00:00Z", "2023-07-01T01:00:00Zx", "yesterday", "2023-07-01T01:00:00+0200"}) {
    auto r = parse_rfc3339(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "time.invalid");
  }
  EXPECT_TRUE(parse_rfc3339("2024-02-29T00:00:00Z").ok());
}

TEST(Rfc3339, FormatsRoundTrip) {
  for (UnixSeconds t : {0LL, 1688173200LL, 1774003274LL, 4102444799LL, 951782400LL}) {
    auto back = parse_rfc3339(format_rfc3339(t));
    ASSERT_TRUE(back.ok()) << format_rfc3339(t);
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(format_rfc3339(1752919234), "2025-07-19T10:00:34Z");
}

// Times come from hostile certificates and collateral: every int64 must format without
// overflow (the fuzzer found INT64_MIN overflowing the floor division), negative times
// round down to the previous day.
TEST(Rfc3339, FormatsEveryInt64) {
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_rfc3339(-86400), "1969-12-31T00:00:00Z");
  EXPECT_EQ(format_rfc3339(-86401), "1969-12-30T23:59:59Z");
  for (UnixSeconds t :
       {std::numeric_limits<UnixSeconds>::min(), std::numeric_limits<UnixSeconds>::max()}) {
    std::string text = format_rfc3339(t);
    EXPECT_EQ(text.substr(text.size() - 1), "Z") << text;
    EXPECT_NE(text.find('T'), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace confpod
