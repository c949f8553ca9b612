#include "attest/base/bytes.h"

#include <gtest/gtest.h>

namespace confpod {
namespace {

TEST(Hex, NumbersWithoutLeadingZeros) {
  EXPECT_EQ(hex_number(0), "0x0");
  EXPECT_EQ(hex_number(0x30000), "0x30000");
  EXPECT_EQ(hex_number(0xFFFFFFFFF000ull), "0xfffffffff000");
  EXPECT_EQ(hex_number(~0ull), "0xffffffffffffffff");
}

TEST(Hex, RoundTripsAndRejectsBadInput) {
  Bytes data = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(to_hex(data), "0001abff");
  auto back = from_hex("0001ABff");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  EXPECT_EQ(*from_hex("0x21"), Bytes{0x21});
  auto odd = from_hex("abc");
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().code, "hex.invalid");
  auto bad = from_hex("zz");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("position 0"), std::string::npos);
}

TEST(Base64, RoundTripsEveryPaddingLength) {
  for (std::size_t n = 0; n < 10; ++n) {
    Bytes data(n);
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<std::uint8_t>(i * 37 + 1);
    std::string text = to_base64(data);
    EXPECT_EQ(text.size() % 4, 0u);
    auto back = from_base64(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, data) << text;
  }
  EXPECT_EQ(to_base64(as_bytes("foobar")), "Zm9vYmFy");
  EXPECT_FALSE(from_base64("Zm9").ok());
  EXPECT_FALSE(from_base64("Zm9!").ok());
}

TEST(ByteReader, ReadsLittleEndianAndNamesTheTruncatedField) {
  Bytes data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  ByteReader reader(data, "test.truncated");
  EXPECT_EQ(*reader.u16("a"), 0x0201);
  EXPECT_EQ(*reader.u32("b"), 0x06050403u);
  auto fail = reader.u16("the_field");
  ASSERT_FALSE(fail.ok());
  EXPECT_EQ(fail.error().code, "test.truncated");
  EXPECT_NE(fail.error().message.find("the_field"), std::string::npos);
  EXPECT_EQ(reader.offset(), 6u);  // a failed read does not move the cursor
  EXPECT_EQ(*reader.u8("c"), 0x07);
}

TEST(ReadFile, ReportsMissingFileAndSizeLimit) {
  auto missing = read_file("/nonexistent/confpod");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "file.read");
  auto limited = read_file("/proc/self/exe", 16);
  ASSERT_FALSE(limited.ok());
  EXPECT_NE(limited.error().message.find("allowed"), std::string::npos);
}

}  // namespace
}  // namespace confpod
