// auth/account_store.h: the write side of the accounts store: domains, accounts (with their
// argon2id password hashes), aliases and catch-alls in <data_dir>/petrel.db (SQLite).
//
// Promise: every change is one IMMEDIATE transaction, so two stores (two `petrel` commands, or
// a command and the server) may write at once: the later waits up to busy_timeout (5 s)
// instead of failing. Names are validated before they are stored: addresses with
// mail::parse_address plus check_local_part() (no '%', '!', '@', '"', '/', whitespace), a
// user or alias only in a domain that exists, keys folded as address_key.h says. Passwords
// are never stored, only their argon2id hashes and, for SCRAM-SHA-256, salted keys (sasl.h:
// a fresh salt and kScramIterations each time a password is set) and, while CRAM-MD5 is
// enabled, its HMAC-MD5 key state (cram_md5_state.h), all three made from the password
// SASLprep'd (saslprep.h, RFC 4013) as a stored string; verify_password() prepares what the
// client typed the same way, as a query.
// Each account has a quota in bytes (0 = unlimited), stored here and carried by the Directory
// to delivery, where the Maildir applies it (mailbox/README.md, "Quota").
// Not done here: answering RCPT lookups (DirectoryImpl reads a snapshot of these tables),
// the SASL exchanges themselves (sasl.h), measuring or enforcing quotas, creating the data directory.
// Failure: a permanent error for what the caller asked wrongly (bad name, duplicate, missing
// domain, domain still in use); a temporary error for SQLite or argon2 trouble.
// Thread: one thread at a time per store; use a store per thread or process.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/password.h"
#include "auth/sasl.h"
#include "base/clock.h"
#include "base/result.h"

namespace petrel::auth {

namespace sqlite {
class Db;
}  // namespace sqlite

// The largest quota the store takes (INT64_MAX bytes, about 8 EiB: in practice unlimited).
inline constexpr std::uint64_t kMaxQuotaBytes = 0x7fffffffffffffffULL;

struct AccountStoreOptions {
  PasswordCost password_cost;          // for new hashes; verification reads each hash's own
  const base::Clock* clock = nullptr;  // created_at; null = the real clock
  // Also store the CRAM-MD5 key state with each new password (cram_md5_state.h). Off: the
  // column is cleared when a password is set, so turning CRAM-MD5 off and changing the
  // password leaves no MD5-crackable secret behind.
  bool cram_md5 = false;
  // The decoy hash (password.h) unknown users are checked against. Shared by every store of
  // the server (PooledStoreCredentials makes it once at start-up), so no store's first unknown
  // user pays for a hash on top of the verification. Null: the store makes its own on first
  // need (the CLI, which never checks passwords of unknown users in a hurry).
  std::shared_ptr<const std::string> decoy_hash;
};

struct DomainInfo {
  std::string name;       // lowercase
  std::string catch_all;  // target address, "" when none
};

struct AccountInfo {
  std::string address;  // the key: folded local part @ lowercase domain
  std::string local;
  std::string domain;
  std::uint64_t quota_bytes = 0;  // 0 = unlimited
  std::int64_t created_at = 0;    // seconds since the epoch
};

struct AliasInfo {
  std::string address;  // the key, as for accounts
  std::string target;   // any valid address, local or remote
};

// <data_dir>/petrel.db
std::string database_path(const std::string& data_dir);

class AccountStore {
 public:
  // Opens or creates the database (schema created on first open). The directory must exist.
  static base::Result<std::unique_ptr<AccountStore>> open(const std::string& db_path,
                                                          const AccountStoreOptions& options = {});
  ~AccountStore();
  AccountStore(const AccountStore&) = delete;
  AccountStore& operator=(const AccountStore&) = delete;

  // Domains. del_domain refuses a domain that still has accounts or aliases unless `force`,
  // which deletes them with it (mail on disk is left alone).
  base::Status add_domain(std::string_view domain);
  base::Status del_domain(std::string_view domain, bool force = false);
  base::Result<std::vector<DomainInfo>> list_domains();
  // Mail to an unknown local part of `domain` goes to `target`; an empty target removes it.
  base::Status set_catch_all(std::string_view domain, std::string_view target);

  // Accounts. The password must be 1..kMaxPasswordLength octets of UTF-8, before and after
  // SASLprep, and SASLprep must accept it (no control characters, no unassigned code points:
  // a permanent error says which rule). Blocking: argon2id runs here.
  // quota_bytes: 0 = unlimited; at most kMaxQuotaBytes (SQLite stores a signed 64-bit integer).
  base::Status add_user(std::string_view address, std::string_view password, std::uint64_t quota_bytes = 0);
  base::Status del_user(std::string_view address);
  base::Status set_password(std::string_view address, std::string_view password);
  // Sets the account's quota (0 = unlimited). A running server applies it from its next
  // Directory refresh on; mail already in the mailbox is kept even when it is now over.
  base::Status set_quota(std::string_view address, std::uint64_t quota_bytes);
  // Every account, or only those of `domain`, ordered by address.
  base::Result<std::vector<AccountInfo>> list_users(std::optional<std::string_view> domain = std::nullopt);

  // Aliases: `address` -> `target`; one address may have several targets. An alias may not
  // share its address with an account. del_alias without a target removes every target.
  base::Status add_alias(std::string_view address, std::string_view target);
  base::Status del_alias(std::string_view address, std::optional<std::string_view> target = std::nullopt);
  base::Result<std::vector<AliasInfo>> list_aliases(std::optional<std::string_view> domain = std::nullopt);

  // True when `address` is an account and `password` (as typed; SASLprep'd here as a query)
  // its password; false otherwise, including for a password SASLprep refuses and for unknown
  // or malformed addresses (which cost the same time as a wrong password, so the
  // answer's timing does not tell which accounts exist: one argon2id verification against the
  // decoy, options.decoy_hash or the store's own). For SASL; blocking, CPU-bound.
  base::Result<bool> verify_password(std::string_view address, std::string_view password);
  // The decoy in use: options.decoy_hash, else the store's own once made; null before.
  const std::string* decoy() const { return options_.decoy_hash ? options_.decoy_hash.get() : own_decoy_.get(); }
  // The account's SCRAM-SHA-256 stored keys; nullopt for an unknown or malformed address and
  // for an account whose password predates schema version 2. Blocking (SQLite), cheap.
  base::Result<std::optional<ScramKeys>> scram_sha256_keys(std::string_view address);
  // The account's CRAM-MD5 key state (32 octets); nullopt for an unknown or malformed address
  // and for a password set while CRAM-MD5 was off. Blocking (SQLite), cheap.
  base::Result<std::optional<std::string>> cram_md5_state(std::string_view address);

 private:
  AccountStore(std::unique_ptr<sqlite::Db> db, const AccountStoreOptions& options);
  std::int64_t now() const;
  base::Result<bool> domain_exists(const std::string& domain);
  base::Result<bool> account_exists(const std::string& key);
  base::Result<bool> alias_exists(const std::string& key);
  base::Result<std::string> prepare_new_password(std::string_view password) const;
  static base::Status check_quota(std::uint64_t quota_bytes);

  std::unique_ptr<sqlite::Db> db_;
  AccountStoreOptions options_;
  base::RealClock real_clock_;
  std::unique_ptr<const std::string> own_decoy_;  // when options_.decoy_hash is null; made on first need
};

}  // namespace petrel::auth
