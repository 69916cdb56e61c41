#include "auth/saslprep.h"

#include <gtest/gtest.h>

#include <string>

namespace petrel::auth {
namespace {

using namespace std::string_literals;

// The prepared string, or "<refused>".
std::string prep(std::string_view in, PrepMode mode) {
  auto r = prepare_password(in, mode);
  return r ? *r : "<refused>";
}

struct Case {
  std::string in;
  std::string out;  // "" when SASLprep must refuse it
  const char* what;
};

// RFC 4013 3 (Examples), in both modes: none of them depends on unassigned code points.
TEST(Saslprep, Rfc4013Section3Examples) {
  const Case cases[] = {
      {"I\u00ADX", "IX", "SOFT HYPHEN mapped to nothing"},
      {"user", "user", "no transformation"},
      {"USER", "USER", "case preserved, will not match #2"},
      {"\u00AA", "a", "output is NFKC, input in ISO 8859-1"},
      {"\u2168", "IX", "output is NFKC, will match #1"},
      {"\u0007", "", "Error - prohibited character"},
      {"\u0627\u0031", "", "Error - bidirectional check"},
  };
  for (PrepMode mode : {PrepMode::kQuery, PrepMode::kStored}) {
    for (const auto& c : cases) {
      auto got = prepare_password(c.in, mode);
      if (c.out.empty()) {
        ASSERT_FALSE(got) << c.what;
        EXPECT_FALSE(got.error().temporary()) << c.what;
      } else {
        ASSERT_TRUE(got) << c.what << ": " << got.error().message;
        EXPECT_EQ(*got, c.out) << c.what;
      }
    }
  }
}

TEST(Saslprep, MapsNonAsciiSpacesAndKeepsPrintableAscii) {
  // RFC 4013 2.1: non-ASCII space characters map to SPACE (U+0020).
  EXPECT_EQ(prep("a\u00A0b\u3000c", PrepMode::kQuery), "a b c");
  // Printable ASCII is unchanged: hashes made before SASLprep was applied still match.
  std::string ascii;
  for (char c = 0x20; c < 0x7f; ++c) ascii += c;
  EXPECT_EQ(prep(ascii, PrepMode::kStored), ascii);
}

TEST(Saslprep, RefusesControlsNulInvalidUtf8AndEmptyResults) {
  for (const std::string& bad : {"ab\0cd"s, "tab\there"s, "del\x7f"s, "\xff\xfe"s, "caf\xc3"s, "\u00AD"s, ""s,
                                "private\uE000"s}) {
    auto got = prepare_password(bad, PrepMode::kQuery);
    EXPECT_FALSE(got) << bad;
    if (!got && !bad.empty()) {
      EXPECT_FALSE(got.error().temporary());
      EXPECT_EQ(got.error().message.find(bad), std::string::npos) << "the input must not be echoed";
    }
  }
}

// RFC 3454 7: unassigned code points (of Unicode 3.2) are allowed in queries, refused in
// stored strings. U+0221 was assigned only in Unicode 4.0.
TEST(Saslprep, UnassignedAllowedInQueriesOnly) {
  EXPECT_EQ(prep("x\u0221", PrepMode::kQuery), "x\u0221");
  EXPECT_FALSE(prepare_password("x\u0221", PrepMode::kStored));
}

}  // namespace
}  // namespace petrel::auth
