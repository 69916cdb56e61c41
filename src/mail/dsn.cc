// dsn.cc: composing delivery status notifications (RFC 3461 6, RFC 6522 multipart/report,
// RFC 3464 message/delivery-status, RFC 6533 for UTF-8 addresses).
//
// Built in three steps: the three part bodies (human text, status fields, returned original),
// then a boundary that none of them contains, then the top-level header and the assembly.
// Every value that came from outside passes one of the cleaners below before it reaches a
// line. The caps are chosen so that even an unfolded field fits 998 octets (RFC 5322 2.1.1);
// folding at spaces keeps the lines near 78.
#include "mail/dsn.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "base/strings.h"
#include "mail/command.h"  // xtext_encode
#include "mail/date.h"
#include "mail/internal.h"

namespace petrel::mail {

namespace {

using internal::has_8bit;

constexpr std::size_t kMaxLine = 998;        // RFC 5322 2.1.1, CRLF not counted
constexpr std::size_t kFoldAt = 78;          // RFC 5322 2.1.1 SHOULD
constexpr std::size_t kWrapAt = 76;          // the human-readable text
constexpr std::size_t kMaxDiagnostic = 960;  // "Diagnostic-Code: X-Petrel; " + 960 < 998 unfolded
constexpr std::size_t kMaxAddress = 600;     // escaped form; ORCPT may be 500 (RFC 3461 4.2)
constexpr std::size_t kMaxHost = 255;        // RFC 5321 4.5.3.1.2
constexpr std::size_t kMaxEnvid = 300;       // RFC 3461 4.4: 100 characters, tripled by xtext
constexpr std::size_t kMaxQueueId = 64;
constexpr std::size_t kMaxBoundaryId = 16;   // the queue id's share of the 70-octet boundary
constexpr std::size_t kMaxHeaderSection = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Cleaners: what peer-supplied text may look like once it is on a line of ours.

struct CodePoint {
  std::size_t len = 1;
  bool valid = true;     // false: an octet that starts no valid UTF-8 sequence
  bool control = false;  // C0, DEL, C1
};

CodePoint code_point_at(std::string_view text, std::size_t i) {
  auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return {1, true, c < 0x20 || c == 0x7F};
  std::size_t n = internal::utf8_sequence_length(text.substr(i));
  if (n == 0) return {1, false, false};
  bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;
  return {n, true, c1};
}

std::uint32_t decode_utf8(std::string_view seq) {
  auto at = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(seq[i])); };
  switch (seq.size()) {
    case 1: return at(0);
    case 2: return ((at(0) & 0x1F) << 6) | (at(1) & 0x3F);
    case 3: return ((at(0) & 0x0F) << 12) | ((at(1) & 0x3F) << 6) | (at(2) & 0x3F);
    default: return ((at(0) & 0x07) << 18) | ((at(1) & 0x3F) << 12) | ((at(2) & 0x3F) << 6) | (at(3) & 0x3F);
  }
}

std::string hex(std::uint64_t value, int min_digits) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  do {
    out.insert(out.begin(), kHex[value & 0xF]);
    value >>= 4;
  } while (value != 0 || static_cast<int>(out.size()) < min_digits);
  return out;
}

// Free text (reply text, reasons) for a field value or a sentence: controls become spaces, runs
// of spaces one space, none at either end (so no folded line is blank, RFC 5322 3.2.2).
// Non-ASCII stays when `utf8` and valid, else each character becomes '?'. Cut to `max` octets
// at a character boundary.
std::string clean_text(std::string_view text, bool utf8, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    CodePoint cp = code_point_at(text, i);
    std::string_view piece = text.substr(i, cp.len);
    i += cp.len;
    if (cp.control || piece == " ") {
      if (out.empty() || out.back() == ' ') continue;
      piece = " ";
    } else if (!cp.valid || (cp.len > 1 && !utf8)) {
      piece = "?";
    }
    if (out.size() + piece.size() > max) break;
    out += piece;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// A word of a small alphabet (host names, queue ids, address types): ASCII letters, digits and
// `extra`; anything else is dropped.
std::string clean_token(std::string_view text, std::string_view extra, std::size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) break;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              extra.find(c) != std::string_view::npos;
    if (ok) out += c;
  }
  return out;
}

// How an address is written into a field or the text (RFC 3464 2.3.1-2.3.2, RFC 6533 3).
enum class AddressForm {
  kRfc822,     // printable ASCII as is (generic-address = *text); any other octet as xtext "+HH"
  kUtf8Xtext,  // utf-8-addr-xtext, for message/delivery-status: QCHAR (and '\', so that an
               // ORCPT already in this form is not escaped twice) as is, the rest "\x{HEX}"
  kUtf8Raw,    // utf-8-address, for message/global-delivery-status and a UTF-8 text: printable
               // characters as is; controls and invalid octets "\x{HH}"
};

std::string encode_address(std::string_view address, AddressForm form) {
  std::string out;
  for (std::size_t i = 0; i < address.size();) {
    CodePoint cp = code_point_at(address, i);
    std::string_view piece = address.substr(i, cp.len);
    i += cp.len;
    auto first = static_cast<unsigned char>(piece[0]);
    std::string escaped;
    switch (form) {
      case AddressForm::kRfc822:
        if (cp.len == 1 && first < 0x80 && !cp.control) {
          escaped = piece;
        } else {
          for (char c : piece) escaped += "+" + hex(static_cast<unsigned char>(c), 2);
        }
        break;
      case AddressForm::kUtf8Xtext:
        if (cp.len == 1 && first > 0x20 && first < 0x7F && first != '+' && first != '=') {
          escaped = piece;
        } else {
          escaped = "\\x{" + hex(cp.valid ? decode_utf8(piece) : first, 2) + "}";
        }
        break;
      case AddressForm::kUtf8Raw:
        escaped = (cp.valid && !cp.control) ? std::string(piece) : "\\x{" + hex(first, 2) + "}";
        break;
    }
    if (out.size() + escaped.size() > kMaxAddress) break;
    out += escaped;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lines.

bool is_fold_point(std::string_view value, std::size_t i) {
  return value[i] == ' ' && value[i - 1] != ' ' && i + 1 < value.size() && value[i + 1] != ' ';
}

// "Name: value" CRLF, folded (RFC 5322 2.2.3) before a space so that lines stay within 78
// columns where a space allows it. Values are capped by their callers so that even an unfolded
// line fits 998 octets; a continuation line always starts with the space and has text after it.
void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  std::size_t col = name.size() + 2;
  std::size_t start = 0;
  while (col + (value.size() - start) > kFoldAt) {
    std::size_t limit = start + (kFoldAt > col ? kFoldAt - col : 0);
    std::size_t fold = std::string_view::npos;
    for (std::size_t i = start + 1; i < value.size(); ++i) {
      if (!is_fold_point(value, i)) continue;
      if (i <= limit || fold == std::string_view::npos) fold = i;
      if (i >= limit) break;
    }
    if (fold == std::string_view::npos) break;
    out.append(value.substr(start, fold - start));
    out += "\r\n";
    start = fold;
    col = 0;
  }
  out.append(value.substr(start));
  out += "\r\n";
}

// Words of `text` (split at spaces) as lines of at most kWrapAt columns, each opened by
// `indent`; a longer word stands on a line of its own (callers cap words well below 998).
void append_wrapped(std::string& out, std::string_view text, std::string_view indent = "") {
  std::size_t col = 0;
  bool open = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) continue;
    if (open && col + 1 + word.size() > kWrapAt) {
      out += "\r\n";
      open = false;
    }
    if (open) {
      out += ' ';
      ++col;
    } else {
      out += indent;
      col = indent.size();
      open = true;
    }
    out += word;
    col += word.size();
  }
  if (open) out += "\r\n";
}

// ---------------------------------------------------------------------------------------------
// Per-recipient facts, cleaned once for both the text and the status part.

std::string_view action_name(DsnAction action) {
  switch (action) {
    case DsnAction::kFailed: return "failed";
    case DsnAction::kDelayed: return "delayed";
    case DsnAction::kDelivered: return "delivered";
    case DsnAction::kRelayed: return "relayed";
    case DsnAction::kExpanded: return "expanded";
  }
  return "failed";
}

char action_class(DsnAction action) {
  switch (action) {
    case DsnAction::kFailed: return '5';
    case DsnAction::kDelayed: return '4';
    default: return '2';
  }
}

bool is_digits(std::string_view s, std::size_t min, std::size_t max) {
  if (s.size() < min || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// RFC 3464 2.3.4 status-code = DIGIT "." 1*3DIGIT "." 1*3DIGIT, the class one of RFC 3463's
// 2/4/5 and agreeing with the action. A failed recipient may carry a 4.X.X: RFC 3463 2 lets a
// persistent transient failure explain an abandoned message, and 4.4.7 ("delivery time
// expired") is "useful only as a persistent transient error" (3.5), so it is kept as it is,
// as Postfix reports expired mail. Anything else that does not fit becomes X.0.0 of the
// action's class.
std::string checked_status(std::string_view status, DsnAction action) {
  char want = action_class(action);
  std::string fallback = std::string(1, want) + ".0.0";
  status = base::trim(status);
  if (status.size() < 5 || status[1] != '.') return fallback;
  std::string_view rest = status.substr(2);
  std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos || !is_digits(rest.substr(0, dot), 1, 3) ||
      !is_digits(rest.substr(dot + 1), 1, 3)) {
    return fallback;
  }
  std::string out(status);
  if (out[0] == want || (want == '5' && out[0] == '4')) return out;
  return fallback;
}

// Plain words for the common RFC 3463 subject.detail codes of a failure or delay.
std::string_view status_meaning(std::string_view status) {
  struct Entry {
    std::string_view code;
    std::string_view meaning;
  };
  static constexpr Entry kTable[] = {
      {"1.1", "The mailbox does not exist"},
      {"1.2", "The destination domain does not exist or does not accept mail"},
      {"1.3", "The destination address is not valid"},
      {"1.6", "The mailbox has moved"},
      {"2.1", "The mailbox is disabled"},
      {"2.2", "The mailbox is full"},
      {"2.3", "The message is larger than this mailbox accepts"},
      {"3.4", "The message is larger than the mail system accepts"},
      {"4.1", "The destination mail server did not answer"},
      {"4.2", "The connection to the destination mail server broke off"},
      {"4.3", "The destination could not be looked up"},
      {"4.4", "No way to reach the destination was found"},
      {"4.6", "The message was caught in a mail loop"},
      {"4.7", "The message could not be delivered in time and has expired"},
      {"7.1", "The destination refused the message (delivery not authorized)"},
  };
  std::string_view sub = status.substr(2);
  for (const auto& e : kTable) {
    if (sub == e.code) return e.meaning;
  }
  return status[0] == '5' ? "Delivery failed" : "Delivery has not succeeded yet";
}

struct Rcpt {
  DsnAction action = DsnAction::kFailed;
  std::string status;
  std::string final_field;     // "rfc822; user@example.org"
  std::string original_field;  // "rfc822; ..." or empty
  std::string text_address;
  std::string remote_mta;
  std::string diagnostic_type;  // "smtp" for an SMTP reply, else "X-Petrel"
  std::string diagnostic_field;
  std::string diagnostic_text;
  std::int64_t last_attempt = 0;
  std::int64_t will_retry_until = 0;
};

// RFC 3464 2.3.6: diagnostic-type "smtp" means the text is an SMTP reply ("550 5.1.1 ...").
bool looks_like_smtp_reply(std::string_view text) {
  return text.size() >= 3 && text[0] >= '2' && text[0] <= '5' && is_digits(text.substr(0, 3), 3, 3) &&
         (text.size() == 3 || text[3] == ' ' || text[3] == '-');
}

Rcpt prepare(const DsnRecipient& in, bool global_status, bool utf8_text) {
  Rcpt r;
  r.action = in.action;
  r.status = checked_status(in.status, in.action);

  // RFC 3464 2.3.2 / RFC 6533 3: a non-ASCII recipient is of type utf-8 (and then the part is
  // message/global-delivery-status, so global_status is true).
  std::string final_address = in.recipient.str();
  if (has_8bit(final_address)) {
    r.final_field = "utf-8; " + encode_address(final_address, AddressForm::kUtf8Raw);
  } else {
    r.final_field = "rfc822; " + encode_address(final_address, AddressForm::kRfc822);
  }
  // RFC 3461 6.3(d): Original-Recipient exactly when ORCPT was given, with its address type.
  if (!in.orcpt.empty()) {
    std::string type = clean_token(in.orcpt_type, "-_.", kMaxQueueId);
    if (type.empty()) type = "unknown";  // RFC 3464 2.3.1
    AddressForm form = AddressForm::kRfc822;
    if (base::iequals(type, "utf-8")) form = global_status ? AddressForm::kUtf8Raw : AddressForm::kUtf8Xtext;
    r.original_field = type + "; " + encode_address(in.orcpt, form);
  }
  r.text_address = encode_address(final_address, utf8_text ? AddressForm::kUtf8Raw : AddressForm::kRfc822);
  r.remote_mta = clean_token(in.remote_mta, "-._:[]", kMaxHost);
  r.diagnostic_field = clean_text(in.diagnostic, global_status, kMaxDiagnostic);
  r.diagnostic_text = clean_text(in.diagnostic, utf8_text, kMaxDiagnostic);
  r.diagnostic_type = looks_like_smtp_reply(r.diagnostic_field) ? "smtp" : "X-Petrel";
  r.last_attempt = in.last_attempt;
  r.will_retry_until = in.action == DsnAction::kDelayed ? in.will_retry_until : 0;
  return r;
}

// ---------------------------------------------------------------------------------------------
// The returned original.

enum class Returned { kNone, kWhole, kHeaders };

struct Original {
  std::string text;             // normalised (see below)
  std::size_t header_size = 0;  // octets of the header section, last CRLF included
};

void append_original_line(std::string& out, std::string_view line, bool in_header) {
  bool first = true;
  do {
    bool continuation = !first && in_header;
    std::size_t room = continuation ? kMaxLine - 1 : kMaxLine;
    std::size_t n = std::min(line.size(), room);
    // Do not split a UTF-8 sequence (at most 3 continuation octets to step back over).
    for (int k = 0; k < 3 && n > 1 && n < line.size() && (static_cast<unsigned char>(line[n]) & 0xC0) == 0x80; ++k) {
      --n;
    }
    if (continuation) out += ' ';
    for (char c : line.substr(0, n)) out += (c == '\0') ? '?' : c;
    out += "\r\n";
    line.remove_prefix(n);
    first = false;
  } while (!line.empty());
}

// RFC 5322 2.2: a field starts "name:" (name of printable ASCII but ':'); a line starting with
// a space or tab continues the field before it.
bool starts_or_continues_field(std::string_view line) {
  if (line.empty()) return false;
  if (line[0] == ' ' || line[0] == '\t') return true;
  std::size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  std::string_view name = line.substr(0, colon);
  return std::all_of(name.begin(), name.end(), [](char c) { return c > 32 && c < 127; });
}

// The original as it is returned, made valid 8bit data (RFC 2045 2.8, RFC 5322 2.1.1): CRLF
// line ends only (a bare LF or a bare CR ends a line), NUL becomes '?', a line over 998
// octets is broken (in the header section the rest goes on after a space, i.e. it folds and
// cannot start a field of its own; so does a header line that is no field at all), a last
// line without an end gets one. With headers_only, reading stops at the header section's end;
// in any case soon after `limit` octets of output.
Original normalise_original(std::string_view in, bool headers_only, std::size_t limit) {
  Original o;
  bool in_header = true;
  std::size_t pos = 0;
  while (pos < in.size() && o.text.size() < limit) {
    std::size_t eol = in.find_first_of("\r\n", pos);
    std::size_t end = eol == std::string_view::npos ? in.size() : eol;
    std::string_view line = in.substr(pos, end - pos);
    if (eol == std::string_view::npos) {
      pos = in.size();
    } else {
      pos = eol + ((in[eol] == '\r' && eol + 1 < in.size() && in[eol + 1] == '\n') ? 2 : 1);
    }
    if (in_header && line.empty()) {
      in_header = false;
      o.header_size = o.text.size();
      if (headers_only) return o;
      o.text += "\r\n";
      continue;
    }
    if (in_header && !o.text.empty() && !starts_or_continues_field(line)) {
      // Not a field and not a continuation (a bare CR split a field, or junk): continue the
      // field before it, so the returned header section stays a list of fields.
      append_original_line(o.text, " " + std::string(line), in_header);
      continue;
    }
    append_original_line(o.text, line, in_header);
  }
  if (in_header) o.header_size = o.text.size();
  return o;
}

struct ReturnedPart {
  Returned kind = Returned::kNone;
  std::string headers;  // part header lines
  std::string body;
  bool too_big = false;  // the whole message was asked for but only headers fit
};

ReturnedPart returned_part(const DsnInput& input, bool any_failed) {
  ReturnedPart part;
  if (input.original.empty()) return part;
  DsnRet ret = input.envelope ? input.envelope->ret : DsnRet::kUnspecified;
  // RFC 3461 4.3: RET=FULL asks for the whole message in a "failed" DSN; other notices (and
  // RET=HDRS) return the header section only, as Postfix does. Without RET we choose FULL.
  bool want_whole = any_failed && ret != DsnRet::kHeaders;
  bool fits = input.original_complete && input.original.size() <= input.max_original_bytes;
  bool whole = want_whole && fits;
  part.too_big = want_whole && !fits;

  Original o = normalise_original(input.original, !whole,
                                  whole ? std::string::npos : kMaxHeaderSection + kMaxLine + 2);
  bool utf8_headers = has_8bit(std::string_view(o.text).substr(0, o.header_size));
  if (whole) {
    part.kind = Returned::kWhole;
    part.body = std::move(o.text);
  } else {
    part.kind = Returned::kHeaders;
    std::size_t size = o.header_size;
    if (size > kMaxHeaderSection) {
      // Cut at a line end: every line is at most 1000 octets, so one ends within the cap.
      size = o.text.rfind("\r\n", kMaxHeaderSection - 2) + 2;
    }
    o.text.resize(size);
    part.body = std::move(o.text);
  }
  // RFC 6532 3.7 / RFC 6533 6.3-6.4: a header section with UTF-8 travels as message/global or
  // message/global-headers; otherwise RFC 6522's message/rfc822 and text/rfc822-headers.
  if (part.kind == Returned::kWhole) {
    part.headers = "Content-Description: Undelivered Message\r\n";
    part.headers += utf8_headers ? "Content-Type: message/global\r\n" : "Content-Type: message/rfc822\r\n";
  } else {
    part.headers = "Content-Description: Message Headers\r\n";
    part.headers += utf8_headers ? "Content-Type: message/global-headers\r\n" : "Content-Type: text/rfc822-headers\r\n";
  }
  if (has_8bit(part.body)) part.headers += "Content-Transfer-Encoding: 8bit\r\n";
  return part;
}

// ---------------------------------------------------------------------------------------------
// The three bodies.

struct Context {
  const DsnInput& input;
  std::string host;      // Reporting-MTA
  std::string queue_id;
  std::vector<Rcpt> rcpts;
  bool any_failed = false;
  bool any_delayed = false;
};

std::string_view group_intro(DsnAction action) {
  switch (action) {
    case DsnAction::kFailed:
      return "Your message could not be delivered to the recipients below. This is a permanent error: "
             "the mail system has given up on them.";
    case DsnAction::kDelayed:
      return "Your message has not been delivered yet to the recipients below. The mail system will keep "
             "trying. This is only a warning: you do not need to send the message again.";
    case DsnAction::kDelivered:
      return "Your message was delivered to the recipients below.";
    case DsnAction::kRelayed:
      return "Your message was passed on to the mail systems of the recipients below. Those systems may "
             "not send further delivery reports.";
    case DsnAction::kExpanded:
      return "Your message was delivered to the addresses below, which forward it to other recipients "
             "(a mailing list or an alias).";
  }
  return "";
}

std::string_view done_word(DsnAction action) {
  switch (action) {
    case DsnAction::kRelayed: return "Passed on";
    case DsnAction::kExpanded: return "Delivered to the list or alias";
    default: return "Delivered";
  }
}

std::string human_text(const Context& ctx, const ReturnedPart& original) {
  std::string out;
  append_wrapped(out, "This is the mail delivery system at " + ctx.host + ".");
  for (DsnAction action : {DsnAction::kFailed, DsnAction::kDelayed, DsnAction::kDelivered, DsnAction::kRelayed,
                           DsnAction::kExpanded}) {
    bool any = std::any_of(ctx.rcpts.begin(), ctx.rcpts.end(), [&](const Rcpt& r) { return r.action == action; });
    if (!any) continue;
    out += "\r\n";
    append_wrapped(out, group_intro(action));
    for (const Rcpt& r : ctx.rcpts) {
      if (r.action != action) continue;
      out += "\r\n";
      append_wrapped(out, "<" + r.text_address + ">", "  ");
      std::string what(r.status[0] == '2' ? done_word(r.action) : status_meaning(r.status));
      append_wrapped(out, what + " (status " + r.status + ").", "    ");
      if (!r.diagnostic_text.empty()) {
        bool answered = !r.remote_mta.empty() && r.diagnostic_type == "smtp";
        std::string said = answered ? "The server " + r.remote_mta + " answered: " : "Reason: ";
        append_wrapped(out, said + r.diagnostic_text, "    ");
      }
      if (r.will_retry_until != 0) {
        append_wrapped(out, "The mail system will keep trying until " + rfc5322_date(r.will_retry_until) + ".",
                       "    ");
      }
    }
  }
  out += "\r\n";
  if (original.kind == Returned::kWhole) {
    append_wrapped(out, "Your message is attached below.");
  } else if (original.kind == Returned::kHeaders) {
    append_wrapped(out, original.too_big ? "The header of your message is attached below; the whole message was "
                                           "too large to return."
                                         : "The header of your message is attached below.");
  }
  if (original.kind != Returned::kNone) out += "\r\n";
  std::string help = "If you need help, contact the postmaster of " + ctx.host;
  help += ctx.queue_id.empty() ? "." : " and quote the queue id " + ctx.queue_id + ".";
  append_wrapped(out, help);
  return out;
}

// RFC 3464 2.2 (per-message fields, in its ABNF order, our extension field last), then per
// recipient a blank line and RFC 3464 2.3's fields, again in ABNF order.
std::string status_fields(const Context& ctx) {
  std::string out;
  const Envelope* env = ctx.input.envelope;
  if (env && !env->envid.empty()) {
    // RFC 3461 6.3(a), RFC 3464 2.2.1: the ENVID as given, in its xtext form, so an identifier
    // of printable ASCII without '+' and '=' reads back unchanged and nothing else can break
    // the line. Cut so that no "+HH" is split.
    std::string envid = xtext_encode(env->envid);
    if (envid.size() > kMaxEnvid) {
      std::size_t cut = kMaxEnvid;
      std::size_t plus = envid.rfind('+', cut - 1);
      if (plus != std::string::npos && plus + 3 > cut) cut = plus;
      envid.resize(cut);
    }
    append_field(out, "Original-Envelope-Id", envid);
  }
  append_field(out, "Reporting-MTA", "dns; " + ctx.host);
  if (env && env->received_at != 0) append_field(out, "Arrival-Date", rfc5322_date(env->received_at));
  if (!ctx.queue_id.empty()) append_field(out, "X-Petrel-Queue-ID", ctx.queue_id);

  for (const Rcpt& r : ctx.rcpts) {
    out += "\r\n";
    if (!r.original_field.empty()) append_field(out, "Original-Recipient", r.original_field);
    append_field(out, "Final-Recipient", r.final_field);
    append_field(out, "Action", action_name(r.action));
    append_field(out, "Status", r.status);
    if (!r.remote_mta.empty()) append_field(out, "Remote-MTA", "dns; " + r.remote_mta);
    if (!r.diagnostic_field.empty()) {
      append_field(out, "Diagnostic-Code", r.diagnostic_type + "; " + r.diagnostic_field);
    }
    if (r.last_attempt != 0) append_field(out, "Last-Attempt-Date", rfc5322_date(r.last_attempt));
    if (r.will_retry_until != 0) append_field(out, "Will-Retry-Until", rfc5322_date(r.will_retry_until));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The boundary (RFC 2046 5.1.1): at most 70 characters, and its delimiter "--boundary" must
// not occur in any part. The first choice depends on the queue id and the time only; when a
// part contains it (a hostile original can), a hash of the parts is appended, which a sender
// cannot plant in the very content it is computed over; the loop tries further seeds for the
// vanishingly rare case where it still collides.
std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ULL;
  }
  return h;
}

std::string choose_boundary(std::string_view queue_id, std::int64_t now, const std::vector<std::string_view>& parts) {
  std::string id = queue_id.empty() ? "dsn" : std::string(queue_id.substr(0, kMaxBoundaryId));
  std::string base = "=_petrel_" + id + "_" + std::to_string(now);  // ≤ 9 + 16 + 1 + 20 octets
  auto occurs = [&](const std::string& boundary) {
    std::string delimiter = "--" + boundary;
    return std::any_of(parts.begin(), parts.end(),
                       [&](std::string_view p) { return p.find(delimiter) != std::string_view::npos; });
  };
  if (!occurs(base)) return base;
  for (std::uint64_t seed = 1;; ++seed) {
    std::uint64_t h = 0xCBF29CE484222325ULL ^ seed;
    for (std::string_view p : parts) h = fnv1a(h, p);
    std::string boundary = base + "_" + hex(h, 16);  // ≤ 63 octets
    if (!occurs(boundary)) return boundary;
  }
}

std::string_view subject_for(const Context& ctx) {
  if (ctx.any_failed) return "Undelivered Mail Returned to Sender";
  if (ctx.any_delayed) return "Delayed Mail (still being retried)";
  return "Successful Mail Delivery Report";
}

void ensure_line_end(std::string& body) {
  if (body.size() < 2 || body.compare(body.size() - 2, 2, "\r\n") != 0) body += "\r\n";
}

}  // namespace

DsnMessage compose_dsn(const DsnInput& input) {
  Context ctx{input, clean_token(input.reporting_mta, "-._:[]", kMaxHost),
              clean_token(input.queue_id, "-._", kMaxQueueId), {}, false, false};
  if (ctx.host.empty()) ctx.host = "localhost";
  const Envelope* env = input.envelope;

  // Which character sets the message needs. RFC 6533 3/5: any non-ASCII recipient address
  // makes the report message/global-delivery-status; any UTF-8 address in our own header or
  // status part means the DSN must travel with SMTPUTF8 (RFC 6531), and then the text may
  // carry UTF-8 too.
  bool global_status = false;
  for (const DsnRecipient& r : input.recipients) {
    if (r.recipient.has_utf8()) global_status = true;
    if (base::iequals(base::trim(r.orcpt_type), "utf-8") && has_8bit(r.orcpt)) global_status = true;
  }
  bool sender_utf8 = (env && env->sender.has_utf8()) || input.to.has_utf8();
  DsnMessage msg;
  msg.smtputf8 = global_status || sender_utf8 || has_8bit(input.postmaster);

  for (const DsnRecipient& r : input.recipients) {
    ctx.rcpts.push_back(prepare(r, global_status, msg.smtputf8));
    ctx.any_failed |= r.action == DsnAction::kFailed;
    ctx.any_delayed |= r.action == DsnAction::kDelayed;
  }

  // The three bodies.
  ReturnedPart original = returned_part(input, ctx.any_failed);
  std::string text = human_text(ctx, original);
  std::string status = status_fields(ctx);
  std::string text_headers = "Content-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n";
  if (has_8bit(text)) text_headers += "Content-Transfer-Encoding: 8bit\r\n";
  std::string status_headers = "Content-Description: Delivery Report\r\n";
  status_headers += global_status ? "Content-Type: message/global-delivery-status\r\n"
                                  : "Content-Type: message/delivery-status\r\n";
  if (has_8bit(status)) status_headers += "Content-Transfer-Encoding: 8bit\r\n";
  if (original.kind != Returned::kNone) ensure_line_end(original.body);

  std::vector<std::string_view> bodies = {text, status};
  if (original.kind != Returned::kNone) bodies.push_back(original.body);
  std::string boundary = choose_boundary(clean_token(input.queue_id, "-._", kMaxBoundaryId), input.now, bodies);

  // The top-level header (RFC 5322 3.6, RFC 3834 5 Auto-Submitted, RFC 6522 3).
  AddressForm header_form = msg.smtputf8 ? AddressForm::kUtf8Raw : AddressForm::kRfc822;
  std::string postmaster = encode_address(input.postmaster, header_form);
  if (postmaster.empty()) postmaster = "postmaster@" + ctx.host;
  const Address* to_address = !input.to.null() ? &input.to : (env && !env->sender.null()) ? &env->sender : nullptr;
  std::string to = to_address ? "<" + encode_address(to_address->str(), header_form) + ">" : "undisclosed-recipients:;";
  std::string message_id = clean_token(input.message_id, "!#$%&'*+-/=?^_`{|}~.@[]", kMaxHost);
  if (message_id.empty()) message_id = std::to_string(input.now) + "." + ctx.queue_id + "@" + ctx.host;
  std::string report_type = global_status ? "global-delivery-status" : "delivery-status";

  std::string& out = msg.bytes;
  out.reserve(text.size() + status.size() + original.body.size() + 2048);
  append_field(out, "From", "Mail Delivery System <" + postmaster + ">");
  append_field(out, "To", to);
  append_field(out, "Subject", subject_for(ctx));
  append_field(out, "Date", rfc5322_date(input.now));
  append_field(out, "Message-ID", "<" + message_id + ">");
  append_field(out, "Auto-Submitted", "auto-replied");
  append_field(out, "MIME-Version", "1.0");
  out += "Content-Type: multipart/report; report-type=" + report_type + ";\r\n\tboundary=\"" + boundary + "\"\r\n";
  out += "\r\n";
  out += "This is a MIME-encapsulated delivery status notification.\r\n";

  // Each body ends in CRLF, and that CRLF belongs to the delimiter after it (RFC 2046 5.1.1);
  // an empty body is written as one CRLF so that its part still has its blank line.
  auto add_part = [&](const std::string& headers, const std::string& body) {
    out += "--" + boundary + "\r\n";
    out += headers;
    out += "\r\n";
    out += body.empty() ? std::string("\r\n") : body;
  };
  add_part(text_headers, text);
  add_part(status_headers, status);
  if (original.kind != Returned::kNone) add_part(original.headers, original.body);
  out += "--" + boundary + "--\r\n";

  msg.eight_bit = has_8bit(out);
  return msg;
}

}  // namespace petrel::mail
