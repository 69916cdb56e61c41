// reply.cc: rendering SMTP replies (RFC 5321 4.2, RFC 2034 for the enhanced code).
#include "mail/reply.h"

#include "mail/internal.h"

namespace petrel::mail {

namespace {

// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets, code and CRLF included.
constexpr std::size_t kMaxReplyLine = 512;
constexpr std::size_t kMaxEnhanced = 32;  // "5.7.1" is 5; anything longer is a bug, cut short

// Text that cannot break the line structure: C0 controls, DEL and C1 controls become spaces
// (so an injected CRLF cannot start a forged reply line), invalid UTF-8 octets become '?'.
std::string sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      out += ' ';
      ++i;
    } else if (c < 0x80) {
      out += text[i];
      ++i;
    } else if (std::size_t n = internal::utf8_sequence_length(text.substr(i)); n == 0) {
      out += '?';
      ++i;
    } else if (n == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      out += ' ';  // U+0080..U+009F
      i += n;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

// Cuts to at most `max` octets without splitting a UTF-8 sequence.
void cut(std::string& s, std::size_t max) {
  if (s.size() <= max) return;
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  s.resize(end);
}

}  // namespace

std::string Reply::render() const {
  // A code outside 200..599 is a bug upstream; answer "try later" rather than send garbage
  // (unclassified means temporary).
  int shown = (code >= 200 && code <= 599) ? code : 451;
  std::string code_text = std::to_string(shown);
  std::string esc = sanitize(enhanced);
  cut(esc, kMaxEnhanced);

  std::string out;
  std::size_t lines = 1 + more.size();
  for (std::size_t i = 0; i < lines; ++i) {
    const std::string& line_text = (i == 0) ? text : more[i - 1];
    // RFC 5321 4.2.1: "CODE-text" on every line but the last, "CODE text" on the last.
    std::string line = code_text;
    line += (i + 1 < lines) ? '-' : ' ';
    if (!esc.empty()) {
      line += esc;
      line += ' ';
    }
    std::string body = sanitize(line_text);
    cut(body, kMaxReplyLine - 2 - line.size());
    if (body.empty() && !esc.empty()) line.pop_back();  // "250 2.0.0", not "250 2.0.0 "
    line += body;
    line += "\r\n";
    out += line;
  }
  return out;
}

}  // namespace petrel::mail
