#include "smtp/server/data_decoder.h"

#include <gtest/gtest.h>

namespace petrel::smtp::server {
namespace {

struct Decoded {
  std::string message;
  std::size_t consumed = 0;
  bool done = false;
};

// Feeds `in` in pieces of `piece` octets, as a network would.
Decoded decode(std::string_view in, std::size_t piece = 1 << 20) {
  DataDecoder d;
  Decoded r;
  while (r.consumed < in.size() && !r.done) {
    auto chunk = in.substr(r.consumed, piece);
    auto step = d.feed(chunk, r.message);
    r.consumed += step.consumed;
    r.done = step.done;
  }
  return r;
}

TEST(DataDecoder, EndsOnlyAtCrLfDotCrLf) {
  for (std::size_t piece : {1, 2, 3, 7, 1 << 20}) {
    auto r = decode("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", piece);
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.message, "Subject: x\r\n\r\nbody\r\n");
    EXPECT_EQ(r.consumed, std::string_view("Subject: x\r\n\r\nbody\r\n.\r\n").size());
  }
}

TEST(DataDecoder, EmptyMessage) {
  auto r = decode(".\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.message, "");
}

TEST(DataDecoder, RemovesLeadingDots) {
  auto r = decode("..hidden\r\n.x\r\n...\r\n.\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.message, ".hidden\r\nx\r\n..\r\n");
}

// Each smuggling variant from the issue: none of them may end the message.
TEST(DataDecoder, SmugglingVariantsAreData) {
  const char* variants[] = {"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n"};
  for (const char* v : variants) {
    for (std::size_t piece : {1, 5, 1 << 20}) {
      std::string in = std::string("a") + v + "MAIL FROM:<x@evil>\r\n";
      auto r = decode(in, piece);
      EXPECT_FALSE(r.done) << "variant " << testing::PrintToString(v);
      EXPECT_EQ(r.consumed, in.size());
    }
  }
  std::string nul_dot("a\r\n\0.\r\nMAIL\r\n", 13);
  auto r = decode(nul_dot);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.message, nul_dot);
}

TEST(DataDecoder, BareCrBeforeRealEnd) {
  auto r = decode("a\r\r\n.\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.message, "a\r\r\n");
  r = decode("a\r\n.\rb\r\n.\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.message, "a\r\n\rb\r\n");
}

TEST(BodyScanner, FlagsBareLineEndsAndNul) {
  struct Case {
    std::string body;
    bool bare;
    bool nul;
  } cases[] = {
      {"a\r\nb\r\n", false, false}, {"a\nb\r\n", true, false},  {"a\rb\r\n", true, false},
      {"a\r\n\r", true, false},     {std::string("a\0b\r\n", 5), false, true},
  };
  for (const auto& c : cases) {
    BodyScanner s;
    for (char ch : c.body) s.scan(std::string_view(&ch, 1));
    s.finish();
    EXPECT_EQ(s.bare_line_end(), c.bare) << testing::PrintToString(c.body);
    EXPECT_EQ(s.has_nul(), c.nul) << testing::PrintToString(c.body);
  }
}

TEST(BodyScanner, CountsReceivedInHeadersOnly) {
  BodyScanner s;
  s.scan("Received: a\r\nRECEIVED: b\r\n\tcontinued\r\nReceivedX: no\r\nSubject: x\r\n");
  s.scan("Rece");
  s.scan("ived: split\r\n\r\nReceived: in body\r\n");
  s.finish();
  EXPECT_EQ(s.received_headers(), 3u);
}

}  // namespace
}  // namespace petrel::smtp::server
