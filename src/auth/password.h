// auth/password.h: password hashing with argon2id (RFC 9106), stored as the PHC-style encoded
// string "$argon2id$v=19$m=32768,t=3,p=1$salt$hash" so each hash carries its own parameters.
//
// Promise: hash_password() uses a fresh 16-byte salt from the OS CSPRNG (OpenSSL RAND_bytes)
// for every call; verify_password_hash() compares in constant time (libargon2) and works for
// any cost a stored hash was made with, so the cost can be raised without a migration.
// make_decoy_hash() makes the hash unknown users are checked against (account_store.h), so
// that an unknown user costs one verification, as a known user with a wrong password does.
// Not done here: rate limiting (the SASL layer's job) and running off the event loop: these
// functions are CPU-bound (about a quarter second at the default cost) and must run on the
// blocking pool.
// Failure: a temporary error when the salt cannot be drawn or argon2 fails (memory).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace petrel::auth {

struct PasswordCost {
  std::uint32_t time = 3;         // passes (t)
  std::uint32_t memory_kib = 32768;  // m: 32 MiB
  std::uint32_t parallelism = 1;  // lanes (p)
};

// The cheapest cost libargon2 accepts; for unit tests only.
inline constexpr PasswordCost kTestPasswordCost{1, 8, 1};

// Longest password accepted, in octets; longer input is refused before hashing.
inline constexpr std::size_t kMaxPasswordLength = 1024;

base::Result<std::string> hash_password(std::string_view password, const PasswordCost& cost);

// True on a match, false on a mismatch; an error when `encoded` is not an argon2id hash.
base::Result<bool> verify_password_hash(const std::string& encoded, std::string_view password);

// The decoy: an argon2id hash of a fixed text at `cost` (the cost new hashes get), made
// fresh. Blocking, like hash_password(). No password opens an account through it: it is only
// ever checked for an address that has no account, and that check always answers no.
base::Result<std::string> make_decoy_hash(const PasswordCost& cost);

}  // namespace petrel::auth
