// reply_parser.cc: bounded SMTP reply reader (RFC 5321 4.2, RFC 2034).
#include "smtp/client/reply_parser.h"

#include <cstring>

#include "mail/command.h"

namespace petrel::smtp::client {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Cuts `s` to at most `max` octets without splitting a UTF-8 sequence.
void cut_utf8(std::string& s, std::size_t max) {
  if (s.size() <= max) return;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
}

// RFC 3463 2 / RFC 2034 4: status-code = class "." subject "." detail, class 2/4/5, subject
// and detail 1 to 3 digits, followed by SP or the end of the line. Returns its length, 0 when
// `text` does not start with one.
std::size_t enhanced_length(std::string_view text) {
  if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t start = i;
    while (i < text.size() && is_digit(text[i]) && i - start < 4) ++i;
    if (i == start || i - start > 3) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  if (i < text.size() && text[i] != ' ') return 0;
  return i;
}

}  // namespace

std::string clean_reply_text(std::string_view text, std::size_t max) {
  bool utf8_ok = mail::is_valid_utf8(text);
  std::string out;
  out.reserve(std::min(text.size(), max + 4));
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out.push_back(' ');
    } else if (u >= 0x80 && !utf8_ok) {
      out.push_back('?');
    } else {
      out.push_back(c);
    }
    if (out.size() > max + 4) break;  // enough to cut cleanly below
  }
  cut_utf8(out, max);
  return out;
}

mail::Reply ParsedReply::to_reply() const {
  mail::Reply r;
  r.code = code;
  r.enhanced = enhanced;
  r.text.clear();
  for (const auto& line : lines) {
    if (line.empty()) continue;
    if (!r.text.empty()) r.text.push_back(' ');
    r.text += line;
    if (r.text.size() > kMaxReplyText) break;
  }
  cut_utf8(r.text, kMaxReplyText);
  return r;
}

ReplyParser::Status ReplyParser::fail(std::string why) {
  malformed_ = true;
  error_ = std::move(why);
  line_.clear();
  return Status::kMalformed;
}

ReplyParser::Status ReplyParser::feed(std::string_view input, std::size_t* used) {
  *used = 0;
  if (malformed_) return Status::kMalformed;
  if (done_) {
    reply_ = ParsedReply{};
    done_ = false;
    reply_lines_ = 0;
    total_ = 0;
  }
  std::size_t i = 0;
  while (i < input.size()) {
    const void* lf = std::memchr(input.data() + i, '\n', input.size() - i);
    std::size_t end = lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - input.data()) : input.size();
    std::size_t chunk = end - i;
    total_ += chunk + (lf ? 1 : 0);
    if (total_ > limits_.max_total) {
      *used = lf ? end + 1 : end;
      return fail("reply longer than " + std::to_string(limits_.max_total) + " octets");
    }
    // Keep the head of the line; drain the rest (memory stays at max_line).
    if (!draining_) {
      std::size_t room = limits_.max_line - line_.size();
      if (chunk > room) {
        line_.append(input.data() + i, room);
        draining_ = true;
        reply_.overlong = true;
      } else {
        line_.append(input.data() + i, chunk);
      }
    }
    i = end;
    if (!lf) break;
    ++i;
    draining_ = false;
    Status s = end_line();
    line_.clear();
    if (s != Status::kNeedMore) {
      *used = i;
      return s;
    }
  }
  *used = i;
  return Status::kNeedMore;
}

ReplyParser::Status ReplyParser::end_line() {
  std::string_view l = line_;
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (++reply_lines_ > limits_.max_lines) {
    return fail("reply has more than " + std::to_string(limits_.max_lines) + " lines");
  }
  // RFC 5321 4.2: Reply-code [ SP textstring ] CRLF, "-" instead of SP on all but the last line;
  // the first digit is 2..5 (RFC 5321 4.2.1), and every line carries the same code (4.2.1).
  if (l.size() < 3 || !is_digit(l[0]) || !is_digit(l[1]) || !is_digit(l[2]) || l[0] < '2' || l[0] > '5') {
    return fail("line without a reply code");
  }
  int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
  if (l.size() > 3 && l[3] != ' ' && l[3] != '-') return fail("reply code not followed by SP or '-'");
  if (reply_lines_ == 1) {
    reply_.code = code;
  } else if (code != reply_.code) {
    return fail("reply code changes between lines");
  }
  bool last = l.size() == 3 || l[3] == ' ';
  std::string_view text = l.size() > 4 ? l.substr(4) : std::string_view{};

  // RFC 2034 4: the enhanced code opens every line; its class must match the reply's.
  if (reply_lines_ == 1) {
    std::size_t n = enhanced_length(text);
    if (n > 0 && text[0] == l[0]) {
      reply_.enhanced = std::string(text.substr(0, n));
      text.remove_prefix(std::min(n + 1, text.size()));
    }
  } else if (!reply_.enhanced.empty() && text.substr(0, reply_.enhanced.size()) == reply_.enhanced &&
             (text.size() == reply_.enhanced.size() || text[reply_.enhanced.size()] == ' ')) {
    text.remove_prefix(std::min(reply_.enhanced.size() + 1, text.size()));
  }
  reply_.lines.push_back(clean_reply_text(text, kMaxLineText));
  if (last) {
    done_ = true;
    return Status::kDone;
  }
  return Status::kNeedMore;
}

}  // namespace petrel::smtp::client
