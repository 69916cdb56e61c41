// mail/internal.h: helpers shared by the .cc files of the mail library. Not part of its contract:
// other libraries include address.h, command.h and reply.h instead.
//
// The path scanner is split in two so that MAIL can read its parameters (which decide whether
// SMTPUTF8 is in force) after the path's syntax is known but before its UTF-8 is judged.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "mail/address.h"

namespace petrel::mail::internal {

struct ScannedPath {
  Address address;
  std::size_t consumed = 0;         // up to and including '>'
  std::size_t local_wire_size = 0;  // the local part as written (quotes and escapes included)
};

// Syntax only (RFC 5321 4.1.2): octets >= 0x80 are accepted wherever RFC 6531 3.3 would allow
// UTF-8 (atext, qtext, domain labels), without judging them. nullopt on any syntax error.
std::optional<ScannedPath> scan_path(std::string_view text, bool allow_null, bool allow_postmaster);

// What comes after syntax, in this order: 8-bit octets without permission, invalid UTF-8, then
// the RFC 5321 4.5.3.1 length limits. `text` is the same text scan_path() read.
std::optional<PathError> check_path(std::string_view text, const ScannedPath& path, bool allow_utf8);

// Length of the valid RFC 3629 UTF-8 sequence that starts `text`, 0 when there is none.
std::size_t utf8_sequence_length(std::string_view text);

inline bool is_8bit(char c) { return static_cast<unsigned char>(c) >= 0x80; }
inline bool has_8bit(std::string_view text) {
  for (char c : text) {
    if (is_8bit(c)) return true;
  }
  return false;
}

}  // namespace petrel::mail::internal
