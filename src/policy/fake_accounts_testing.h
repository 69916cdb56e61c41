// policy/fake_accounts_testing.h: Accounts from two small tables, for the checks' tests.
#pragma once

#include <map>
#include <set>
#include <string>

#include "policy/accounts.h"

namespace petrel::policy {

class FakeAccounts final : public Accounts {
 public:
  std::set<std::string> domains;                    // served, lowercase
  std::set<std::string> users;                      // "alice@example.test"
  std::map<std::string, std::set<std::string>> owns;  // account -> addresses it may use

  Recipient classify(const mail::Address& r) const override {
    if (r.is_address_literal() || !domains.contains(r.domain_key())) return Recipient::kNotOurDomain;
    return users.contains(r.local + "@" + r.domain_key()) ? Recipient::kLocal : Recipient::kUnknownUser;
  }
  bool may_use(std::string_view account, const mail::Address& a) const override {
    auto it = owns.find(std::string(account));
    return a.null() || (it != owns.end() && it->second.contains(a.str()));
  }
};

}  // namespace petrel::policy
