// smtp/client/commands.h: the command lines of an outgoing mail transaction, from the envelope
// and the server's capabilities. Pure: no I/O.
//
// Promise: every line ends in CRLF and carries only the extensions the server offered:
// SIZE= (SIZE), BODY= (8BITMIME), SMTPUTF8 (when the envelope needs it and it is offered),
// RET/ENVID (DSN) on MAIL; NOTIFY/ORCPT (DSN) on RCPT (RFC 1870, 6152, 6531, 3461).
// Failure: an address or parameter holding CR, LF or NUL gives a temporary error and no line
// (the server that accepted the envelope validated it; this is a second lock on the door).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "mail/envelope.h"

namespace petrel::smtp::client {

struct Capabilities;

// "MAIL FROM:<a@b> SIZE=123 BODY=8BITMIME\r\n"
base::Result<std::string> mail_from_line(const mail::Envelope& envelope, std::uint64_t body_size,
                                         const Capabilities& caps);
// "RCPT TO:<c@d> NOTIFY=FAILURE,DELAY ORCPT=rfc822;c@d\r\n"
base::Result<std::string> rcpt_to_line(const mail::Recipient& recipient, const Capabilities& caps);

// RFC 6533 3: utf-8-addr-xtext, for ORCPT=utf-8;... (ASCII out, "\x{HEX}" for the rest).
std::string utf8_addr_xtext(std::string_view text);

}  // namespace petrel::smtp::client
