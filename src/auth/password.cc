// password.cc: argon2id over libargon2, salts from OpenSSL.
#include "auth/password.h"

#include <argon2.h>
#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace petrel::auth {
namespace {
constexpr std::size_t kSaltLength = 16;
constexpr std::size_t kHashLength = 32;

// What the decoy hashes; any fixed text would do, nobody can log in with it (no account has
// the decoy as its hash).
constexpr std::string_view kDecoyPassword = "petrel-decoy-password";

std::atomic<std::uint64_t> hashes_run{0};
std::atomic<std::uint64_t> verifications_run{0};

// The decoys made so far, one per cost (in practice one: the configured cost). Entries are
// never removed and each string has its own allocation, so pointers handed out stay valid.
struct Decoys {
  std::mutex mu;  // held while a decoy is made, so concurrent first callers make only one
  std::vector<std::pair<PasswordCost, std::unique_ptr<const std::string>>> made;
};

Decoys& decoys() {
  static Decoys* const all = new Decoys;  // never destroyed: pool threads may ask until exit
  return *all;
}

bool same_cost(const PasswordCost& a, const PasswordCost& b) {
  return a.time == b.time && a.memory_kib == b.memory_kib && a.parallelism == b.parallelism;
}
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
  hashes_run.fetch_add(1, std::memory_order_relaxed);
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
  verifications_run.fetch_add(1, std::memory_order_relaxed);
  int rc = argon2id_verify(encoded.c_str(), password.data(), password.size());
  if (rc == ARGON2_OK) return true;
  if (rc == ARGON2_VERIFY_MISMATCH) return false;
  return base::temporary_error(std::string("argon2id verify: ") + argon2_error_message(rc));
}

base::Result<const std::string*> decoy_password_hash(const PasswordCost& cost) {
  Decoys& all = decoys();
  std::lock_guard lock(all.mu);
  for (const auto& [made_cost, hash] : all.made) {
    if (same_cost(made_cost, cost)) return hash.get();
  }
  auto hash = hash_password(kDecoyPassword, cost);
  if (!hash) return hash.error();
  all.made.emplace_back(cost, std::make_unique<const std::string>(std::move(hash).value()));
  return all.made.back().second.get();
}

PasswordWork password_work_so_far() {
  return PasswordWork{hashes_run.load(std::memory_order_relaxed), verifications_run.load(std::memory_order_relaxed)};
}

}  // namespace petrel::auth
