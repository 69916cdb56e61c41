// mail/headers.h: the header fields Petrel writes itself (the Received: trace field, RFC 5321
// 4.4; Date:, Message-ID: and From:, RFC 5322 3.6) and the one header value it reads (the
// mailbox and address lists of From:, To:, Cc:, Bcc:, RFC 5322 3.4).
//
// Promise: pure (no I/O, no clock, no randomness: the caller passes the time and the unique
// parts). A builder returns one complete field ending in CRLF; the only other CRLF it may
// contain is a fold (CRLF followed by a space or tab, RFC 5322 2.2.3). Text that comes from
// peers or users (a HELO name, a recipient, a full name) is escaped, quoted or encoded, or
// refused, never copied raw: no input can end the field early or start another one, and no
// line grows past 998 octets. The SMTP session, the local submission socket and `petrel
// sendmail` all build these fields here, so they are written one way.
// Not done here: deciding which fields a message lacks (the callers), date text (mail/date.h).
// Failure: a display name that cannot be written (a control character, invalid UTF-8, longer
// than kMaxDisplayName) is a permanent error saying why; parse_mailbox_list() returns nullopt
// on anything it cannot parse.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mail/address.h"

namespace petrel::mail {

// ---- Received: (RFC 5321 4.4) ------------------------------------------------------------

// The with-protocol keyword: "SMTP" after HELO, "ESMTP" after EHLO, "UTF8SMTP" for an SMTPUTF8
// transaction (RFC 6531 3.7.3), then "S" when TLS protected it and "A" when the client was
// authenticated (RFC 3848: ESMTPS, ESMTPA, ESMTPSA; RFC 6531: UTF8SMTPS, UTF8SMTPA, ...).
std::string received_protocol(bool esmtp, bool smtputf8, bool tls, bool authenticated);

struct ReceivedInfo {
  std::string_view helo{};        // the client's HELO/EHLO name; empty with `ip` empty: no from clause
  std::string_view ip{};          // the client's IP address, written as TCP-info "([ip])"
  std::string_view tls{};         // "TLSv1.3 TLS_AES_256_GCM_SHA384": a "(using ...)" line; empty: none
  std::string_view by{};          // our host name
  std::string_view by_comment{};  // "Petrel"; "Petrel, from userid 1000"
  std::string_view with{};        // received_protocol(); empty: no with clause
  std::string_view id{};          // the queue id
  std::string_view for_rcpt{};    // the one recipient (Address::str()); empty: no for clause
  std::int64_t at = 0;          // seconds since the epoch
};

// "Received: from HELO ([ip])\r\n\t(using TLS)\r\n\tby HOST (COMMENT) with PROTO id ID\r\n
// \tfor <rcpt>;\r\n\tDATE\r\n", each clause only when its input is given (without a from
// clause, "by" opens the first line). Every octet outside printable ASCII, and '"', '\', '('
// and ')', is written \xHH; peer-supplied text is cut (HELO at 100 octets, recipient at 300).
std::string received_field(const ReceivedInfo& info);

// ---- Date:, Message-ID: (RFC 5322 3.6.1, 3.6.4) -------------------------------------------

// "Date: " + rfc5322_date(at) + CRLF.
std::string date_field(std::int64_t at);

// A Message-ID left part unique without coordination: the time and 64 random bits,
// "<seconds, base 36>.<random, 16 hex digits>".
std::string unique_id_left(std::int64_t now, std::uint64_t random);

// "Message-ID: <left@host>" + CRLF. Octets of `left` and `host` that dot-atom-text does not
// allow are dropped (a part left empty becomes "invalid"), so the field always parses.
std::string message_id_field(std::string_view left, std::string_view host);

// ---- From: (RFC 5322 3.4, 3.6.2) -----------------------------------------------------------

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

// ---- Reading address lists (RFC 5322 3.4) ----------------------------------------------------

// The addresses of an RFC 5322 mailbox-list or address-list (a From:, To: or Cc: value, folded
// or not): display names, quoted strings, comments, angle addresses, obsolete routes, groups.
// nullopt when unparsable or empty; every address returned has a domain.
std::optional<std::vector<Address>> parse_mailbox_list(std::string_view value);

}  // namespace petrel::mail
