#include "smtp/client/reply_parser.h"

#include <gtest/gtest.h>

#include <random>

namespace petrel::smtp::client {
namespace {

using Status = ReplyParser::Status;

// Feeds `wire` in one piece; returns the status and the octets used.
std::pair<Status, std::size_t> feed_all(ReplyParser& p, std::string_view wire) {
  std::size_t used = 0;
  Status s = p.feed(wire, &used);
  return {s, used};
}

TEST(ReplyParser, SingleLineWithEnhancedCode) {
  ReplyParser p;
  auto [s, used] = feed_all(p, "250 2.1.0 Sender ok\r\n");
  ASSERT_EQ(s, Status::kDone);
  EXPECT_EQ(used, 21u);
  EXPECT_EQ(p.reply().code, 250);
  EXPECT_EQ(p.reply().enhanced, "2.1.0");
  ASSERT_EQ(p.reply().lines.size(), 1u);
  EXPECT_EQ(p.reply().lines[0], "Sender ok");
  auto r = p.reply().to_reply();
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.enhanced, "2.1.0");
  EXPECT_EQ(r.text, "Sender ok");
}

TEST(ReplyParser, MultiLineStopsAtTheLastLineAndLeavesTheRest) {
  ReplyParser p;
  std::string wire = "250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 1000\r\n354 go\r\n";
  auto [s, used] = feed_all(p, wire);
  ASSERT_EQ(s, Status::kDone);
  EXPECT_EQ(wire.substr(used), "354 go\r\n");
  ASSERT_EQ(p.reply().lines.size(), 3u);
  EXPECT_EQ(p.reply().lines[1], "PIPELINING");
  EXPECT_EQ(p.reply().to_reply().text, "mx.example.org PIPELINING SIZE 1000");
  // The next reply starts fresh.
  auto [s2, used2] = feed_all(p, std::string_view(wire).substr(used));
  ASSERT_EQ(s2, Status::kDone);
  EXPECT_EQ(used2, 8u);
  EXPECT_EQ(p.reply().code, 354);
  EXPECT_EQ(p.reply().lines.size(), 1u);
}

TEST(ReplyParser, EnhancedCodeOnEveryLineIsStrippedFromEach) {
  ReplyParser p;
  ASSERT_EQ(feed_all(p, "550-5.1.1 No such\r\n550 5.1.1 user here\r\n").first, Status::kDone);
  EXPECT_EQ(p.reply().enhanced, "5.1.1");
  EXPECT_EQ(p.reply().to_reply().text, "No such user here");
}

TEST(ReplyParser, EnhancedCodeWithOtherClassIsText) {
  ReplyParser p;
  ASSERT_EQ(feed_all(p, "550 2.0.0 odd\r\n").first, Status::kDone);
  EXPECT_EQ(p.reply().enhanced, "");
  EXPECT_EQ(p.reply().lines[0], "2.0.0 odd");
  ASSERT_EQ(feed_all(p, "451 4.1234.1 x\r\n").first, Status::kDone);
  EXPECT_EQ(p.reply().enhanced, "");
  ASSERT_EQ(feed_all(p, "451 4.3.0\r\n").first, Status::kDone);
  EXPECT_EQ(p.reply().enhanced, "4.3.0");
  EXPECT_EQ(p.reply().lines[0], "");
}

TEST(ReplyParser, BareCodeAndLfOnlyLinesAreReplies) {
  ReplyParser p;
  ASSERT_EQ(feed_all(p, "250\n").first, Status::kDone);
  EXPECT_EQ(p.reply().code, 250);
  ASSERT_EQ(feed_all(p, "220-a\n220 b\n").first, Status::kDone);
  EXPECT_EQ(p.reply().lines.size(), 2u);
}

TEST(ReplyParser, EverySplitPointGivesTheSameReply) {
  std::string wire = "250-first line\r\n250-2nd\r\n250 3.0.0 last\r\n";
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    ReplyParser p;
    std::size_t used = 0;
    Status s = p.feed(std::string_view(wire).substr(0, cut), &used);
    if (cut < wire.size()) {
      ASSERT_EQ(s, Status::kNeedMore) << cut;
      ASSERT_EQ(used, cut);
      s = p.feed(std::string_view(wire).substr(cut), &used);
    }
    ASSERT_EQ(s, Status::kDone) << cut;
    EXPECT_EQ(p.reply().lines.size(), 3u);
    EXPECT_EQ(p.reply().lines[2], "3.0.0 last");  // class 3 never is an enhanced class
  }
}

struct Bad {
  const char* wire;
  const char* why;
};

class Malformed : public ::testing::TestWithParam<Bad> {};

TEST_P(Malformed, IsRefused) {
  ReplyParser p;
  auto [s, used] = feed_all(p, GetParam().wire);
  EXPECT_EQ(s, Status::kMalformed) << GetParam().wire;
  EXPECT_NE(p.error().find(GetParam().why), std::string::npos) << p.error();
  // Sticky: nothing more is read.
  EXPECT_EQ(feed_all(p, "250 ok\r\n").first, Status::kMalformed);
}

INSTANTIATE_TEST_SUITE_P(ReplyParser, Malformed,
                         ::testing::Values(Bad{"25 ok\r\n", "code"}, Bad{"abc ok\r\n", "code"},
                                           Bad{"150 ok\r\n", "code"}, Bad{"650 ok\r\n", "code"},
                                           Bad{"\r\n", "code"}, Bad{"250_ok\r\n", "SP"},
                                           Bad{"2500 ok\r\n", "SP"}, Bad{"250-a\r\n251 b\r\n", "changes"},
                                           Bad{"250-a\r\n550 b\r\n", "changes"}, Bad{"250-a\r\nxyz\r\n", "code"}));

TEST(ReplyParser, EndlessContinuationIsCutAtMaxLines) {
  ReplyParser p;
  std::string wire;
  for (int i = 0; i < 150; ++i) wire += "250-more\r\n";
  auto [s, used] = feed_all(p, wire);
  EXPECT_EQ(s, Status::kMalformed);
  EXPECT_EQ(used, 101u * 10);
  EXPECT_NE(p.error().find("lines"), std::string::npos);
}

TEST(ReplyParser, HugeLineIsDrainedAndFlagged) {
  ReplyParser p;
  std::string wire = "550 " + std::string(10000, 'x') + "\r\n";
  auto [s, used] = feed_all(p, wire);
  ASSERT_EQ(s, Status::kDone);
  EXPECT_EQ(used, wire.size());
  EXPECT_TRUE(p.reply().overlong);
  EXPECT_EQ(p.reply().code, 550);
  EXPECT_EQ(p.reply().lines[0].size(), kMaxLineText);
}

TEST(ReplyParser, EndlessLineIsCutAtMaxTotalInSmallPieces) {
  ReplyParser p(ReplyLimits{4096, 100, 64 * 1024});
  std::string piece(1000, 'y');
  Status s = Status::kNeedMore;
  std::size_t fed = 0;
  std::size_t used = 0;
  ASSERT_EQ(p.feed("250 ", &used), Status::kNeedMore);
  for (int i = 0; i < 1000 && s == Status::kNeedMore; ++i) {
    s = p.feed(piece, &used);
    fed += piece.size();
  }
  EXPECT_EQ(s, Status::kMalformed);
  EXPECT_LE(fed, 66u * 1024);
}

TEST(ReplyParser, TextIsCleanedAndCapped) {
  ReplyParser p;
  std::string wire = "550-a\tb\x01" "c\x7f" "d\r\n550 \xff\xfe bad utf8\r\n";
  ASSERT_EQ(feed_all(p, wire).first, Status::kDone);
  EXPECT_EQ(p.reply().lines[0], "a b c d");
  EXPECT_EQ(p.reply().lines[1], "?? bad utf8");
  // Many lines: the joined text stays within kMaxReplyText, and never splits UTF-8.
  std::string many;
  for (int i = 0; i < 90; ++i) many += "451-\xc3\xa9\xc3\xa9\xc3\xa9 abcdef\r\n";
  many += "451 end\r\n";
  ASSERT_EQ(feed_all(p, many).first, Status::kDone);
  auto r = p.reply().to_reply();
  EXPECT_LE(r.text.size(), kMaxReplyText);
  EXPECT_GT(r.text.size(), kMaxReplyText - 10);
  EXPECT_NE(static_cast<unsigned char>(r.text.back()), 0xc3);
}

TEST(ReplyParser, BareCrInsideALineIsNotALineEnd) {
  ReplyParser p;
  ASSERT_EQ(feed_all(p, "250 a\rb\r\n").first, Status::kDone);
  EXPECT_EQ(p.reply().lines[0], "a b");
}

TEST(CleanReplyText, CutsOnUtf8Boundaries) {
  EXPECT_EQ(clean_reply_text("\xc3\xa9\xc3\xa9", 3), "\xc3\xa9");
  EXPECT_EQ(clean_reply_text("abc", 3), "abc");
  EXPECT_EQ(clean_reply_text("a\nb", 10), "a b");
}

}  // namespace
}  // namespace petrel::smtp::client
