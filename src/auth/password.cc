// password.cc: argon2id over libargon2, salts from OpenSSL.
#include "auth/password.h"

#include <argon2.h>
#include <openssl/rand.h>

#include <array>

namespace petrel::auth {
namespace {
constexpr std::size_t kSaltLength = 16;
constexpr std::size_t kHashLength = 32;

// What the decoy hashes; any fixed text would do.
constexpr std::string_view kDecoyPassword = "petrel-decoy-password";
}  // namespace

base::Result<std::string> hash_password(std::string_view password, const PasswordCost& cost) {
  if (password.size() > kMaxPasswordLength) return base::permanent_error("password too long");
  std::array<unsigned char, kSaltLength> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    return base::temporary_error("cannot draw a random salt");
  }
  std::string encoded(argon2_encodedlen(cost.time, cost.memory_kib, cost.parallelism, kSaltLength, kHashLength,
                                        Argon2_id),
                      '\0');
  int rc = argon2id_hash_encoded(cost.time, cost.memory_kib, cost.parallelism, password.data(), password.size(),
                                 salt.data(), salt.size(), kHashLength, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return base::temporary_error(std::string("argon2id: ") + argon2_error_message(rc));
  // argon2_encodedlen counts the terminator and is an upper bound.
  if (auto end = encoded.find('\0'); end != std::string::npos) encoded.resize(end);
  return encoded;
}

base::Result<bool> verify_password_hash(const std::string& encoded, std::string_view password) {
  if (password.size() > kMaxPasswordLength) return false;
  if (encoded.rfind("$argon2id$", 0) != 0) return base::permanent_error("stored password hash is not argon2id");
  int rc = argon2id_verify(encoded.c_str(), password.data(), password.size());
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  return base::temporary_error(std::string("argon2id verify: ") + argon2_error_message(rc));
}

base::Result<std::string> make_decoy_hash(const PasswordCost& cost) { return hash_password(kDecoyPassword, cost); }

}  // namespace petrel::auth
