// auth/sender_rights.h: which sender addresses an authenticated account may use (RFC 6409
// 6.1: a submission server may check that the sender is the one who authenticated).
//
// Promise: may_use(account, address) is true when the address is
//  - the account's own address (case-folded as address_key.h says),
//  - an address that delivers to that account: a subaddress of it ("alice+tag@"), an alias
//    whose expansion includes it, or a domain catch-all pointing at it (whoever receives the
//    replies owns the address), all as Directory::resolve() decides,
//  - granted in config ([auth.send_as]: "account" = ["addr@domain", "@whole.domain"]),
//  - or the null sender "<>" (bounces and receipts from a mail client carry no address).
// Anything else, including address literals not granted, is false.
// Not done here: reply codes (the SMTP server answers 553 5.7.1), parsing header fields.
// Thread: any; reads the Directory's snapshot only (never blocks).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "auth/directory.h"
#include "mail/address.h"

namespace petrel::auth {

class SenderRights {
 public:
  // `grants`: account -> addresses or "@domain" patterns, as written in config.
  SenderRights(const Directory& directory, const std::map<std::string, std::vector<std::string>>& grants);

  // `account`: the authentication identity as the client gave it (an address).
  bool may_use(std::string_view account, const mail::Address& address) const;

 private:
  const Directory& directory_;
  std::map<std::string, std::vector<std::string>> grants_;  // folded keys and patterns
};

}  // namespace petrel::auth
