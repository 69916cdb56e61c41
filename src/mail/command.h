// mail/command.h: parsing one SMTP command line and the MAIL/RCPT arguments
// (RFC 5321 4.1.1, RFC 1870, RFC 6152, RFC 6531, RFC 3461, RFC 3030).
//
// Promise: total functions over arbitrary bytes; a failure is a ready-to-send Reply with the
// RFC's code (501 syntax, 555 unknown/bad parameter, 553 for SMTPUTF8 misuse, 552 over SIZE),
// never a guess. Parameters are recognised only when the matching extension is enabled.
// Bounds: a line is at most what the caller read (the server caps it at 512 octets).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mail/envelope.h"
#include "mail/reply.h"

namespace petrel::mail {

enum class Verb {
  kUnknown, kHelo, kEhlo, kMail, kRcpt, kData, kBdat, kRset, kNoop, kQuit, kVrfy, kExpn, kHelp,
  kStartTls, kAuth,
};

struct CommandLine {
  Verb verb = Verb::kUnknown;
  std::string_view verb_text;  // as sent, for the log
  std::string_view args;       // after the verb and one space; trailing spaces removed
};

// Splits "VERB args" (line without CRLF). Verbs are case-insensitive. "MAIL FROM:" and
// "RCPT TO:" are recognised by their first word; the rest stays in args ("FROM:<a> SIZE=1").
CommandLine split_command(std::string_view line);

struct Extensions {  // what the server advertised and so accepts on MAIL/RCPT
  bool size = true;
  bool eight_bit_mime = true;
  bool smtputf8 = true;
  bool dsn = true;
  bool auth = false;           // AUTH advertised: MAIL accepts (and ignores) AUTH= (RFC 4954 5)
  std::uint64_t max_size = 0;  // 0 = no limit
};

struct MailFrom {
  Address sender;
  std::uint64_t size = 0;
  BodyType body = BodyType::kUnspecified;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::kUnspecified;
  std::string envid;  // decoded
};

struct RcptTo {
  Recipient recipient;
  bool postmaster = false;  // "<Postmaster>" with no domain
};

// Each parser returns nullopt and fills `out` on success; on failure `out` is left untouched.
// args is CommandLine::args of a MAIL command, i.e. "FROM:<path> [params]".
std::optional<Reply> parse_mail_from(std::string_view args, const Extensions& ext, MailFrom& out);
// args of RCPT, "TO:<path> [params]". utf8 = SMTPUTF8 was given on MAIL.
std::optional<Reply> parse_rcpt_to(std::string_view args, const Extensions& ext, bool utf8, RcptTo& out);
// args of BDAT, "SIZE [LAST]". chunk_size gets the size.
std::optional<Reply> parse_bdat(std::string_view args, std::uint64_t& chunk_size, bool& last);

// xtext (RFC 3461 4): decodes "+2B" escapes; nullopt when malformed.
std::optional<std::string> xtext_decode(std::string_view text);
std::string xtext_encode(std::string_view text);

// Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text);

}  // namespace petrel::mail
