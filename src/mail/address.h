// mail/address.h: mailbox addresses as SMTP carries them (RFC 5321 4.1.2, RFC 6531 3.3).
//
// Promise: parse_path() accepts exactly the RFC 5321 Path / Reverse-path grammar (with the
// RFC 6531 UTF-8 extensions only when asked), rejects everything else, and never guesses: no
// '%' or '!' routing, no second '@', no bare addresses without angle brackets unless allowed.
// A source route ("@a,@b:u@d") is accepted and dropped as RFC 5321 4.1.1.3 and C say.
// Bounds: a path longer than 256 octets, a local part over 64 or a domain over 255 octets is
// rejected (RFC 5321 4.5.3.1).
// '%' and '!' are ordinary atext characters of the local part, nothing more: "<u%ext@local>"
// is the local user "u%ext" and "<ext!u@local>" the local user "ext!u" (the server then finds
// no such user). A quoted '@' belongs to the local part ("<\"u@ext\"@local>" is "u@ext" at
// local); a second '@' outside quotes is a syntax error; "<@local:u@ext>" is u@ext.
// Refused as syntax: an empty local part (also ""), leading/trailing/doubled dots, spaces or
// controls outside quotes, NUL anywhere, and General-address-literals ("[tag:content]").
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace petrel::mail {

struct Address {
  std::string local;   // unquoted form: "a b" for "\"a b\"@x"; may contain any printable octet
  std::string domain;  // as written; an address literal keeps its brackets: "[192.0.2.1]"

  bool null() const { return local.empty() && domain.empty(); }  // the "<>" reverse path
  bool is_address_literal() const { return !domain.empty() && domain.front() == '['; }
  // local@domain with the local part quoted when it is not a Dot-string; "" for the null path.
  std::string str() const;
  // Lowercased domain (ASCII only) for lookups; the local part is left as is.
  std::string domain_key() const;
  bool has_utf8() const;  // any octet >= 0x80
  bool operator==(const Address&) const = default;
};

struct PathOptions {
  bool allow_null = false;        // MAIL FROM:<>
  bool allow_postmaster = false;  // RCPT TO:<Postmaster> (RFC 5321 4.5.1)
  bool allow_utf8 = false;        // SMTPUTF8 was given on MAIL (RFC 6531 3.3)
};

enum class PathError {
  kSyntax,        // 501 5.1.3 / 5.1.7
  kTooLong,       // 501 5.1.3
  kUtf8NotAllowed,  // 553 5.6.7 (RFC 6531 3.5)
  kBadUtf8,       // 501 5.6.7
};

struct PathParse {
  Address address;
  std::size_t consumed = 0;  // octets of `text` used, up to and including '>'
};

// Parses "<...>" at the start of `text`; what follows is not looked at.
// On success the address is the mailbox with any source route dropped; "<>" (allow_null) gives
// the null Address and "<Postmaster>" in any case (allow_postmaster) gives
// Address{"Postmaster", ""}. On failure the Error is permanent and *why (when given) says
// which of PathError applies: syntax first, then UTF-8, then length.
base::Result<PathParse> parse_path(std::string_view text, const PathOptions& options, PathError* why = nullptr);

// Parses a bare "local@domain" (config, CLI, aliases): the same grammar without brackets or
// routes. UTF-8 is allowed when valid.
base::Result<Address> parse_address(std::string_view text);

// RFC 5321 4.1.2 Domain or address-literal; RFC 6531 U-label octets when allow_utf8.
bool is_valid_domain(std::string_view domain, bool allow_utf8);

}  // namespace petrel::mail
