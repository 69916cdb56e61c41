// smtp/server/data_decoder.h: the DATA phase's byte-level rules (RFC 5321 4.1.1.4, 4.5.2).
//
// Promise: the message ends at CR LF "." CR LF and nowhere else: "\n.\n", "\r.\r", "\n.\r\n",
// "\r\n.\n", "\r.\r\n" and friends are ordinary data, so one DATA can never become two
// messages (SMTP smuggling). A leading dot is removed from every line that has one. Bare CR
// and LF pass through unchanged; BodyScanner reports them so the server can refuse the message.
// Bounds: no memory of its own; output is at most the input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace petrel::smtp::server {

class DataDecoder {
 public:
  struct Step {
    std::size_t consumed = 0;  // input octets used; stops right after the end marker
    bool done = false;         // the end marker was seen
  };

  // Decodes `in`, appending message octets to `out`. Call again with more input until done.
  Step feed(std::string_view in, std::string& out);

 private:
  enum class State { kLineStart, kMid, kCr, kDot, kDotCr };
  State state_ = State::kLineStart;  // DATA's own CRLF starts the first line
};

// Looks at message octets as they are stored (after dot-unstuffing): line-end hygiene and the
// header section's hop count. Works across arbitrary chunk boundaries.
class BodyScanner {
 public:
  void scan(std::string_view bytes);
  // Call once after the last octet: a final lone CR counts as bare.
  void finish();

  bool bare_line_end() const { return bare_line_end_; }  // CR without LF or LF without CR
  bool has_nul() const { return nul_; }
  std::size_t received_headers() const { return received_; }

 private:
  void end_line();

  bool cr_ = false;
  bool in_headers_ = true;
  bool bare_line_end_ = false;
  bool nul_ = false;
  std::size_t line_len_ = 0;  // octets of the current line seen so far
  char prefix_[9] = {};       // first octets of the line, to spot "Received:"
  std::size_t received_ = 0;
};

}  // namespace petrel::smtp::server
