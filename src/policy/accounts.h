// policy/accounts.h: what the built-in checks ask about our accounts, as an interface policy
// owns so that it needs no sideways include of auth/ (both are L2); app/ adapts
// auth::Directory and auth::SenderRights to it.
//
// Promise (of an implementation): answers from memory (a snapshot), never blocking an event
// loop. Thread: any, concurrently.
#pragma once

#include <string_view>

#include "mail/address.h"

namespace petrel::policy {

class Accounts {
 public:
  enum class Recipient {
    kLocal,         // delivered here: an account, alias, subaddress, catch-all, postmaster
    kUnknownUser,   // a domain we serve, nobody there by that name
    kNotOurDomain,  // another domain or an address literal: relay rules apply
  };
  virtual ~Accounts() = default;
  virtual Recipient classify(const mail::Address& recipient) const = 0;
  // RFC 6409 6.1: may the authenticated `account` send as `address`? (auth/sender_rights.h)
  virtual bool may_use(std::string_view account, const mail::Address& address) const = 0;
};

}  // namespace petrel::policy
