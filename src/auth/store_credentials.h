// auth/store_credentials.h: the accounts store as the SASL mechanisms' CredentialSource.
//
// Promise: PLAIN and LOGIN are checked against the argon2id hash (AccountStore::verify_password,
// unknown users at the same cost); SCRAM-SHA-256 reads the stored keys; CRAM-MD5 the stored
// HMAC-MD5 key state (kept only for passwords set while CRAM-MD5 was enabled; without it the
// attempt fails as a wrong password would).
// Thread: as the AccountStore: one thread at a time (one source per blocking-pool thread).
#pragma once

#include "auth/account_store.h"
#include "auth/sasl.h"

namespace petrel::auth {

class StoreCredentialSource final : public CredentialSource {
 public:
  explicit StoreCredentialSource(AccountStore& store) : store_(store) {}
  base::Result<bool> verify_password(std::string_view authcid, std::string_view password) override {
    return store_.verify_password(authcid, password);
  }
  base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view authcid) override {
    return store_.scram_sha256_keys(authcid);
  }
  base::Result<std::optional<std::string>> cram_md5_state(std::string_view authcid) override {
    return store_.cram_md5_state(authcid);
  }

 private:
  AccountStore& store_;
};

}  // namespace petrel::auth
