// submission_headers_test.cc: header collection across chunk boundaries and field facts
// (From: address lists: mail/headers_test.cc).
#include "smtp/server/submission_headers.h"

#include <gtest/gtest.h>

namespace petrel::smtp::server {
namespace {

TEST(HeaderCollectorTest, EndsAtFirstEmptyLineWhateverTheChunks) {
  const std::string msg = "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n\r\nmore\r\n";
  for (std::size_t cut = 0; cut <= msg.size(); ++cut) {
    HeaderCollector h;
    std::string after;
    after += h.feed(std::string_view(msg).substr(0, cut));
    after += h.feed(std::string_view(msg).substr(cut));
    ASSERT_TRUE(h.done()) << cut;
    EXPECT_EQ(h.held(), "From: a@b.example\r\nSubject: x\r\n\r\n") << cut;
    EXPECT_EQ(h.header(), "From: a@b.example\r\nSubject: x\r\n") << cut;
    EXPECT_EQ(after, "body\r\n\r\nmore\r\n") << cut;
  }
}

TEST(HeaderCollectorTest, EmptyHeaderNoBodyAndTooLarge) {
  HeaderCollector empty;
  EXPECT_EQ(empty.feed("\r\nbody\r\n"), "body\r\n");
  EXPECT_EQ(empty.header(), "");
  HeaderCollector only;
  EXPECT_EQ(only.feed("Subject: x\r\n"), "");
  EXPECT_FALSE(only.done());
  only.finish();
  EXPECT_EQ(only.header(), "Subject: x\r\n");
  HeaderCollector big;
  std::string line = "X-Filler: " + std::string(1000, 'x') + "\r\n";
  for (int i = 0; i < 300 && !big.done(); ++i) big.feed(line);
  EXPECT_TRUE(big.done());
  EXPECT_TRUE(big.too_large());
  EXPECT_EQ(big.held().size(), 0u);
}

TEST(AnalyzeHeaderTest, FieldsCountedCaseInsensitiveAndUnfolded) {
  auto f = analyze_header("FROM: Alice\r\n <alice@example.test>\r\ndate: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
                          "Message-Id: <1@x>\r\nX-From: not@this.one\r\nSubject: From: nor@this\r\n");
  EXPECT_EQ(f.from_fields, 1u);
  ASSERT_EQ(f.from_values.size(), 1u);
  EXPECT_EQ(f.from_values[0], " Alice <alice@example.test>");
  EXPECT_TRUE(f.has_date);
  EXPECT_TRUE(f.has_message_id);
  auto two = analyze_header("From: a@x.test\r\nSubject: s\r\nFrom : b@x.test\r\n");
  EXPECT_EQ(two.from_fields, 2u);
  EXPECT_FALSE(two.has_date);
  EXPECT_FALSE(two.has_message_id);
}

}  // namespace
}  // namespace petrel::smtp::server
