#include "base/strings.h"

#include <gtest/gtest.h>

namespace petrel::base {
namespace {

TEST(ParseSize, AcceptsUnits) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("1024"), 1024u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("50MiB"), 50u << 20);
  EXPECT_EQ(parse_size("1 GiB"), 1u << 30);
  EXPECT_EQ(parse_size("10kB"), 10000u);
  // One letter is binary, either case, as quotas are usually written.
  EXPECT_EQ(parse_size("10M"), 10u << 20);
  EXPECT_EQ(parse_size("10m"), 10u << 20);
  EXPECT_EQ(parse_size("512K"), 512u << 10);
  EXPECT_EQ(parse_size("2G"), 2ULL << 30);
  EXPECT_EQ(parse_size("1T"), 1ULL << 40);
}

TEST(ParseSize, RejectsGarbageAndOverflow) {
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("MiB"));
  EXPECT_FALSE(parse_size("12 parsecs"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("99999999999999999999TiB"));
  EXPECT_FALSE(parse_size("18446744073709551615TiB"));
  EXPECT_FALSE(parse_size("17179869184G"));  // 2^34 GiB = 2^64
  EXPECT_FALSE(parse_size("10MM"));
  EXPECT_FALSE(parse_size("10X"));
}

TEST(ParseDuration, AcceptsUnits) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("30s"), milliseconds(30000));
  EXPECT_EQ(parse_duration("5m"), milliseconds(300000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3600000));
  EXPECT_EQ(parse_duration("5d"), milliseconds(5LL * 86400000));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("5 fortnights"));
}

TEST(Format, RoundTrips) {
  EXPECT_EQ(format_size(50u << 20), "50MiB");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_duration(std::chrono::minutes(5)), "5m");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1500ms");
}

TEST(LogEscape, EscapesControlAndCuts) {
  EXPECT_EQ(log_escape("a b"), "a b");
  EXPECT_EQ(log_escape("a\r\nb"), "a\\x0d\\x0ab");
  EXPECT_EQ(log_escape(std::string("\0x", 2)), "\\x00x");
  EXPECT_EQ(log_escape("q\"s"), "q\\x22s");
  EXPECT_EQ(log_escape(std::string(300, 'a'), 10), std::string(10, 'a') + "...");
}

TEST(Ascii, CaseHelpers) {
  EXPECT_TRUE(iequals("MAIL", "mail"));
  EXPECT_FALSE(iequals("MAIL", "mai"));
  EXPECT_TRUE(istarts_with("mail FROM:<a>", "MAIL FROM:"));
  EXPECT_EQ(to_lower("ExAmple.TEST"), "example.test");
  EXPECT_EQ(trim("  x \t"), "x");
}

}  // namespace
}  // namespace petrel::base
