#include "mail/reply.h"

#include <gtest/gtest.h>

#include <string>

namespace petrel::mail {
namespace {

TEST(Reply, RendersSingleAndMultiLine) {
  struct Case {
    Reply reply;
    std::string wire;
  };
  const Case cases[] = {
      {reply(250, "2.1.0", "Ok"), "250 2.1.0 Ok\r\n"},
      {reply(220, "", "mx.example ESMTP"), "220 mx.example ESMTP\r\n"},
      {reply(250, "2.0.0", ""), "250 2.0.0\r\n"},
      {reply(250, "", ""), "250 \r\n"},
      {Reply{250, "", "mx.example greets you", {"PIPELINING", "SIZE 1000", "STARTTLS"}},
       "250-mx.example greets you\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n"},
      {Reply{451, "4.3.0", "one", {"two"}}, "451-4.3.0 one\r\n451 4.3.0 two\r\n"},
      {reply(99, "", "bug"), "451 bug\r\n"},
      {reply(250, "2.0.0", "caf\xC3\xA9"), "250 2.0.0 caf\xC3\xA9\r\n"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.reply.render(), c.wire);
  }
}

// Text a peer supplied (an address, a HELO name) must not be able to add a reply line.
TEST(Reply, SanitizesInjectedLineBreaksAndControls) {
  struct Case {
    std::string text;
    std::string wire;
  };
  const Case cases[] = {
      {"Ok\r\n250 forged", "250 2.0.0 Ok  250 forged\r\n"},
      {"a\rb\nc", "250 2.0.0 a b c\r\n"},
      {std::string("nul\0here", 8), "250 2.0.0 nul here\r\n"},
      {"tab\there\x7f", "250 2.0.0 tab here \r\n"},
      {"c1\xC2\x85x", "250 2.0.0 c1 x\r\n"},
      {"bad\xFFutf8\xC3", "250 2.0.0 bad?utf8?\r\n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(reply(250, "2.0.0", c.text).render(), c.wire);
  }
  Reply multi{250, "2.0.0", "x", {"y\r\n250 z"}};
  EXPECT_EQ(multi.render(), "250-2.0.0 x\r\n250 2.0.0 y  250 z\r\n");
  EXPECT_EQ(reply(250, "2.0.0\r\n", "x").render(), "250 2.0.0   x\r\n");
}

TEST(Reply, CapsEachLineAt512Octets) {
  Reply r{550, "5.1.1", std::string(1000, 'x'), {std::string(600, 'y'), "short"}};
  std::string wire = r.render();
  std::size_t start = 0;
  int lines = 0;
  while (start < wire.size()) {
    std::size_t end = wire.find("\r\n", start);
    ASSERT_NE(end, std::string::npos);
    EXPECT_LE(end + 2 - start, 512u);
    start = end + 2;
    ++lines;
  }
  EXPECT_EQ(lines, 3);
  EXPECT_EQ(wire.substr(0, 14), "550-5.1.1 xxxx");
  EXPECT_EQ(wire.find("\r\n"), 510u);  // exactly 512 with CRLF
}

TEST(Reply, CutDoesNotSplitUtf8) {
  // "250 " is 4 octets; 505 x then a 3-octet character would end at 512 + CRLF: it must go whole.
  std::string text = std::string(505, 'x') + "\xE2\x82\xAC";
  std::string wire = reply(250, "", text).render();
  EXPECT_EQ(wire, "250 " + std::string(505, 'x') + "\r\n");
}

TEST(Reply, Classes) {
  EXPECT_TRUE(reply(250, "", "").positive());
  EXPECT_TRUE(reply(354, "", "").positive());
  EXPECT_TRUE(reply(451, "", "").temporary());
  EXPECT_TRUE(reply(554, "", "").permanent());
  EXPECT_FALSE(reply(554, "", "").temporary());
}

}  // namespace
}  // namespace petrel::mail
