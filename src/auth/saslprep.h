// auth/saslprep.h: SASLprep (RFC 4013), the stringprep (RFC 3454) profile that SASL
// mechanisms apply to passwords before comparing or hashing them, so that one password has
// one form whatever way the user's keyboard or input method spelled it.
//
// Promise: prepare_password() maps (RFC 4013 2.1: non-ASCII spaces to U+0020, "commonly
// mapped to nothing" characters such as U+00AD SOFT HYPHEN removed), normalises with Unicode
// NFKC (2.2: U+2168 ROMAN NUMERAL NINE becomes "IX", U+00AA becomes "a"), and refuses
// prohibited output (2.3: control characters such as U+0007, non-ASCII spaces left over,
// private use, surrogates, ...) and bidirectional strings that break RFC 3454 6 (2.4).
// Printable ASCII (U+0020..U+007E) comes out unchanged: hashes and SCRAM keys made before
// SASLprep was applied still match for such passwords (see account_store.h).
// Case is kept: "USER" stays "USER" (SASLprep has no case folding).
// The work is libidn's (stringprep_profile(..., "SASLprep", ...)); nothing is normalised here.
// Stored vs query (RFC 3454 7): a password being set is a "stored string", in which
// unassigned code points (of Unicode 3.2) are refused; a password being checked is a
// "query", in which they are allowed and kept.
// Not done here: user names. An authentication identity is an address, looked up with the
// store's folding (address_key.h); local parts are keyed as octets, not NFKC.
// Failure: a permanent error naming the rule broken (never the password itself) for invalid
// UTF-8, prohibited or (stored) unassigned output, a bidi violation, or an empty result;
// a temporary error only when libidn runs out of memory.
// Thread: any (libidn's stringprep is reentrant).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace petrel::auth {

enum class PrepMode {
  kQuery,   // checking what a client typed: unassigned code points allowed
  kStored,  // setting a password: unassigned code points refused
};

// SASLprep(password) as UTF-8.
base::Result<std::string> prepare_password(std::string_view password, PrepMode mode);

}  // namespace petrel::auth
