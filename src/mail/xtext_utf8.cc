// xtext_utf8.cc: xtext (RFC 3461 4) and strict UTF-8 validation (RFC 3629 4).
#include "mail/command.h"
#include "mail/internal.h"

namespace petrel::mail {

namespace internal {

// RFC 3629 4, UTF8-char: the second octet's range depends on the first, which is what rules out
// overlongs (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and > U+10FFFF (F4 90.., F5..).
std::size_t utf8_sequence_length(std::string_view text) {
  if (text.empty()) return 0;
  auto at = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char c0 = at(0);
  if (c0 < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    len = 2;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    len = 3;
    if (c0 == 0xE0) lo = 0xA0;
    if (c0 == 0xED) hi = 0x9F;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    len = 4;
    if (c0 == 0xF0) lo = 0x90;
    if (c0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < len) return 0;
  if (at(1) < lo || at(1) > hi) return 0;
  for (std::size_t i = 2; i < len; ++i) {
    if (at(i) < 0x80 || at(i) > 0xBF) return 0;
  }
  return len;
}

}  // namespace internal

bool is_valid_utf8(std::string_view text) {
  while (!text.empty()) {
    std::size_t n = internal::utf8_sequence_length(text);
    if (n == 0) return false;
    text.remove_prefix(n);
  }
  return true;
}

namespace {

int upper_hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // RFC 3461 4: hexchar uses uppercase only
}

}  // namespace

// RFC 3461 4: xtext = *( xchar / hexchar ); xchar = %d33-126 except "+" and "=";
// hexchar = "+" 2(%x30-39 / %x41-46).
std::optional<std::string> xtext_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      if (text.size() - i < 3) return std::nullopt;
      int hi = upper_hex_value(text[i + 1]);
      int lo = upper_hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
      continue;
    }
    if (c < 33 || c > 126 || c == '=') return std::nullopt;
    out += c;
  }
  return out;
}

std::string xtext_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126 || c == '+' || c == '=') {
      out += '+';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace petrel::mail
