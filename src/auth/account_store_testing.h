// auth/account_store_testing.h: an accounts store with some content, for unit tests.
// Test-only; included by the auth unit tests.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "auth/account_store.h"
#include "auth/temp_dir_testing.h"

namespace petrel::auth {

// Opens the store in `dir` with `options` at kTestPasswordCost, then adds `domains` and the
// `users` (address, password). The first failure is returned.
inline base::Result<std::unique_ptr<AccountStore>> open_test_store(
    const TempDir& dir, std::initializer_list<std::string> domains,
    std::initializer_list<std::pair<std::string, std::string>> users, AccountStoreOptions options = {}) {
  options.password_cost = kTestPasswordCost;
  auto store = AccountStore::open(dir.db(), options);
  if (!store) return store;
  for (const auto& domain : domains) {
    if (auto s = (*store)->add_domain(domain); !s) return s.error();
  }
  for (const auto& [address, password] : users) {
    if (auto s = (*store)->add_user(address, password); !s) return s.error();
  }
  return store;
}

}  // namespace petrel::auth
