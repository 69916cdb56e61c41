// auth/pooled_credentials.h: the accounts store as a CredentialSource that every thread of a
// blocking pool may call at once.
//
// Promise: each call borrows an AccountStore (its own SQLite connection) from a free list,
// opening one when none is free, and gives it back afterwards; so there are never more
// connections than concurrent callers, and at most kMaxIdle are kept open between calls.
// Results are those of StoreCredentialSource (store_credentials.h). The constructor makes one
// decoy hash (password.h) that every store of the pool shares (AccountStoreOptions::decoy_hash),
// so no SASL exchange, not even the first unknown user after start, pays for a hash on top of
// its one verification.
// Failure: a store that cannot be opened is a temporary error (SASL answers 454 4.7.0).
// Thread: any thread, concurrently. Blocking (argon2id, SQLite): never on an event loop.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/account_store.h"
#include "auth/sasl.h"

namespace petrel::auth {

class PooledStoreCredentials final : public CredentialSource {
 public:
  static constexpr std::size_t kMaxIdle = 8;

  // Blocking: one argon2id hash at options.password_cost (the decoy), unless options has one.
  PooledStoreCredentials(std::string db_path, AccountStoreOptions options);
  // The decoy every store of this pool checks unknown users against (null only if it could
  // not be made).
  const std::string* decoy() const { return options_.decoy_hash.get(); }
  ~PooledStoreCredentials() override;

  base::Result<bool> verify_password(std::string_view authcid, std::string_view password) override;
  base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view authcid) override;
  base::Result<std::optional<std::string>> cram_md5_state(std::string_view authcid) override;

 private:
  base::Result<std::unique_ptr<AccountStore>> take();
  void give_back(std::unique_ptr<AccountStore> store);
  template <typename F>
  auto with_store(F f) -> decltype(f(std::declval<AccountStore&>()));

  const std::string db_path_;
  const AccountStoreOptions options_;
  std::mutex mu_;  // guards idle_; held only to move a pointer
  std::vector<std::unique_ptr<AccountStore>> idle_;
};

}  // namespace petrel::auth
