// auth/directory.h: the read side of the accounts store, as the SMTP server asks it at RCPT
// and as local delivery asks it for the final targets of a recipient.
//
// Promise: answers from an in-memory snapshot of domains, accounts and aliases, so a lookup
// never touches the disk and never blocks an event loop. The snapshot is replaced whole when
// refresh() sees that the database changed (e.g. `petrel user add` while the server runs).
// Thread: lookup(), serves_domain() and resolve() from any thread, concurrently; refresh() from
// one blocking-pool thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "auth/resolution.h"
#include "base/result.h"
#include "mail/address.h"

namespace petrel::auth {

enum class RecipientStatus {
  kLocal,         // an account, an alias, a subaddress of either, or a domain's catch-all
  kUnknownUser,   // a domain we serve, but nobody there by that name → 550 5.1.1
  kNotOurDomain,  // → relay rules apply
};

class Directory {
 public:
  virtual ~Directory() = default;
  // Is `address` something we deliver locally? Domain case-insensitive; local part case-folded
  // for lookup; "user+tag" tried as "user" when subaddressing is configured.
  virtual RecipientStatus lookup(const mail::Address& address) const = 0;
  virtual bool serves_domain(std::string_view domain) const = 0;
  // The delivery targets `recipient` stands for, by the rules of resolution.h: accounts,
  // aliases expanded, subaddresses, catch-alls, remote addresses; dangling parts as kFailed.
  // Synchronous, non-blocking (snapshot only). Errors are permanent: an unknown user (5.1.1), a
  // missing postmaster, an expansion too deep, too large or empty.
  virtual base::Result<Resolution> resolve(const mail::Address& recipient) const = 0;
  // Reloads the snapshot if the store changed since the last load. Blocking (SQLite).
  virtual base::Status refresh() = 0;
};

}  // namespace petrel::auth
