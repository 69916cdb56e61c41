// mail/headers.h: the header fields Petrel writes itself (RFC 5322 3.6 originator fields).
//
// Promise: pure (no I/O, no clock, no randomness). A builder returns one complete field ending
// in CRLF; the only other CRLF it may contain is a fold (CRLF followed by a space or tab,
// RFC 5322 2.2.3). Text that comes from users (a full name) is quoted or encoded, or refused,
// never copied raw: no input can end the field early or start another one.
// Not done here: deciding which fields a message lacks (the callers), date text (mail/date.h).
// Failure: a display name that cannot be written (a control character, invalid UTF-8, longer
// than kMaxDisplayName) is a permanent error saying why.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"

namespace petrel::mail {

// Longest display name (octets, before encoding) mailbox() accepts.
inline constexpr std::size_t kMaxDisplayName = 256;

// RFC 5322 3.4 mailbox: `"Display Name" <addr-spec>`, or `<addr-spec>` when the name is empty.
// An ASCII name becomes a quoted-string with '"' and '\' escaped (3.2.4); a name with UTF-8
// becomes RFC 2047 "B" encoded-words of at most 75 characters, folded between words (2047 2,
// 5(3)). Controls (0x00-0x1F, 0x7F; TAB too) are refused. `addr_spec` is written as given and
// must be free of controls (an Address::str(), or a checked command-line address).
base::Result<std::string> mailbox(std::string_view display_name, std::string_view addr_spec);

// "From: " + mailbox(...) + CRLF.
base::Result<std::string> from_field(std::string_view display_name, std::string_view addr_spec);

// True when `text` holds an octet below 0x20 or 0x7F (CR, LF, NUL, TAB...).
bool has_control(std::string_view text);

}  // namespace petrel::mail
