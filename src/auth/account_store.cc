// account_store.cc: domains, accounts, aliases and catch-alls over petrel.db.
#include "auth/account_store.h"

#include "auth/address_key.h"
#include "auth/cram_md5_state.h"
#include "auth/saslprep.h"
#include "auth/sqlite_db.h"
#include "base/strings.h"

namespace petrel::auth {
namespace {

using sqlite::Step;
using sqlite::WriteTransaction;

base::Error refused(std::string message) { return base::permanent_error(std::move(message)); }

// An alias or catch-all target: any valid address, local or remote, stored with its domain
// lowercased and its local part as written (a remote server may treat case as significant).
base::Result<std::string> parse_target(std::string_view text) {
  auto parsed = mail::parse_address(text);
  if (!parsed) return refused("invalid target '" + base::log_escape(text) + "': " + parsed.error().message);
  if (parsed->domain.empty()) return refused("invalid target '" + base::log_escape(text) + "': no domain");
  mail::Address target{parsed->local, parsed->domain_key()};
  return target.str();
}

// Runs a statement expected to yield one row or none.
base::Result<bool> has_row(sqlite::Db& db, std::string_view sql, const std::string& value) {
  auto stmt = db.prepare(sql);
  if (!stmt) return stmt.error();
  stmt->bind(1, value);
  auto row = stmt->step();
  if (!row) return row.error();
  return *row == Step::kRow;
}

// Binds salt, iterations, StoredKey, ServerKey to parameters first..first+3 (base64 text).
void bind_scram(sqlite::Stmt& stmt, int first, const ScramKeys& keys) {
  stmt.bind(first, base64_encode(keys.salt)).bind(first + 1, static_cast<std::int64_t>(keys.iterations));
  stmt.bind(first + 2, base64_encode(keys.stored_key)).bind(first + 3, base64_encode(keys.server_key));
}

// The CRAM-MD5 column for a new password: its key state (base64) when enabled, else NULL.
void bind_cram(sqlite::Stmt& stmt, int index, bool enabled, std::string_view password) {
  if (enabled) stmt.bind(index, base64_encode(cram_md5_key_state(password)));
  else stmt.bind_null(index);
}

}  // namespace

std::string database_path(const std::string& data_dir) { return data_dir + "/petrel.db"; }

base::Result<std::unique_ptr<AccountStore>> AccountStore::open(const std::string& db_path,
                                                               const AccountStoreOptions& options) {
  auto db = sqlite::Db::open(db_path);
  if (!db) return db.error();
  return std::unique_ptr<AccountStore>(
      new AccountStore(std::make_unique<sqlite::Db>(std::move(db).value()), options));
}

AccountStore::AccountStore(std::unique_ptr<sqlite::Db> db, const AccountStoreOptions& options)
    : db_(std::move(db)), options_(options) {}

AccountStore::~AccountStore() = default;

std::int64_t AccountStore::now() const {
  const base::Clock& clock = options_.clock != nullptr ? *options_.clock : real_clock_;
  return std::chrono::duration_cast<std::chrono::seconds>(clock.wall().time_since_epoch()).count();
}

base::Result<bool> AccountStore::domain_exists(const std::string& domain) {
  return has_row(*db_, "SELECT 1 FROM domains WHERE name = ?1", domain);
}

base::Result<bool> AccountStore::account_exists(const std::string& key) {
  return has_row(*db_, "SELECT 1 FROM accounts WHERE address = ?1", key);
}

base::Result<bool> AccountStore::alias_exists(const std::string& key) {
  return has_row(*db_, "SELECT 1 FROM aliases WHERE address = ?1 LIMIT 1", key);
}

// A new password as it is kept: SASLprep'd as a stored string (saslprep.h; RFC 5802 2.2 for
// SCRAM, RFC 4616 for PLAIN), so that every spelling the client may type of it (and SASLprep
// in turn) matches the argon2id hash, the SCRAM keys and the CRAM-MD5 state alike.
base::Result<std::string> AccountStore::prepare_new_password(std::string_view password) const {
  if (password.empty()) return refused("empty password");
  if (password.size() > kMaxPasswordLength) return refused("password longer than 1024 octets");
  auto prepared = prepare_password(password, PrepMode::kStored);
  if (!prepared) {
    if (prepared.error().temporary()) return prepared.error();
    return refused("password refused: " + prepared.error().message);
  }
  // NFKC may lengthen it (one code point can become several).
  if (prepared->size() > kMaxPasswordLength) return refused("password longer than 1024 octets once prepared");
  return prepared;
}

base::Status AccountStore::check_quota(std::uint64_t quota_bytes) {
  if (quota_bytes > kMaxQuotaBytes) return refused("quota larger than " + std::to_string(kMaxQuotaBytes) + " bytes");
  return {};
}

// ---- domains ----

base::Status AccountStore::add_domain(std::string_view text) {
  auto domain = parse_domain(text);
  if (!domain) return domain.error();
  auto stmt = db_->prepare("INSERT INTO domains (name, catch_all, created_at) VALUES (?1, NULL, ?2)");
  if (!stmt) return stmt.error();
  stmt->bind(1, *domain).bind(2, now());
  auto done = stmt->step();
  if (!done) return done.error();
  if (*done == Step::kConstraint) return refused("domain " + *domain + " already exists");
  return {};
}

base::Status AccountStore::del_domain(std::string_view text, bool force) {
  auto domain = parse_domain(text);
  if (!domain) return domain.error();
  auto txn = WriteTransaction::begin(*db_);
  if (!txn) return txn.error();

  // Refuse to drop mailboxes by accident: the accounts and aliases would go with the domain
  // (ON DELETE CASCADE), so ask for --force when there are any.
  if (!force) {
    auto users = has_row(*db_, "SELECT 1 FROM accounts WHERE domain = ?1 LIMIT 1", *domain);
    if (!users) return users.error();
    auto aliases = has_row(*db_, "SELECT 1 FROM aliases WHERE domain = ?1 LIMIT 1", *domain);
    if (!aliases) return aliases.error();
    if (*users || *aliases) return refused("domain " + *domain + " still has accounts or aliases (use --force)");
  }
  auto stmt = db_->prepare("DELETE FROM domains WHERE name = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, *domain);
  if (auto s = stmt->run(); !s) return s;
  if (db_->changes() == 0) return refused("no such domain: " + *domain);
  return txn->commit();
}

base::Result<std::vector<DomainInfo>> AccountStore::list_domains() {
  auto stmt = db_->prepare("SELECT name, catch_all FROM domains ORDER BY name");
  if (!stmt) return stmt.error();
  std::vector<DomainInfo> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (*row != Step::kRow) break;
    out.push_back(DomainInfo{stmt->text(0), stmt->text(1)});
  }
  return out;
}

base::Status AccountStore::set_catch_all(std::string_view text, std::string_view target_text) {
  auto domain = parse_domain(text);
  if (!domain) return domain.error();
  auto stmt = db_->prepare("UPDATE domains SET catch_all = ?2 WHERE name = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, *domain);
  if (target_text.empty()) {
    stmt->bind_null(2);
  } else {
    auto target = parse_target(target_text);
    if (!target) return target.error();
    stmt->bind(2, *target);
  }
  if (auto s = stmt->run(); !s) return s;
  if (db_->changes() == 0) return refused("no such domain: " + *domain);
  return {};
}

// ---- accounts ----

base::Status AccountStore::add_user(std::string_view text, std::string_view password, std::uint64_t quota_bytes) {
  auto address = parse_mailbox_address(text);
  if (!address) return address.error();
  auto prepared = prepare_new_password(password);
  if (!prepared) return prepared.error();
  if (auto s = check_quota(quota_bytes); !s) return s;
  const std::string key = address_key(*address);

  // Cheap checks before the expensive hash, so a typo fails at once; they are repeated under
  // the write lock below, where they count.
  auto domain_ok = domain_exists(address->domain);
  if (!domain_ok) return domain_ok.error();
  if (!*domain_ok) return refused("no such domain: " + address->domain + " (add it first)");
  auto hash = hash_password(*prepared, options_.password_cost);
  if (!hash) return hash.error();
  auto scram = new_scram_keys(*prepared);
  if (!scram) return scram.error();

  auto txn = WriteTransaction::begin(*db_);
  if (!txn) return txn.error();
  domain_ok = domain_exists(address->domain);
  if (!domain_ok) return domain_ok.error();
  if (!*domain_ok) return refused("no such domain: " + address->domain + " (add it first)");
  auto is_alias = alias_exists(key);
  if (!is_alias) return is_alias.error();
  if (*is_alias) return refused(key + " is an alias; delete the alias first");

  auto stmt = db_->prepare(
      "INSERT INTO accounts (address, local, domain, password_hash, quota_bytes, created_at, "
      "scram_salt, scram_iterations, scram_stored_key, scram_server_key, cram_md5_state) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  if (!stmt) return stmt.error();
  stmt->bind(1, key).bind(2, fold_local(address->local)).bind(3, address->domain).bind(4, *hash);
  stmt->bind(5, static_cast<std::int64_t>(quota_bytes)).bind(6, now());
  bind_scram(*stmt, 7, *scram);
  bind_cram(*stmt, 11, options_.cram_md5, *prepared);
  auto done = stmt->step();
  if (!done) return done.error();
  if (*done == Step::kConstraint) return refused("account " + key + " already exists");
  return txn->commit();
}

base::Status AccountStore::del_user(std::string_view text) {
  auto address = parse_mailbox_address(text);
  if (!address) return address.error();
  const std::string key = address_key(*address);
  auto stmt = db_->prepare("DELETE FROM accounts WHERE address = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, key);
  if (auto s = stmt->run(); !s) return s;
  if (db_->changes() == 0) return refused("no such account: " + key);
  return {};
}

base::Status AccountStore::set_password(std::string_view text, std::string_view password) {
  auto address = parse_mailbox_address(text);
  if (!address) return address.error();
  auto prepared = prepare_new_password(password);
  if (!prepared) return prepared.error();
  const std::string key = address_key(*address);
  auto exists = account_exists(key);
  if (!exists) return exists.error();
  if (!*exists) return refused("no such account: " + key);
  auto hash = hash_password(*prepared, options_.password_cost);
  if (!hash) return hash.error();
  auto scram = new_scram_keys(*prepared);
  if (!scram) return scram.error();

  auto stmt = db_->prepare(
      "UPDATE accounts SET password_hash = ?2, scram_salt = ?3, scram_iterations = ?4, scram_stored_key = ?5, "
      "scram_server_key = ?6, cram_md5_state = ?7 WHERE address = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, key).bind(2, *hash);
  bind_scram(*stmt, 3, *scram);
  bind_cram(*stmt, 7, options_.cram_md5, *prepared);
  if (auto s = stmt->run(); !s) return s;
  if (db_->changes() == 0) return refused("no such account: " + key);  // deleted meanwhile
  return {};
}

base::Status AccountStore::set_quota(std::string_view text, std::uint64_t quota_bytes) {
  auto address = parse_mailbox_address(text);
  if (!address) return address.error();
  if (auto s = check_quota(quota_bytes); !s) return s;
  const std::string key = address_key(*address);
  auto stmt = db_->prepare("UPDATE accounts SET quota_bytes = ?2 WHERE address = ?1");
  if (!stmt) return stmt.error();
  stmt->bind(1, key).bind(2, static_cast<std::int64_t>(quota_bytes));
  if (auto s = stmt->run(); !s) return s;
  if (db_->changes() == 0) return refused("no such account: " + key);
  return {};
}

base::Result<std::vector<AccountInfo>> AccountStore::list_users(std::optional<std::string_view> domain_text) {
  std::string domain;
  if (domain_text) {
    auto d = parse_domain(*domain_text);
    if (!d) return d.error();
    domain = std::move(d).value();
  }
  auto stmt = db_->prepare(
      "SELECT address, local, domain, quota_bytes, created_at FROM accounts "
      "WHERE ?1 IS NULL OR domain = ?1 ORDER BY domain, local");
  if (!stmt) return stmt.error();
  if (domain_text) {
    stmt->bind(1, domain);
  } else {
    stmt->bind_null(1);
  }
  std::vector<AccountInfo> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (*row != Step::kRow) break;
    out.push_back(AccountInfo{stmt->text(0), stmt->text(1), stmt->text(2),
                              static_cast<std::uint64_t>(stmt->int64(3)), stmt->int64(4)});
  }
  return out;
}

base::Result<bool> AccountStore::verify_password(std::string_view text, std::string_view typed) {
  // The password as the client typed it, prepared as a query (saslprep.h); one that SASLprep
  // refuses (a control character, say) cannot be any account's password. Passwords of
  // printable ASCII are unchanged by SASLprep, so hashes stored before it was applied (all
  // made from the password as typed) still verify; a stored password with control characters
  // or non-ASCII characters not already in SASLprep form must be set again.
  auto prepared = prepare_password(typed, PrepMode::kQuery);
  if (!prepared) {
    if (prepared.error().temporary()) return prepared.error();
    return false;
  }
  const std::string& password = *prepared;
  std::optional<std::string> stored;
  auto address = parse_mailbox_address(text);
  if (address) {
    auto stmt = db_->prepare("SELECT password_hash FROM accounts WHERE address = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, address_key(*address));
    auto row = stmt->step();
    if (!row) return row.error();
    if (*row == Step::kRow) stored = stmt->text(0);
  }
  if (stored) return verify_password_hash(*stored, password);

  // Unknown or malformed: spend the same work as a real check, one verification, then say no.
  if (decoy() == nullptr) {
    auto made = make_decoy_hash(options_.password_cost);
    if (!made) return made.error();
    own_decoy_ = std::make_unique<const std::string>(std::move(made).value());
  }
  auto ignored = verify_password_hash(*decoy(), password);
  (void)ignored;
  return false;
}

base::Result<std::optional<ScramKeys>> AccountStore::scram_sha256_keys(std::string_view text) {
  auto address = parse_mailbox_address(text);
  if (!address) return std::optional<ScramKeys>();
  auto stmt = db_->prepare(
      "SELECT scram_salt, scram_iterations, scram_stored_key, scram_server_key FROM accounts "
      "WHERE address = ?1 AND scram_salt IS NOT NULL");
  if (!stmt) return stmt.error();
  stmt->bind(1, address_key(*address));
  auto row = stmt->step();
  if (!row) return row.error();
  if (*row != Step::kRow) return std::optional<ScramKeys>();
  auto salt = base64_decode(stmt->text(0));
  auto stored = base64_decode(stmt->text(2));
  auto server = base64_decode(stmt->text(3));
  const std::int64_t iterations = stmt->int64(1);
  if (!salt || !stored || !server || stored->size() != 32 || server->size() != 32 || iterations < 1 ||
      iterations > 0x7fffffff) {
    return base::temporary_error("accounts: damaged SCRAM keys for " + address_key(*address));
  }
  return std::optional<ScramKeys>(ScramKeys{std::move(salt).value(), static_cast<std::uint32_t>(iterations),
                                            std::move(stored).value(), std::move(server).value()});
}

base::Result<std::optional<std::string>> AccountStore::cram_md5_state(std::string_view text) {
  auto address = parse_mailbox_address(text);
  if (!address) return std::optional<std::string>();
  auto stmt = db_->prepare("SELECT cram_md5_state FROM accounts WHERE address = ?1 AND cram_md5_state IS NOT NULL");
  if (!stmt) return stmt.error();
  stmt->bind(1, address_key(*address));
  auto row = stmt->step();
  if (!row) return row.error();
  if (*row != Step::kRow) return std::optional<std::string>();
  auto state = base64_decode(stmt->text(0));
  if (!state || state->size() != kCramMd5StateSize) {
    return base::temporary_error("accounts: damaged CRAM-MD5 state for " + address_key(*address));
  }
  return std::optional<std::string>(std::move(state).value());
}

// ---- aliases ----

base::Status AccountStore::add_alias(std::string_view text, std::string_view target_text) {
  auto address = parse_mailbox_address(text);
  if (!address) return address.error();
  auto target = parse_target(target_text);
  if (!target) return target.error();
  const std::string key = address_key(*address);
  if (auto t = mail::parse_address(*target); t && address_key(*t) == key) {
    return refused("alias " + key + " would point to itself");
  }

  auto txn = WriteTransaction::begin(*db_);
  if (!txn) return txn.error();
  auto domain_ok = domain_exists(address->domain);
  if (!domain_ok) return domain_ok.error();
  if (!*domain_ok) return refused("no such domain: " + address->domain + " (add it first)");
  auto is_account = account_exists(key);
  if (!is_account) return is_account.error();
  if (*is_account) return refused(key + " is an account; an alias of the same name would hide it");

  auto stmt = db_->prepare("INSERT INTO aliases (address, domain, target, created_at) VALUES (?1, ?2, ?3, ?4)");
  if (!stmt) return stmt.error();
  stmt->bind(1, key).bind(2, address->domain).bind(3, *target).bind(4, now());
  auto done = stmt->step();
  if (!done) return done.error();
  if (*done == Step::kConstraint) return refused("alias " + key + " -> " + *target + " already exists");
  return txn->commit();
}

base::Status AccountStore::del_alias(std::string_view text, std::optional<std::string_view> target_text) {
  auto address = parse_mailbox_address(text);
  if (!address) return address.error();
  const std::string key = address_key(*address);
  base::Result<sqlite::Stmt> stmt = base::temporary_error("unprepared");
  if (target_text) {
    auto target = parse_target(*target_text);
    if (!target) return target.error();
    stmt = db_->prepare("DELETE FROM aliases WHERE address = ?1 AND target = ?2");
    if (!stmt) return stmt.error();
    stmt->bind(1, key).bind(2, *target);
  } else {
    stmt = db_->prepare("DELETE FROM aliases WHERE address = ?1");
    if (!stmt) return stmt.error();
    stmt->bind(1, key);
  }
  if (auto s = stmt->run(); !s) return s;
  if (db_->changes() == 0) return refused("no such alias: " + key + (target_text ? " -> " + base::log_escape(*target_text) : ""));
  return {};
}

base::Result<std::vector<AliasInfo>> AccountStore::list_aliases(std::optional<std::string_view> domain_text) {
  std::string domain;
  if (domain_text) {
    auto d = parse_domain(*domain_text);
    if (!d) return d.error();
    domain = std::move(d).value();
  }
  auto stmt = db_->prepare("SELECT address, target FROM aliases WHERE ?1 IS NULL OR domain = ?1 ORDER BY address, target");
  if (!stmt) return stmt.error();
  if (domain_text) {
    stmt->bind(1, domain);
  } else {
    stmt->bind_null(1);
  }
  std::vector<AliasInfo> out;
  for (;;) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (*row != Step::kRow) break;
    out.push_back(AliasInfo{stmt->text(0), stmt->text(1)});
  }
  return out;
}

}  // namespace petrel::auth
