// mail/headers.cc: the fields Petrel writes and the address lists it reads (headers.h).
#include "mail/headers.h"

#include "base/strings.h"
#include "mail/date.h"
#include "mail/internal.h"

namespace petrel::mail {
namespace {

// Octets of UTF-8 per encoded-word: 42 octets are 56 base64 characters, 68 with "=?UTF-8?B?"
// and "?=", so "From: " plus the first word stays within the 76 characters RFC 2047 2 allows
// on a line with encoded-words.
constexpr std::size_t kWordOctets = 42;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                 static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < in.size() ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}


// Text for a trace field: printable ASCII stays, except '"', '\\', '(' and ')' (which would
// open or close a quoted string or a comment); every other octet, CR and LF included, becomes
// \xHH. Cut at max_len octets with "..." (base::log_escape's rules, plus the parentheses).
std::string trace_text(std::string_view text, std::size_t max_len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\' && c != '"' && c != '(' && c != ')') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// RFC 5322 3.2.3 atext, plus '.': the octets of a dot-atom-text.
bool is_dot_atom_octet(char c) {
  auto u = static_cast<unsigned char>(c);
  if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
}

std::string dot_atom(std::string_view text, std::size_t max_len) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max_len) break;
    if (is_dot_atom_octet(c)) out += c;
  }
  return out.empty() ? "invalid" : out;
}

}  // namespace

// ---- Received: ----

std::string received_protocol(bool esmtp, bool smtputf8, bool tls, bool authenticated) {
  std::string proto = smtputf8 ? "UTF8SMTP" : (esmtp ? "ESMTP" : "SMTP");
  if (tls) proto += "S";
  if (authenticated) proto += "A";
  return proto;
}

std::string received_field(const ReceivedInfo& in) {
  // RFC 5321 4.4: Stamp = From-domain By-domain Opt-info [CFWS] ";" FWS date-time. One clause
  // per line; continuation lines start with a tab.
  std::string h = "Received: ";
  if (!in.helo.empty() || !in.ip.empty()) {
    h += "from " + trace_text(in.helo, 100) + " ([" + trace_text(in.ip, 64) + "])\r\n\t";
  }
  if (!in.tls.empty()) h += "(using " + trace_text(in.tls, 200) + ")\r\n\t";
  h += "by " + trace_text(in.by, 255);
  if (!in.by_comment.empty()) h += " (" + trace_text(in.by_comment, 100) + ")";
  if (!in.with.empty()) h += " with " + trace_text(in.with, 20);
  if (!in.id.empty()) h += " id " + trace_text(in.id, 64);
  if (!in.for_rcpt.empty()) h += "\r\n\tfor <" + trace_text(in.for_rcpt, 300) + ">";
  h += ";\r\n\t" + rfc5322_date(in.at) + "\r\n";
  return h;
}

// ---- Date:, Message-ID: ----

std::string date_field(std::int64_t at) { return "Date: " + rfc5322_date(at) + "\r\n"; }

std::string unique_id_left(std::int64_t now, std::uint64_t random) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string time;
  auto t = static_cast<std::uint64_t>(now < 0 ? 0 : now);
  do {
    time.insert(time.begin(), kDigits[t % 36]);
    t /= 36;
  } while (t != 0);
  std::string hex(16, '0');
  for (std::size_t i = 16; i-- > 0; random >>= 4) hex[i] = kDigits[random & 15];
  return time + "." + hex;
}

std::string message_id_field(std::string_view left, std::string_view host) {
  return "Message-ID: <" + dot_atom(left, 200) + "@" + dot_atom(host, 255) + ">\r\n";
}

// ---- From: ----

bool has_control(std::string_view text) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

base::Result<std::string> mailbox(std::string_view name, std::string_view addr_spec) {
  const std::string angle = "<" + std::string(addr_spec) + ">";
  if (name.empty()) return angle;
  if (name.size() > kMaxDisplayName) return base::permanent_error("full name longer than 256 octets");
  if (has_control(name)) return base::permanent_error("full name contains a control character (CR, LF, TAB, NUL...)");
  if (!internal::has_8bit(name)) {
    // RFC 5322 3.2.4: quoted-string; '"' and '\' only as quoted-pairs.
    std::string q = "\"";
    for (char c : name) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\" " + angle;
  }
  // RFC 2047 5(3): encoded-words stand in for the phrase; each holds whole UTF-8 characters
  // (2047 5: a multi-octet character must not be split between words).
  std::string out;
  while (!name.empty()) {
    std::size_t take = 0;
    while (take < name.size()) {
      std::size_t n = 1;
      if (internal::is_8bit(name[take])) {
        n = internal::utf8_sequence_length(name.substr(take));
        if (n == 0) return base::permanent_error("full name is not valid UTF-8");
      }
      if (take + n > kWordOctets) break;
      take += n;
    }
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(name.substr(0, take)) + "?=";
    name.remove_prefix(take);
  }
  return out + " " + angle;
}

base::Result<std::string> from_field(std::string_view display_name, std::string_view addr_spec) {
  auto m = mailbox(display_name, addr_spec);
  if (!m) return m.error();
  return "From: " + *m + "\r\n";
}

// ---- Reading address lists ----

std::optional<std::vector<Address>> parse_mailbox_list(std::string_view v) {
  std::vector<Address> out;
  std::string plain;  // the element's text outside comments and angle brackets, whitespace dropped
  std::optional<std::string> angle;
  auto finish = [&]() -> bool {
    std::string spec = angle ? std::string(base::trim(*angle)) : plain;
    // An obsolete route in an angle address (RFC 5322 4.4): "<@a,@b:user@host>".
    if (angle && spec.starts_with("@")) {
      auto colon = spec.find(':');
      if (colon == std::string::npos) return false;
      spec = spec.substr(colon + 1);
    }
    plain.clear();
    const bool had_angle = angle.has_value();
    angle.reset();
    if (spec.empty()) return !had_angle;  // an empty list element or group: nothing to check
    auto a = parse_address(spec);
    if (!a || a->domain.empty()) return false;
    out.push_back(std::move(a).value());
    return true;
  };
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '(') {
      // A comment, possibly nested, with quoted-pairs.
      int depth = 0;
      for (; i < v.size(); ++i) {
        if (v[i] == '\\') ++i;
        else if (v[i] == '(') ++depth;
        else if (v[i] == ')' && --depth == 0) break;
      }
      if (i >= v.size()) return std::nullopt;
    } else if (c == '"') {
      // A quoted string: kept as written (part of a local part or of a display name).
      std::size_t start = i++;
      for (; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\') ++i;
      }
      if (i >= v.size()) return std::nullopt;
      if (!angle) plain.append(v.substr(start, i - start + 1));
    } else if (c == '[' && !angle) {
      // A domain literal ("[IPv6:::1]"): its colons do not start a group.
      auto close = v.find(']', i + 1);
      if (close == std::string_view::npos) return std::nullopt;
      plain.append(v.substr(i, close - i + 1));
      i = close;
    } else if (c == '<') {
      auto close = v.find('>', i + 1);
      if (angle || close == std::string_view::npos) return std::nullopt;
      angle = std::string(v.substr(i + 1, close - i - 1));
      i = close;
    } else if (c == ':') {
      plain.clear();  // "group name:" starts a group; its name is not an address
    } else if (c == ',' || c == ';') {
      if (!finish()) return std::nullopt;
    } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      // After an angle address only whitespace and comments may follow within the element;
      // text before it is the display name and is dropped when the angle address comes.
      if (angle) return std::nullopt;
      plain += c;
    }
  }
  if (!finish()) return std::nullopt;
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace petrel::mail
