// pooled_credentials.cc: a free list of AccountStores behind CredentialSource.
#include "auth/pooled_credentials.h"

namespace petrel::auth {

namespace {
// The options every pooled store gets: the caller's, with one decoy shared by all of them.
AccountStoreOptions with_decoy(AccountStoreOptions options) {
  if (!options.decoy_hash) {
    // Should this fail (no memory, no randomness), each store makes its own when it needs one
    // and reports the failure then.
    if (auto made = make_decoy_hash(options.password_cost)) {
      options.decoy_hash = std::make_shared<const std::string>(std::move(made).value());
    }
  }
  return options;
}
}  // namespace

PooledStoreCredentials::PooledStoreCredentials(std::string db_path, AccountStoreOptions options)
    : db_path_(std::move(db_path)), options_(with_decoy(std::move(options))) {}

PooledStoreCredentials::~PooledStoreCredentials() = default;

base::Result<std::unique_ptr<AccountStore>> PooledStoreCredentials::take() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto store = std::move(idle_.back());
      idle_.pop_back();
      return store;
    }
  }
  auto opened = AccountStore::open(db_path_, options_);
  if (!opened) return base::temporary_error("accounts store: " + opened.error().message);
  return std::move(opened).value();
}

void PooledStoreCredentials::give_back(std::unique_ptr<AccountStore> store) {
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(store));
}

template <typename F>
auto PooledStoreCredentials::with_store(F f) -> decltype(f(std::declval<AccountStore&>())) {
  auto store = take();
  if (!store) return store.error();
  auto result = f(**store);
  give_back(std::move(store).value());
  return result;
}

base::Result<bool> PooledStoreCredentials::verify_password(std::string_view authcid, std::string_view password) {
  return with_store([&](AccountStore& s) { return s.verify_password(authcid, password); });
}

base::Result<std::optional<ScramKeys>> PooledStoreCredentials::scram_sha256_keys(std::string_view authcid) {
  return with_store([&](AccountStore& s) { return s.scram_sha256_keys(authcid); });
}

base::Result<std::optional<std::string>> PooledStoreCredentials::cram_md5_state(std::string_view authcid) {
  return with_store([&](AccountStore& s) { return s.cram_md5_state(authcid); });
}

}  // namespace petrel::auth
