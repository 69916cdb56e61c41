// mail/dsn.h: delivery status notifications (bounces, delay warnings, success notices) as
// complete messages, ready to be queued (RFC 3461, RFC 6522 (was 3462) multipart/report, RFC 3464
// message/delivery-status, RFC 6533 for internationalised addresses).
//
// What it is: compose_dsn() turns what the queue knows about one message and some of its
// recipients into the bytes of one DSN message. Pure: no I/O, no clock, no randomness (the
// caller passes the time and the Message-ID; the boundary derives from the queue id and the
// time), so golden files can test it. Thread: any; cost linear in the returned original.
// Promise: the result is a syntactically valid RFC 5322 message with CRLF line ends only, no
// line longer than 998 octets, no bare CR or LF, no NUL; every peer-supplied text (reply
// text, addresses, ENVID, the original headers) is length-capped and cannot forge a header,
// a MIME boundary or a delivery-status field. The original message is included as
// message/rfc822 (whole, when RET allows it and it fits `max_original_bytes`) or as
// text/rfc822-headers (its header section only, capped).
// Not done here: deciding who gets a DSN or when (the queue: never for the null sender, NOTIFY
// rules), queueing it, reading the original from the spool.
// Failure: none; any input gives a message (over-long or hostile fields are cut and escaped).
//
// Shape (RFC 6522): multipart/report with (1) text/plain; charset=utf-8 for people, (2)
// message/delivery-status, or message/global-delivery-status when a recipient address is not
// ASCII (RFC 6533), (3) the original; part 3 is left out when `original` is empty.
// Decisions the RFCs leave to us:
// - Subject names the worst outcome: any failed, else any delayed, else the success subject.
// - The whole original is returned only in a DSN with a failed recipient (RET=FULL is about
//   "failed" DSNs, RFC 3461 4.3), when RET is not HDRS, the caller read all of it and it fits
//   `max_original_bytes`; otherwise its header section (capped at 64 KiB at a line end). An
//   original whose header section has 8-bit octets goes as message/global or
//   message/global-headers (RFC 6532 3.7, RFC 6533 6); 8-bit content sets eight_bit and
//   "Content-Transfer-Encoding: 8bit" on that part.
// - What is returned is normalised: CRLF line ends (a bare LF or CR ends a line), NUL → '?',
//   lines over 998 octets broken (folded, in the header section), a header line that is no
//   field made a continuation line.
// - Status: malformed → X.0.0 of the action's class; a failed recipient with a 4.y.z code
//   (retries ran out) is reported as 5.y.z.
// - Diagnostic-Code type is "smtp" when the text is an SMTP reply ("550 ..."), else
//   "X-Petrel"; at most 960 octets, folded at spaces. Without SMTPUTF8 in play, non-ASCII
//   characters of peer text become '?'.
// - Original-Envelope-Id carries the ENVID xtext-encoded (identical to the decoded form for
//   printable ASCII without '+' and '=').
// - The boundary is "=_petrel_<queue id>_<now>"; if any part contains it, a hash of the parts
//   is appended (repeated until none does).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mail/address.h"
#include "mail/envelope.h"

namespace petrel::mail {

enum class DsnAction : std::uint8_t { kFailed, kDelayed, kDelivered, kRelayed, kExpanded };

struct DsnRecipient {
  Address recipient;        // the envelope recipient (Final-Recipient)
  std::string orcpt_type;   // from the envelope: Original-Recipient when orcpt is non-empty
  std::string orcpt;        // xtext-decoded, as in Recipient::orcpt
  DsnAction action = DsnAction::kFailed;
  std::string status;       // RFC 3463 code, "5.1.1"; anything malformed becomes 5.0.0/4.0.0/2.0.0
  std::string remote_mta;   // host name of the remote MTA that answered; empty for local delivery
  std::string diagnostic;   // reply or reason text, e.g. "550 5.1.1 no such user" (capped, escaped);
                            // multi-line replies may be joined with CRLF: they become spaces
  std::int64_t last_attempt = 0;      // seconds since the epoch; 0 = omit Last-Attempt-Date
  std::int64_t will_retry_until = 0;  // kDelayed only; 0 = omit
};

struct DsnInput {
  std::string reporting_mta;   // our host name (Reporting-MTA: dns; ...)
  std::string queue_id;        // the original's queue id (X-Petrel-Queue-ID in the report)
  std::string postmaster;      // From: address of the DSN, e.g. "MAILER-DAEMON@mx.example.org"
  std::string message_id;      // "<...>" for the DSN's Message-ID: (empty: one made of now, queue id, host)
  std::int64_t now = 0;        // Date: of the DSN, seconds since the epoch (rendered in UTC)
  const Envelope* envelope = nullptr;  // original envelope: sender (To:), ENVID, RET, arrival
  // Whom the DSN goes to when that is not the original's sender: a double bounce (the
  // original is itself a bounce, from <>) goes to the postmaster. Null = the sender.
  Address to;
  std::vector<DsnRecipient> recipients;  // one per-recipient block each, in this order (at least one)
  // The original message as stored (CRLF, not dot-stuffed), or a prefix of it when the
  // caller read only part: `original_complete` says which.
  std::string_view original;
  bool original_complete = true;
  std::size_t max_original_bytes = 50 * 1024;  // message/rfc822 cap (like Postfix bounce_size_limit)
};

struct DsnMessage {
  std::string bytes;       // the complete message: headers, blank line, body; CRLF
  bool eight_bit = false;  // needs BODY=8BITMIME when queued
  bool smtputf8 = false;   // needs SMTPUTF8 (an internationalised address appears)
};

DsnMessage compose_dsn(const DsnInput& input);

}  // namespace petrel::mail
