// auth/password.h: password hashing with argon2id (RFC 9106), stored as the PHC-style encoded
// string "$argon2id$v=19$m=32768,t=3,p=1$salt$hash" so each hash carries its own parameters.
//
// Promise: hash_password() uses a fresh 16-byte salt from the OS CSPRNG (OpenSSL RAND_bytes)
// for every call; verify_password_hash() compares in constant time (libargon2) and works for
// any cost a stored hash was made with, so the cost can be raised without a migration.
// decoy_password_hash() gives the hash that unknown users are checked against: one per process
// and cost, made once however many threads and stores ask, so an unknown user costs exactly one
// verification, as a known user with a wrong password does (the first check on a new store
// does not also pay for a hash).
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

// The decoy: the argon2id hash of a fixed password, made with `cost` (the cost new hashes get)
// the first time a cost is asked for and kept for the life of the process. Concurrent first
// callers wait for the one hash being made. Never null on success; the string is never freed.
// Thread: any. Blocking (one hash, only on the first call per cost); a failure is not kept,
// the next call tries again.
base::Result<const std::string*> decoy_password_hash(const PasswordCost& cost);

// How many argon2id hashes and verifications this process has run so far, so that a test can
// check what an operation costs without timing it. Thread: any (relaxed counters).
struct PasswordWork {
  std::uint64_t hashes = 0;
  std::uint64_t verifications = 0;
};
PasswordWork password_work_so_far();

}  // namespace petrel::auth
