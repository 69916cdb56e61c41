// auth/gated_credentials.h: a CredentialSource that skips the password check for account
// names the AuthLimiter has locked out.
//
// Why: a locked name is refused whatever the password (LoginGuard, login_guard.h), so
// checking the password would only burn argon2id CPU for attackers who spread their guesses
// over many addresses (DEPENDENCIES.md: AUTH must not become a CPU amplifier). Skipping it
// reveals nothing the 454 does not already say, and the lockout covers names that do not exist
// as well as names that do.
// Thread: as the inner source and the limiter (both thread-safe in the server).
#pragma once

#include "auth/auth_limiter.h"
#include "auth/sasl.h"

namespace petrel::auth {

class GatedCredentials final : public CredentialSource {
 public:
  GatedCredentials(CredentialSource& inner, AuthLimiter& limiter) : inner_(inner), limiter_(limiter) {}

  base::Result<bool> verify_password(std::string_view authcid, std::string_view password) override {
    if (limiter_.account_locked(authcid)) return false;
    return inner_.verify_password(authcid, password);
  }
  base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view authcid) override {
    return inner_.scram_sha256_keys(authcid);  // cheap: a lookup, no key stretching
  }
  base::Result<std::optional<std::string>> cram_md5_state(std::string_view authcid) override {
    return inner_.cram_md5_state(authcid);  // cheap
  }

 private:
  CredentialSource& inner_;
  AuthLimiter& limiter_;
};

}  // namespace petrel::auth
