// auth/sasl_crypto.h: the few OpenSSL primitives the SASL mechanisms use, over std::string.
// Internal to auth/ (sasl*.cc, account_store.cc).
//
// Promise: HMAC via EVP_MAC, digests via EVP_Digest, PBKDF2 via PKCS5_PBKDF2_HMAC, randomness
// via RAND_bytes, comparison via CRYPTO_memcmp (constant time for equal lengths).
// Failure: nullopt/false when OpenSSL fails (out of memory); callers treat it as temporary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace petrel::auth::crypto {

std::optional<std::string> hmac(const char* digest, std::string_view key, std::string_view data);
std::optional<std::string> digest(const char* name, std::string_view data);
std::optional<std::string> pbkdf2_sha256(std::string_view password, std::string_view salt, std::uint32_t iterations);
std::optional<std::string> random_bytes(std::size_t n);
// Constant time for equal sizes; different sizes are unequal (the size is not secret).
bool equal(std::string_view a, std::string_view b);
std::string to_hex(std::string_view octets);

}  // namespace petrel::auth::crypto
