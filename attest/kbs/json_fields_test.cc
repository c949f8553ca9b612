#include "attest/kbs/json_fields.h"

#include <gtest/gtest.h>

namespace confpod::kbs {
namespace {

using nlohmann::json;

TEST(StringField, TypeAndLengthAreChecked) {
  json obj = {{"tee", "snp"}, {"n", 3}, {"long", std::string(20, 'x')}};
  auto tee = string_field(obj, "tee", "kbs.request", 8);
  ASSERT_TRUE(tee.ok());
  EXPECT_EQ(*tee, "snp");
  auto absent = string_field(obj, "version", "kbs.request", 8);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().code, "kbs.request");
  EXPECT_NE(absent.error().message.find("'version'"), std::string::npos);
  EXPECT_FALSE(string_field(obj, "n", "kbs.request", 8).ok());
  auto too_long = string_field(obj, "long", "kbs.request", 19);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("longer than 19"), std::string::npos);
  EXPECT_TRUE(string_field(obj, "long", "kbs.request", 20).ok());
}

TEST(ByteField, Base64AndByteArrayGiveTheSameBytes) {
  Bytes want = {0, 1, 2, 254, 255};
  auto from_text = byte_field(json(to_base64(want)), 16, "c", "f");
  // As parsed from request text (non-negative numbers parse as unsigned).
  auto from_array = byte_field(json::parse("[0, 1, 2, 254, 255]"), 16, "c", "f");
  ASSERT_TRUE(from_text.ok());
  ASSERT_TRUE(from_array.ok());
  EXPECT_EQ(*from_text, want);
  EXPECT_EQ(*from_array, want);
}

TEST(ByteField, HostileValuesAreRefusedNamingTheField) {
  auto expect_refused = [](const json& v, std::size_t max, const std::string& says) {
    auto r = byte_field(v, max, "kbs.evidence.snp", "attestation_report");
    ASSERT_FALSE(r.ok()) << v.dump();
    EXPECT_EQ(r.error().code, "kbs.evidence.snp");
    EXPECT_NE(r.error().message.find("attestation_report"), std::string::npos);
    EXPECT_NE(r.error().message.find(says), std::string::npos) << r.error().message;
  };
  expect_refused(json("!!not base64"), 64, "not base64");
  expect_refused(json::parse("[1, 256]"), 64, "0..255");
  expect_refused(json::parse("[1, -1]"), 64, "0..255");
  expect_refused(json::array({1, "a"}), 64, "0..255");
  expect_refused(json::array({1.5}), 64, "0..255");
  expect_refused(json{{"a", 1}}, 64, "base64 text or a byte array");
  expect_refused(json(nullptr), 64, "base64 text or a byte array");
  // Exactly at the bound passes, one past it fails, in both forms.
  EXPECT_TRUE(byte_field(json(to_base64(Bytes(64, 7))), 64, "c", "f").ok());
  expect_refused(json(to_base64(Bytes(65, 7))), 64, "too long");
  expect_refused(json(to_base64(Bytes(4096, 7))), 64, "too long");
  EXPECT_TRUE(byte_field(json(std::vector<unsigned>(64, 7)), 64, "c", "f").ok());
  expect_refused(json(std::vector<unsigned>(65, 7)), 64, "too long");
}

}  // namespace
}  // namespace confpod::kbs
