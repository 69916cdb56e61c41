// smtp/client/reply_parser.h: reads SMTP replies from a server's byte stream (RFC 5321 4.2),
// with their enhanced status codes (RFC 2034, RFC 3463). Pure: no I/O.
//
// Promise: memory is bounded whatever the peer sends. A line keeps at most ReplyLimits::max_line
// octets while it is read (the rest is drained up to its LF and the reply is flagged
// `overlong`); a reply has at most max_lines lines and max_total octets, else it is malformed.
// Each kept line of text is at most kMaxLineText octets, and ParsedReply::to_reply() gives a
// mail::Reply whose text is at most kMaxReplyText octets with controls turned into spaces and
// invalid UTF-8 into '?', so it is safe to log and to quote in a bounce.
// Malformed: a line without a 3-digit code in 200..599, a code that differs from the first
// line's, a fourth character that is neither SP nor '-', or a limit exceeded. The caller treats
// a malformed or overlong reply as a temporary failure and ends the connection (after a
// malformed line, where the next reply starts is unknown).
// Thread: one parser per connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "mail/reply.h"

namespace petrel::smtp::client {

inline constexpr std::size_t kMaxLineText = 512;
inline constexpr std::size_t kMaxReplyText = 512;

struct ReplyLimits {
  std::size_t max_line = 4096;        // octets of one line kept while parsing (line end excluded)
  std::size_t max_lines = 100;        // lines in one reply
  std::size_t max_total = 64 * 1024;  // octets in one reply, line ends and drained octets included
};

struct ParsedReply {
  int code = 0;
  std::string enhanced;            // "5.1.1" from the first line; empty when absent
  std::vector<std::string> lines;  // each line's text after the code, separator and enhanced
                                   // code; cleaned, at most kMaxLineText octets
  bool overlong = false;           // a line was longer than ReplyLimits::max_line

  // code, enhanced and the lines joined by " " (at most kMaxReplyText octets) in `text`.
  mail::Reply to_reply() const;
};

class ReplyParser {
 public:
  enum class Status { kNeedMore, kDone, kMalformed };

  explicit ReplyParser(ReplyLimits limits = {}) : limits_(limits) {}

  // Reads octets of `input` up to the end of one reply and sets *used to the number consumed
  // (all of them unless kDone). kDone: reply() holds the reply; the next feed() starts the next
  // one. kMalformed: error() says why; every later feed() returns kMalformed again.
  Status feed(std::string_view input, std::size_t* used);

  const ParsedReply& reply() const { return reply_; }
  const std::string& error() const { return error_; }
  // True between replies (nothing of a next reply read yet).
  bool idle() const { return done_ || (line_.empty() && reply_lines_ == 0 && total_ == 0); }

 private:
  Status end_line();
  Status fail(std::string why);

  ReplyLimits limits_;
  ParsedReply reply_;
  std::string line_;  // the current line, at most limits_.max_line octets
  bool draining_ = false;
  bool done_ = false;  // reply_ is complete; cleared by the next feed()
  bool malformed_ = false;
  std::size_t reply_lines_ = 0;
  std::size_t total_ = 0;
  std::string error_;
};

// Cleans peer-supplied text for logs and bounces: controls → ' ', invalid UTF-8 → '?', at most
// max octets (never cutting a UTF-8 sequence).
std::string clean_reply_text(std::string_view text, std::size_t max);

}  // namespace petrel::smtp::client
