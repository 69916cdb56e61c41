#include <gtest/gtest.h>

#include <string>

#include "mail/command.h"

namespace petrel::mail {
namespace {

TEST(Utf8, Table) {
  struct Case {
    std::string text;
    bool ok;
  };
  const Case cases[] = {
      {"", true},
      {"plain ascii", true},
      {"caf\xC3\xA9", true},
      {"\xE2\x82\xAC", true},              // U+20AC
      {"\xF0\x9F\x98\x80", true},          // U+1F600
      {"\xF4\x8F\xBF\xBF", true},          // U+10FFFF
      {"\xED\x9F\xBF", true},              // U+D7FF
      {"\xEE\x80\x80", true},              // U+E000
      {"\xC0\x80", false},                 // overlong NUL
      {"\xC1\xBF", false},                 // overlong
      {"\xE0\x80\xAF", false},             // overlong '/'
      {"\xF0\x80\x80\xAF", false},         // overlong
      {"\xED\xA0\x80", false},             // surrogate U+D800
      {"\xED\xBF\xBF", false},             // surrogate U+DFFF
      {"\xF4\x90\x80\x80", false},         // U+110000
      {"\xF5\x80\x80\x80", false},
      {"\xFF", false},
      {"\x80", false},                     // lone continuation
      {"\xC3", false},                     // truncated
      {"\xE2\x82", false},
      {"a\xE2\x82z", false},
      {"\xF0\x9F\x98", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c.text));
    EXPECT_EQ(is_valid_utf8(c.text), c.ok);
  }
}

TEST(Xtext, Decode) {
  struct Case {
    std::string text;
    std::optional<std::string> decoded;
  };
  const Case cases[] = {
      {"", std::string()},
      {"abc", std::string("abc")},
      {"a+2Bb", std::string("a+b")},
      {"+3D", std::string("=")},
      {"+20+0D+0A", std::string(" \r\n")},
      {"+41", std::string("A")},
      {"+C3+A9", std::string("\xC3\xA9")},
      {"+2b", std::nullopt},   // uppercase only (RFC 3461 4)
      {"+2", std::nullopt},
      {"+", std::nullopt},
      {"a+G0", std::nullopt},
      {"a=b", std::nullopt},
      {"a b", std::nullopt},
      {"a\x7f", std::nullopt},
      {"\xC3\xA9", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(xtext_decode(c.text), c.decoded);
  }
}

TEST(Xtext, EncodeAndRoundTrip) {
  EXPECT_EQ(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
  EXPECT_EQ(xtext_encode("\r\n\xC3\xA9~!"), "+0D+0A+C3+A9~!");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  auto back = xtext_decode(xtext_encode(all));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, all);
}

}  // namespace
}  // namespace petrel::mail
