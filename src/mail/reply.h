// mail/reply.h: an SMTP reply with its enhanced status code (RFC 5321 4.2, RFC 2034, RFC 3463).
//
// Promise: render() produces valid reply lines: every line "CODE-ESC text" / "CODE ESC text",
// CRLF-terminated, text cut to fit 512 octets and stripped of CR, LF and other controls, so
// nothing a peer supplied can forge an extra reply line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace petrel::mail {

struct Reply {
  int code = 250;              // 2xx/3xx/4xx/5xx
  std::string enhanced;        // "2.0.0"; empty only for the banner/220 style replies that have none
  std::string text;            // one line; multi-line replies use `more`
  std::vector<std::string> more;  // continuation lines after `text` (EHLO keywords)

  bool positive() const { return code < 400; }
  bool temporary() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // The wire form. Enhanced code, when non-empty, is on every line. Controls become spaces,
  // invalid UTF-8 octets '?'; a code outside 200..599 (a bug) is sent as 451.
  std::string render() const;
};

inline Reply reply(int code, std::string_view enhanced, std::string_view text) {
  return Reply{code, std::string(enhanced), std::string(text), {}};
}

}  // namespace petrel::mail
