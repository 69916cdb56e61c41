// address.cc: the RFC 5321 4.1.2 Path grammar, with the RFC 6531 3.3 UTF-8 extensions.
//
// The scanner works on octets and is linear: each octet is looked at a bounded number of times.
// It never routes: '%' and '!' are atext, a second '@' outside quotes is a syntax error.
#include "mail/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "base/strings.h"
#include "mail/command.h"  // is_valid_utf8
#include "mail/internal.h"

namespace petrel::mail {

namespace {

using internal::is_8bit;

// RFC 5321 4.5.3.1.1-3.
constexpr std::size_t kMaxLocal = 64;
constexpr std::size_t kMaxDomain = 255;
constexpr std::size_t kMaxPath = 256;
constexpr std::size_t kMaxLabel = 63;  // RFC 1035 2.3.4

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 5322 3.2.3 atext, which RFC 5321 4.1.2 Atom uses; RFC 6531 3.3 adds UTF8-non-ascii.
bool is_atext(char c) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
  return is_alpha(c) || is_digit(c) || is_8bit(c) || kSpecials.find(c) != std::string_view::npos;
}

// Let-dig, with RFC 6531 3.3 U-label octets when allow_utf8.
bool is_let_dig(char c, bool allow_utf8) { return is_alpha(c) || is_digit(c) || (allow_utf8 && is_8bit(c)); }

// RFC 5321 4.1.2 Dot-string = Atom *("." Atom): no leading, trailing or doubled dot.
bool is_dot_string(std::string_view s) {
  if (s.empty()) return false;
  bool atom_has_char = false;
  for (char c : s) {
    if (c == '.') {
      if (!atom_has_char) return false;
      atom_has_char = false;
    } else if (is_atext(c)) {
      atom_has_char = true;
    } else {
      return false;
    }
  }
  return atom_has_char;
}

// sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]; total length not checked here.
bool domain_labels_ok(std::string_view d, bool allow_utf8) {
  if (d.empty()) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = d.find('.', start);
    std::string_view label = d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > kMaxLabel) return false;
    if (!is_let_dig(label.front(), allow_utf8) || !is_let_dig(label.back(), allow_utf8)) return false;
    for (char c : label) {
      if (!is_let_dig(c, allow_utf8) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// RFC 5321 4.1.2 dcontent = %d33-90 / %d94-126.
bool is_dcontent(char c) { return (c >= 33 && c <= 90) || (c >= 94 && c <= 126); }

// RFC 5321 4.1.3 address-literal, brackets included. IPv4 and "IPv6:" literals are checked with
// inet_pton; a General-address-literal ("[tag:content]") is refused, as we route none.
bool address_literal_ok(std::string_view d) {
  if (d.size() < 3 || d.front() != '[' || d.back() != ']') return false;
  std::string_view inner = d.substr(1, d.size() - 2);
  for (char c : inner) {
    if (!is_dcontent(c)) return false;
  }
  int family = AF_INET;
  if (base::istarts_with(inner, "IPv6:")) {
    family = AF_INET6;
    inner.remove_prefix(5);
  } else if (inner.find(':') != std::string_view::npos) {
    return false;  // General-address-literal
  }
  char buf[64];
  if (inner.empty() || inner.size() >= sizeof buf) return false;
  std::memcpy(buf, inner.data(), inner.size());
  buf[inner.size()] = '\0';
  unsigned char addr[16];
  return inet_pton(family, buf, addr) == 1;
}

// Scans a Domain or address-literal at text[pos]; on success pos is past it and the result is
// its text. Syntax only: 8-bit octets count as letters (judged later by check_path).
std::optional<std::string_view> scan_domain(std::string_view text, std::size_t& pos, bool allow_literal) {
  std::size_t begin = pos;
  if (pos < text.size() && text[pos] == '[') {
    if (!allow_literal) return std::nullopt;
    std::size_t close = text.find(']', pos);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view literal = text.substr(begin, close + 1 - begin);
    if (!address_literal_ok(literal)) return std::nullopt;
    pos = close + 1;
    return literal;
  }
  while (pos < text.size() && (is_let_dig(text[pos], true) || text[pos] == '-' || text[pos] == '.')) ++pos;
  std::string_view domain = text.substr(begin, pos - begin);
  if (!domain_labels_ok(domain, true)) return std::nullopt;
  return domain;
}

// RFC 5321 4.1.2 Quoted-string at text[pos] (a '"'); appends the decoded content to out.
// qtextSMTP = %d32-33 / %d35-91 / %d93-126 (+ UTF8-non-ascii, RFC 6531 3.3);
// quoted-pairSMTP = %d92 %d32-126.
bool scan_quoted_string(std::string_view text, std::size_t& pos, std::string& out) {
  ++pos;
  while (pos < text.size()) {
    char c = text[pos];
    if (c == '"') {
      ++pos;
      return true;
    }
    if (c == '\\') {
      if (pos + 1 >= text.size() || text[pos + 1] < 32 || text[pos + 1] > 126) return false;
      out += text[pos + 1];
      pos += 2;
      continue;
    }
    if (!((c >= 32 && c <= 126) || is_8bit(c))) return false;
    out += c;
    ++pos;
  }
  return false;
}

// Mailbox = Local-part "@" ( Domain / address-literal ) at text[pos].
bool scan_mailbox(std::string_view text, std::size_t& pos, internal::ScannedPath& out) {
  std::size_t begin = pos;
  if (pos < text.size() && text[pos] == '"') {
    if (!scan_quoted_string(text, pos, out.address.local)) return false;
  } else {
    while (pos < text.size() && (is_atext(text[pos]) || text[pos] == '.')) ++pos;
    std::string_view local = text.substr(begin, pos - begin);
    if (!is_dot_string(local)) return false;
    out.address.local = std::string(local);
  }
  // An empty local part ("" quoted) names nobody; refuse it rather than invent a meaning.
  if (out.address.local.empty()) return false;
  out.local_wire_size = pos - begin;
  if (pos >= text.size() || text[pos] != '@') return false;
  ++pos;
  auto domain = scan_domain(text, pos, /*allow_literal=*/true);
  if (!domain) return false;
  out.address.domain = std::string(*domain);
  return true;
}

std::string quote_local(std::string_view local) {
  std::string out = "\"";
  for (char c : local) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

namespace internal {

std::optional<ScannedPath> scan_path(std::string_view text, bool allow_null, bool allow_postmaster) {
  if (text.size() < 2 || text[0] != '<') return std::nullopt;
  // Reverse-path = Path / "<>" (RFC 5321 4.1.2).
  if (text[1] == '>') {
    if (!allow_null) return std::nullopt;
    return ScannedPath{Address{}, 2, 0};
  }
  // RFC 5321 4.5.1: "<Postmaster>" with no domain, matched case-insensitively.
  if (allow_postmaster && text.size() >= 12 && base::iequals(text.substr(1, 10), "postmaster") && text[11] == '>') {
    return ScannedPath{Address{"Postmaster", ""}, 12, 10};
  }

  // A-d-l = At-domain *( "," At-domain ) ":"; accepted and dropped (RFC 5321 4.1.1.3 and
  // Appendix C). At-domain = "@" Domain: no address literals here.
  std::size_t pos = 1;
  if (text[pos] == '@') {
    while (true) {
      ++pos;  // '@'
      if (!scan_domain(text, pos, /*allow_literal=*/false)) return std::nullopt;
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        if (pos >= text.size() || text[pos] != '@') return std::nullopt;
        continue;
      }
      break;
    }
    if (pos >= text.size() || text[pos] != ':') return std::nullopt;
    ++pos;
  }

  ScannedPath out;
  if (!scan_mailbox(text, pos, out)) return std::nullopt;
  if (pos >= text.size() || text[pos] != '>') return std::nullopt;
  out.consumed = pos + 1;
  return out;
}

std::optional<PathError> check_path(std::string_view text, const ScannedPath& path, bool allow_utf8) {
  std::string_view raw = text.substr(0, path.consumed);
  if (has_8bit(raw)) {
    // RFC 6531 3.5: without SMTPUTF8 a non-ASCII address is refused (553 5.6.7).
    if (!allow_utf8) return PathError::kUtf8NotAllowed;
    // The scanner let 8-bit octets through only where UTF-8 may stand, so checking the
    // whole path checks every piece of it.
    if (!is_valid_utf8(raw)) return PathError::kBadUtf8;
  }
  // RFC 5321 4.5.3.1.1-3: local part 64, domain 255, path 256 octets (brackets included).
  if (path.consumed > kMaxPath || path.local_wire_size > kMaxLocal || path.address.domain.size() > kMaxDomain) {
    return PathError::kTooLong;
  }
  return std::nullopt;
}

}  // namespace internal

std::string Address::str() const {
  if (null()) return "";
  std::string out = is_dot_string(local) ? local : quote_local(local);
  if (!domain.empty()) {
    out += '@';
    out += domain;
  }
  return out;
}

std::string Address::domain_key() const { return base::to_lower(domain); }

bool Address::has_utf8() const { return internal::has_8bit(local) || internal::has_8bit(domain); }

base::Result<PathParse> parse_path(std::string_view text, const PathOptions& options, PathError* why) {
  auto scanned = internal::scan_path(text, options.allow_null, options.allow_postmaster);
  if (!scanned) {
    if (why) *why = PathError::kSyntax;
    return base::permanent_error("bad address syntax");
  }
  if (auto err = internal::check_path(text, *scanned, options.allow_utf8)) {
    if (why) *why = *err;
    switch (*err) {
      case PathError::kUtf8NotAllowed: return base::permanent_error("non-ASCII address without SMTPUTF8");
      case PathError::kBadUtf8: return base::permanent_error("address is not valid UTF-8");
      case PathError::kTooLong: return base::permanent_error("address too long");
      case PathError::kSyntax: break;
    }
    return base::permanent_error("bad address syntax");
  }
  return PathParse{std::move(scanned->address), scanned->consumed};
}

base::Result<Address> parse_address(std::string_view text) {
  internal::ScannedPath scanned;
  std::size_t pos = 0;
  if (!scan_mailbox(text, pos, scanned) || pos != text.size()) {
    return base::permanent_error("bad address syntax");
  }
  if (internal::has_8bit(text) && !is_valid_utf8(text)) return base::permanent_error("address is not valid UTF-8");
  // The same bounds as in a path: it must fit in "<" ... ">" of 256 octets.
  if (text.size() + 2 > kMaxPath || scanned.local_wire_size > kMaxLocal || scanned.address.domain.size() > kMaxDomain) {
    return base::permanent_error("address too long");
  }
  return std::move(scanned.address);
}

bool is_valid_domain(std::string_view domain, bool allow_utf8) {
  if (domain.empty() || domain.size() > kMaxDomain) return false;
  if (domain.front() == '[') return address_literal_ok(domain);
  if (!domain_labels_ok(domain, allow_utf8)) return false;
  return !internal::has_8bit(domain) || is_valid_utf8(domain);
}

}  // namespace petrel::mail
