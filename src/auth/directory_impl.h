// auth/directory_impl.h: Directory over petrel.db: an immutable in-memory snapshot of the
// domains, account names with their quotas, aliases with their targets and catch-alls, replaced
// whole by refresh().
//
// The snapshot holds each account's quota, which resolve() puts in its kMailbox targets.
// Promise: lookup(), serves_domain() and resolve() read only the snapshot (one pointer copy under a
// mutex held for nothing else), so they never block on SQLite and see either the old or the
// new snapshot, never a mix. refresh() reloads only when `PRAGMA data_version` says another
// connection committed since the last load; the first call always loads. Password hashes are
// never read into memory here.
// resolve() follows the rules in resolution.h; its memory is bounded by kMaxTargets and by the
// size of the snapshot (each alias is expanded at most once per call).
// Not done here: writes (AccountStore), deciding relay policy for kNotOurDomain (smtp/policy).
// Failure: open() fails when the database cannot be opened; a failing refresh() keeps the
// previous snapshot and returns a temporary error.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth/directory.h"
#include "config/config.h"

namespace petrel::auth {

namespace sqlite {
class Db;
}  // namespace sqlite

class DirectoryImpl final : public Directory {
 public:
  // Opens its own connection to `db_path` (creating the schema if the file is new) and loads
  // the first snapshot.
  static base::Result<std::unique_ptr<DirectoryImpl>> open(const std::string& db_path,
                                                           const config::AccountsConfig& config);
  ~DirectoryImpl() override;

  RecipientStatus lookup(const mail::Address& address) const override;
  bool serves_domain(std::string_view domain) const override;
  base::Result<Resolution> resolve(const mail::Address& recipient) const override;
  base::Status refresh() override;

 private:
  struct Snapshot {
    std::unordered_set<std::string> domains;   // lowercase
    std::unordered_map<std::string, std::uint64_t> accounts;  // key (address_key.h) -> quota_bytes, 0 = unlimited
    // Alias key -> targets in the order they were added. A stored target that no longer parses
    // is kept with an empty domain, so resolution reports it instead of losing it silently.
    std::unordered_map<std::string, std::vector<mail::Address>> aliases;
    std::unordered_map<std::string, mail::Address> catch_all;  // domain -> target

    // An account or an alias has this key.
    bool names(const std::string& key) const { return accounts.contains(key) || aliases.contains(key); }
  };
  class Expansion;  // one resolve() call (directory_impl.cc)

  DirectoryImpl(std::unique_ptr<sqlite::Db> db, const config::AccountsConfig& config);
  std::shared_ptr<const Snapshot> snapshot() const;
  base::Result<std::shared_ptr<const Snapshot>> load();

  const std::string separator_;  // "" or one character

  std::mutex refresh_mutex_;  // one refresh at a time; guards db_ and data_version_
  std::unique_ptr<sqlite::Db> db_;
  std::int64_t data_version_ = -1;  // -1: never loaded

  mutable std::mutex snapshot_mutex_;  // held only to copy or swap the pointer
  std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace petrel::auth
