// mail/headers.cc: originator fields (headers.h).
#include "mail/headers.h"

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

}  // namespace

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

}  // namespace petrel::mail
