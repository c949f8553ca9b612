#include "attest/base/json_scan.h"

#include <gtest/gtest.h>

#include <string>

namespace confpod {
namespace {

TEST(JsonScan, DepthCountsOnlyStructureOutsideStrings) {
  const JsonLimits three{3};
  EXPECT_EQ(scan_json(R"({"a":[{"b":1}]})", three), JsonScan::kWithinLimits);
  EXPECT_EQ(scan_json(R"({"a":[{"b":[1]}]})", three), JsonScan::kTooDeep);
  // Brackets and escaped quotes inside strings are text.
  EXPECT_EQ(scan_json(R"({"a":"[[[[[[\"{{{{"})", three), JsonScan::kWithinLimits);
  // Closing first cannot buy depth back.
  EXPECT_EQ(scan_json("]]]][[[[[", three), JsonScan::kUnbalanced);
  EXPECT_EQ(scan_json(std::string(10000, '['), JsonLimits{64}), JsonScan::kTooDeep);
}

TEST(JsonScan, ValuesAreBoundedWhenAsked) {
  const JsonLimits few{16, 5};
  EXPECT_EQ(scan_json("[1,2,3,4]", few), JsonScan::kWithinLimits);  // [ and three commas
  EXPECT_EQ(scan_json("[1,2,3,4,5,6]", few), JsonScan::kTooManyValues);
  EXPECT_EQ(scan_json(R"({"a":1,"b":2,"c":3})", few), JsonScan::kTooManyValues);
  EXPECT_EQ(scan_json("[1,2,3,4,5,6]", JsonLimits{16}), JsonScan::kWithinLimits);
}

}  // namespace
}  // namespace confpod
