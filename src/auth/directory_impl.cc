// directory_impl.cc: RCPT lookups from a snapshot of petrel.db.
#include "auth/directory_impl.h"

#include "auth/address_key.h"
#include "auth/sqlite_db.h"
#include "base/strings.h"

namespace petrel::auth {
namespace {

// Reads one text column of every row into `out`.
base::Status read_column(sqlite::Db& db, const char* sql, std::unordered_set<std::string>& out) {
  auto stmt = db.prepare(sql);
  if (!stmt) return stmt.error();
  for (;;) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (*row != sqlite::Step::kRow) return {};
    out.insert(stmt->text(0));
  }
}

}  // namespace

base::Result<std::unique_ptr<DirectoryImpl>> DirectoryImpl::open(const std::string& db_path,
                                                                 const config::AccountsConfig& config) {
  auto db = sqlite::Db::open(db_path);
  if (!db) return db.error();
  std::unique_ptr<DirectoryImpl> directory(
      new DirectoryImpl(std::make_unique<sqlite::Db>(std::move(db).value()), config));
  if (auto s = directory->refresh(); !s) return s.error();
  return directory;
}

DirectoryImpl::DirectoryImpl(std::unique_ptr<sqlite::Db> db, const config::AccountsConfig& config)
    : separator_(config.subaddress_separator), db_(std::move(db)), snapshot_(std::make_shared<const Snapshot>()) {}

DirectoryImpl::~DirectoryImpl() = default;

std::shared_ptr<const DirectoryImpl::Snapshot> DirectoryImpl::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

RecipientStatus DirectoryImpl::lookup(const mail::Address& address) const {
  // RFC 5321 4.5.1: "Postmaster" without a domain must be accepted, case-insensitively.
  if (address.domain.empty()) {
    return base::iequals(address.local, "postmaster") ? RecipientStatus::kLocal : RecipientStatus::kUnknownUser;
  }
  // An address literal names a host, not one of our domains; relay rules decide.
  if (address.is_address_literal()) return RecipientStatus::kNotOurDomain;

  auto snap = snapshot();
  const std::string domain = address.domain_key();
  if (!snap->domains.contains(domain)) return RecipientStatus::kNotOurDomain;

  // Exact account or alias, with the local part folded as the store folded it.
  const std::string local = fold_local(address.local);
  if (snap->recipients.contains(local + "@" + domain)) return RecipientStatus::kLocal;

  // RFC 5321 4.5.1: postmaster@ each domain we serve must be accepted too; delivery routes it.
  if (local == "postmaster") return RecipientStatus::kLocal;

  // Subaddressing (RFC 5233): "user+tag" is delivered to "user" when "user" exists.
  if (!separator_.empty()) {
    auto cut = local.find(separator_);
    if (cut != std::string::npos && cut > 0 && snap->recipients.contains(local.substr(0, cut) + "@" + domain)) {
      return RecipientStatus::kLocal;
    }
  }

  if (snap->catch_all.contains(domain)) return RecipientStatus::kLocal;
  return RecipientStatus::kUnknownUser;
}

bool DirectoryImpl::serves_domain(std::string_view domain) const {
  if (domain.empty() || domain.front() == '[') return false;
  return snapshot()->domains.contains(base::to_lower(domain));
}

base::Status DirectoryImpl::refresh() {
  std::lock_guard lock(refresh_mutex_);
  // data_version changes when another connection commits; read it before loading so that a
  // commit racing with the load is picked up by the next refresh.
  auto version = db_->query_int("PRAGMA data_version");
  if (!version) return version.error();
  if (*version == data_version_) return {};

  auto fresh = load();
  if (!fresh) return fresh.error();
  {
    std::lock_guard swap(snapshot_mutex_);
    snapshot_ = std::move(fresh).value();
  }
  data_version_ = *version;
  return {};
}

base::Result<std::shared_ptr<const DirectoryImpl::Snapshot>> DirectoryImpl::load() {
  // One read transaction, so the snapshot is one consistent state of the database.
  if (auto s = db_->exec("BEGIN"); !s) return s.error();
  auto snap = std::make_shared<Snapshot>();
  base::Status s = read_column(*db_, "SELECT name FROM domains", snap->domains);
  if (s) s = read_column(*db_, "SELECT address FROM accounts", snap->recipients);
  if (s) s = read_column(*db_, "SELECT DISTINCT address FROM aliases", snap->recipients);
  if (s) s = read_column(*db_, "SELECT name FROM domains WHERE catch_all IS NOT NULL", snap->catch_all);
  (void)db_->exec(s ? "COMMIT" : "ROLLBACK");
  if (!s) return s.error();
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace petrel::auth
