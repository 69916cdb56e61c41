// auth/address_key.h: how the accounts store names things: the lookup key of an address and
// the rules a local part must pass before it may name an account or an alias.
//
// Promise: the store (writes) and the directory (reads) fold addresses the same way, here:
// domain lowercased (ASCII; RFC 5321 2.4 makes domains case-insensitive) and local part
// case-folded (ASCII letters only; UTF-8 octets are kept as they are). RFC 5321 2.4 lets the
// local part be case-sensitive, but every mainstream server folds it, and users expect
// "Alice@" and "alice@" to be one mailbox.
// Not done here: parsing (mail::parse_address) or any I/O.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "mail/address.h"

namespace petrel::auth {

// "Alice" -> "alice"; ASCII only.
std::string fold_local(std::string_view local);

// fold_local(local) + "@" + lowercased domain. Postmaster with no domain keys as "postmaster".
std::string address_key(const mail::Address& address);

// The key an authentication identity is counted and locked out under (auth_limiter.h), and
// the account it names when it names one: for any text mail::parse_address accepts,
// address_key() of what it parses to, so every spelling that reaches one account, quoted or
// escaped local parts ("\"bob\"@x", "\"b\\ob\"@x") and case variants alike, has that
// account's key. Any other text cannot name an account; it is keyed lowercased (ASCII). No
// lookup: names that have no account get keys too. At most kMaxLoginKey octets.
inline constexpr std::size_t kMaxLoginKey = 255;
std::string login_key(std::string_view authcid);

// An account's or alias's local part must be an RFC 5321 Dot-string (atoms of atext joined by
// single dots: no quotes, no whitespace, no '@', no leading, trailing or doubled dot) and must
// not contain '%' or '!' (source routing: an open-relay vector, RFC 5321 3.6.1 and 7.9) or
// '/' (unsafe as a Maildir name). UTF-8 octets are allowed. A permanent error names the reason.
base::Status check_local_part(std::string_view local);

// Parses `text` as a bare address for an account or alias: mail::parse_address, no address
// literal, and check_local_part. The domain is returned lowercased.
base::Result<mail::Address> parse_mailbox_address(std::string_view text);

// A domain we may serve: RFC 5321 Domain (no address literal), returned lowercased. ASCII
// only: an internationalized domain is added in its A-label form ("xn--..."); mapping U-labels
// to it is not done yet.
base::Result<std::string> parse_domain(std::string_view text);

}  // namespace petrel::auth
