#include "smtp/client/body_encoder.h"

#include <gtest/gtest.h>

#include <random>

namespace petrel::smtp::client {
namespace {

std::string encode_chunks(const std::vector<std::string>& chunks) {
  BodyEncoder e;
  std::string out;
  for (const auto& c : chunks) e.encode(c, out);
  e.finish(out);
  return out;
}

std::string encode(std::string_view in) { return encode_chunks({std::string(in)}); }

// What a receiver recovers: DATA text up to the terminator, dots unstuffed (RFC 5321 4.5.2).
// Returns nullopt when the stream breaks a rule: bare CR/LF, an unstuffed dot line, no end.
std::optional<std::string> unstuff(std::string_view wire) {
  std::string out;
  std::size_t i = 0;
  while (i < wire.size()) {
    std::size_t crlf = wire.find("\r\n", i);
    if (crlf == std::string_view::npos) return std::nullopt;
    std::string_view line = wire.substr(i, crlf - i);
    if (line.find_first_of("\r\n") != std::string_view::npos) return std::nullopt;
    i = crlf + 2;
    if (line == ".") return i == wire.size() ? std::optional<std::string>(out) : std::nullopt;
    if (!line.empty() && line[0] == '.') {
      if (line.size() < 2 || line[1] != '.') return std::nullopt;  // unstuffed dot line
      line.remove_prefix(1);
    }
    out += line;
    out += "\r\n";
  }
  return std::nullopt;
}

// The input with every CR LF, bare CR and bare LF as CRLF, and a final CRLF when missing.
std::string normalise(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r') {
      out += "\r\n";
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else if (in[i] == '\n') {
      out += "\r\n";
    } else {
      out.push_back(in[i]);
    }
  }
  if (!out.empty() && (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0)) out += "\r\n";
  return out;
}

struct Case {
  const char* in;
  const char* out;
};

class Encodes : public ::testing::TestWithParam<Case> {};

TEST_P(Encodes, AsExpectedAtEveryChunkBoundary) {
  std::string in = GetParam().in;
  EXPECT_EQ(encode(in), GetParam().out);
  for (std::size_t a = 0; a <= in.size(); ++a) {
    for (std::size_t b = a; b <= in.size(); ++b) {
      EXPECT_EQ(encode_chunks({in.substr(0, a), in.substr(a, b - a), in.substr(b)}), GetParam().out)
          << "cuts " << a << "," << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    BodyEncoder, Encodes,
    ::testing::Values(Case{"", ".\r\n"}, Case{"a\r\n", "a\r\n.\r\n"}, Case{"a", "a\r\n.\r\n"},
                      Case{".\r\n", "..\r\n.\r\n"}, Case{".", "..\r\n.\r\n"}, Case{"a\r\n.b\r\n", "a\r\n..b\r\n.\r\n"},
                      Case{"a\n.\n", "a\r\n..\r\n.\r\n"}, Case{"a\r.\r", "a\r\n..\r\n.\r\n"},
                      Case{"a\r\r\n", "a\r\n\r\n.\r\n"}, Case{"\r", "\r\n.\r\n"}, Case{"\n", "\r\n.\r\n"},
                      Case{"\n\r", "\r\n\r\n.\r\n"}, Case{"a.b\r\n..c", "a.b\r\n...c\r\n.\r\n"},
                      Case{"x\r\n.\r\n.\r\ny", "x\r\n..\r\n..\r\ny\r\n.\r\n"},
                      Case{"\r\n\r\n", "\r\n\r\n.\r\n"}));

TEST(BodyEncoder, BdatModeNormalisesWithoutStuffingOrTerminator) {
  const std::string in = ".a\r.b\nc\r";
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    BodyEncoder e(BodyEncoder::Mode::kBdat);
    std::string out;
    e.encode(std::string_view(in).substr(0, cut), out);
    e.encode(std::string_view(in).substr(cut), out);
    e.finish(out);
    EXPECT_EQ(out, ".a\r\n.b\r\nc\r\n") << cut;
  }
  BodyEncoder e(BodyEncoder::Mode::kBdat);
  std::string out;
  e.finish(out);
  EXPECT_EQ(out, "");
}

TEST(BodyEncoder, FinishResetsForTheNextBody) {
  BodyEncoder e;
  std::string out;
  e.encode("a\r", out);
  e.finish(out);
  e.encode(".x", out);
  e.finish(out);
  EXPECT_EQ(out, "a\r\n.\r\n..x\r\n.\r\n");
}

// Property: random octets (biased to '.', CR, LF) in random chunks give a stream with no bare
// CR or LF and no unstuffed dot line, which unstuffs to the normalised input.
TEST(BodyEncoder, RandomInputRandomChunksRoundTrip) {
  std::mt19937 rng(20261123);
  const char alphabet[] = {'.', '\r', '\n', 'a', 'b', '\0', static_cast<char>(0xff), ' '};
  for (int round = 0; round < 3000; ++round) {
    std::size_t len = rng() % 200;
    std::string in;
    for (std::size_t i = 0; i < len; ++i) in.push_back(alphabet[rng() % sizeof(alphabet)]);
    std::vector<std::string> chunks;
    for (std::size_t i = 0; i < in.size();) {
      std::size_t n = 1 + rng() % 7;
      chunks.push_back(in.substr(i, n));
      i += n;
    }
    std::string wire = encode_chunks(chunks);
    ASSERT_EQ(wire, encode(in)) << round;
    auto back = unstuff(wire);
    ASSERT_TRUE(back.has_value()) << round;
    ASSERT_EQ(*back, normalise(in)) << round;
  }
}

}  // namespace
}  // namespace petrel::smtp::client
