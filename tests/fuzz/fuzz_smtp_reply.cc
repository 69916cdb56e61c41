// fuzz_smtp_reply: the SMTP client's reply parser and body encoder over arbitrary bytes, fed in
// arbitrary pieces.
// Reply parser invariants: the replies found (and where a malformed one stops the parse) do
// not depend on how the input was split; every reply has 1..max_lines lines, a code in
// 200..599, kept text within its caps and free of controls; the parser never claims more
// octets than it was given.
// Body encoder invariants: the output has no bare CR or LF, every line that starts with "."
// was stuffed, it ends with CRLF "." CRLF exactly once, un-stuffing gives back the input with
// normalised line ends, and the output does not depend on the chunking. In BDAT mode the
// output is exactly the normalised input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/client/body_encoder.h"
#include "smtp/client/reply_parser.h"

using petrel::smtp::client::BodyEncoder;
using petrel::smtp::client::ReplyLimits;
using petrel::smtp::client::ReplyParser;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Every reply as "code enhanced|line|line" plus a final "malformed"/"partial" marker.
std::vector<std::string> parse(std::string_view in, std::size_t piece) {
  ReplyLimits limits{256, 10, 2048};  // small caps so the fuzzer reaches them
  ReplyParser p(limits);
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < in.size()) {
    std::string_view chunk = in.substr(at, piece);
    std::size_t used = 0;
    auto s = p.feed(chunk, &used);
    check(used <= chunk.size());
    at += used;
    if (s == ReplyParser::Status::kMalformed) {
      out.push_back("malformed");
      return out;
    }
    if (s == ReplyParser::Status::kDone) {
      const auto& r = p.reply();
      check(r.code >= 200 && r.code <= 599);
      check(!r.lines.empty() && r.lines.size() <= limits.max_lines);
      std::string s2 = std::to_string(r.code) + " " + r.enhanced + (r.overlong ? " long" : "");
      for (const auto& line : r.lines) {
        check(line.size() <= petrel::smtp::client::kMaxLineText);
        for (char c : line) check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
        s2 += "|" + line;
      }
      auto reply = r.to_reply();
      check(reply.text.size() <= petrel::smtp::client::kMaxReplyText);
      out.push_back(std::move(s2));
    } else {
      check(used == chunk.size());
    }
  }
  out.push_back("partial");
  return out;
}

std::string encode(std::string_view in, std::size_t piece) {
  BodyEncoder e;
  std::string out;
  for (std::size_t at = 0; at < in.size(); at += piece) e.encode(in.substr(at, piece), out);
  e.finish(out);
  return out;
}

void check_body(std::string_view in, std::size_t piece) {
  std::string wire = encode(in, piece);
  check(wire == encode(in, in.size() + 1));
  check(wire.size() <= 2 * in.size() + 5);
  // Walk the CRLF lines: no bare CR/LF, stuffed dots, the terminator only at the end.
  std::string back;
  std::size_t i = 0;
  bool ended = false;
  while (i < wire.size()) {
    std::size_t crlf = wire.find("\r\n", i);
    check(crlf != std::string::npos);
    std::string_view line(wire.data() + i, crlf - i);
    check(line.find_first_of("\r\n") == std::string_view::npos);
    i = crlf + 2;
    if (line == ".") {
      check(i == wire.size());
      ended = true;
      break;
    }
    if (!line.empty() && line[0] == '.') {
      check(line.size() >= 2 && line[1] == '.');
      line.remove_prefix(1);
    }
    back.append(line);
    back += "\r\n";
  }
  check(ended);
  // Reference normalisation of the input.
  std::string norm;
  for (std::size_t k = 0; k < in.size(); ++k) {
    if (in[k] == '\r') {
      norm += "\r\n";
      if (k + 1 < in.size() && in[k + 1] == '\n') ++k;
    } else if (in[k] == '\n') {
      norm += "\r\n";
    } else {
      norm.push_back(in[k]);
    }
  }
  if (!norm.empty() && (norm.size() < 2 || norm.compare(norm.size() - 2, 2, "\r\n") != 0)) norm += "\r\n";
  check(back == norm);
  // BDAT mode: the same normalisation, without stuffing or terminator.
  BodyEncoder bdat(BodyEncoder::Mode::kBdat);
  std::string raw;
  for (std::size_t at = 0; at < in.size(); at += piece) bdat.encode(in.substr(at, piece), raw);
  bdat.finish(raw);
  check(raw == norm);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t piece = 1 + data[0] % 16;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  check(parse(in, piece) == parse(in, in.size() + 1));
  check_body(in, piece);
  return 0;
}
