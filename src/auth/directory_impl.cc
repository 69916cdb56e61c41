// directory_impl.cc: RCPT lookups and recipient resolution from a snapshot of petrel.db.
#include "auth/directory_impl.h"

#include <algorithm>
#include <functional>
#include <span>

#include "auth/address_key.h"
#include "auth/sqlite_db.h"
#include "base/log.h"
#include "base/strings.h"

namespace petrel::auth {
namespace {

// Runs `sql` and calls `fn` with the statement positioned on each row in turn.
base::Status for_each_row(sqlite::Db& db, const char* sql, const std::function<void(const sqlite::Stmt&)>& fn) {
  auto stmt = db.prepare(sql);
  if (!stmt) return stmt.error();
  for (;;) {
    auto row = stmt->step();
    if (!row) return row.error();
    if (*row != sqlite::Step::kRow) return {};
    fn(*stmt);
  }
}

// Reads one text column of every row into `out`.
base::Status read_column(sqlite::Db& db, const char* sql, std::unordered_set<std::string>& out) {
  return for_each_row(db, sql, [&out](const sqlite::Stmt& row) { out.insert(row.text(0)); });
}

// A stored alias or catch-all target, as AccountStore wrote it (parse_target). One that does
// not parse (a hand-edited database) keeps its text with an empty domain; resolve() fails it.
mail::Address stored_target(const std::string& text) {
  auto parsed = mail::parse_address(text);
  if (parsed && !parsed->domain.empty()) return std::move(parsed).value();
  PETREL_LOG(kWarn, "auth.bad_target", "target=\"{}\"", base::log_escape(text));
  return mail::Address{text, ""};
}

// Reads (key, target) rows, in the order given by `sql`.
base::Status read_targets(sqlite::Db& db, const char* sql,
                          const std::function<void(std::string, mail::Address)>& add) {
  return for_each_row(db, sql, [&add](const sqlite::Stmt& row) { add(row.text(0), stored_target(row.text(1))); });
}

// "user" of "user<sep>tag" (RFC 5233), or "" when `local` has no separator after a first octet.
std::string strip_subaddress(const std::string& local, const std::string& separator) {
  if (separator.empty()) return {};
  auto cut = local.find(separator);
  if (cut == std::string::npos || cut == 0) return {};
  return local.substr(0, cut);
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
  if (snap->names(local + "@" + domain)) return RecipientStatus::kLocal;

  // RFC 5321 4.5.1: postmaster@ each domain we serve must be accepted too; delivery routes it.
  if (local == "postmaster") return RecipientStatus::kLocal;

  // Subaddressing (RFC 5233): "user+tag" is delivered to "user" when "user" exists.
  if (auto user = strip_subaddress(local, separator_); !user.empty() && snap->names(user + "@" + domain)) {
    return RecipientStatus::kLocal;
  }

  if (snap->catch_all.contains(domain)) return RecipientStatus::kLocal;
  return RecipientStatus::kUnknownUser;
}

bool DirectoryImpl::serves_domain(std::string_view domain) const {
  if (domain.empty() || domain.front() == '[') return false;
  return snapshot()->domains.contains(base::to_lower(domain));
}

// ---- resolution: the rules are numbered in resolution.h ----

// One resolve() call: a depth-first walk over the snapshot that collects the targets. Lives on
// the caller's stack and only reads the snapshot, which the caller keeps alive.
class DirectoryImpl::Expansion {
 public:
  Expansion(const Snapshot& snap, const std::string& separator, const mail::Address& recipient)
      : snap_(snap), separator_(separator), recipient_(recipient) {}

  base::Result<Resolution> run() {
    // Rule 4: <Postmaster> without a domain (RFC 5321 4.5.1) names no domain to look in.
    if (recipient_.domain.empty()) {
      if (base::iequals(recipient_.local, "postmaster")) {
        return base::permanent_error(
            "5.1.1 <Postmaster>: no domain to deliver it in; address postmaster@ one of our domains");
      }
      return base::permanent_error("5.1.3 <" + recipient_.str() + ">: address without a domain");
    }
    if (auto s = resolve(recipient_, 0, /*top=*/true); !s) return s.error();
    // Rule 5: every alias on the way was already on the path, so nothing is left to deliver to.
    if (out_.empty()) {
      return base::permanent_error("5.4.6 <" + recipient_.str() + ">: alias expansion yields no target (alias loop)");
    }
    return std::move(out_);
  }

 private:
  // Appends what `address` stands for: the recipient itself (`top`), or a target `depth`
  // expansions below it. An error ends the whole resolution.
  base::Status resolve(const mail::Address& address, int depth, bool top) {
    // A stored target that did not parse (see Snapshot::aliases): that part fails.
    if (address.domain.empty()) {
      log_dangling(address, "invalid stored target");
      return add_failed(address, "5.3.5 invalid alias target");
    }
    // Rule 2: not ours, relay later (whether it may is the caller's decision).
    const std::string domain = address.domain_key();
    if (address.is_address_literal() || !snap_.domains.contains(domain)) return add_remote(address);

    // Rules 1 and 3: the exact account, then the exact alias, by the folded key.
    const std::string local = fold_local(address.local);
    const std::string key = local + "@" + domain;
    if (auto it = snap_.accounts.find(key); it != snap_.accounts.end()) return add_mailbox(address, local, domain, it->second);
    if (auto it = snap_.aliases.find(key); it != snap_.aliases.end()) return expand(key, it->second, depth);

    // Rule 3, RFC 5233: "user+tag" as the account or alias "user"; the tag goes no further.
    if (auto user = strip_subaddress(local, separator_); !user.empty()) {
      const std::string user_key = user + "@" + domain;
      if (auto it = snap_.accounts.find(user_key); it != snap_.accounts.end()) {
        return add_mailbox(address, user, domain, it->second);
      }
      if (auto it = snap_.aliases.find(user_key); it != snap_.aliases.end()) return expand(user_key, it->second, depth);
    }

    // Rules 3 and 5: the domain's catch-all, except for its own target (or anything below it),
    // which would otherwise come back to it forever.
    const std::string catch_all_key = "@" + domain;
    if (auto it = snap_.catch_all.find(domain); it != snap_.catch_all.end() && !on_path(catch_all_key)) {
      return expand(catch_all_key, std::span(&it->second, 1), depth);
    }

    // Rules 3, 4 and 6: nobody by that name. The recipient itself fails as a whole; a target
    // reached by expansion fails alone. The reason goes to the sender: no alias names in it.
    std::string reason = local == "postmaster"
                             ? "5.1.1 <" + address.str() +
                                   ">: postmaster is not defined; RFC 5321 4.5.1 requires it and this server "
                                   "accepts it, so the operator must add an account or alias for it"
                             : "5.1.1 <" + address.str() + ">: unknown user";
    if (top) return base::permanent_error(std::move(reason));
    log_dangling(address, "no such account or alias");
    return add_failed(address, std::move(reason));
  }

  // Resolves each target of the alias or catch-all `key`, one level deeper.
  base::Status expand(const std::string& key, std::span<const mail::Address> targets, int depth) {
    // Rule 5: an alias already on the path is a loop; one already expanded elsewhere has its
    // targets in already. Either is skipped; the other targets still count.
    if (on_path(key)) {
      PETREL_LOG(kWarn, "auth.alias_loop", "recipient=\"{}\" alias=\"{}\" path=\"{}\"", base::log_escape(recipient_.str()),
                 base::log_escape(key), base::log_escape(path_text()));
      return {};
    }
    if (expanded_.contains(key)) return {};
    // Rule 5: bounded depth; beyond it no later attempt does better, so permanent.
    if (depth + 1 > kMaxExpansionDepth) {
      return base::permanent_error("5.2.4 <" + recipient_.str() + ">: alias expansion too deep (more than " +
                                   std::to_string(kMaxExpansionDepth) + " levels)");
    }
    path_.push_back(key);
    for (const auto& target : targets) {
      if (auto s = resolve(target, depth + 1, /*top=*/false); !s) return s;
    }
    path_.pop_back();
    expanded_.insert(key);
    return {};
  }

  std::string path_text() const {
    std::string text;
    for (const auto& key : path_) text += (text.empty() ? "" : " > ") + key;
    return text;
  }

  bool on_path(const std::string& key) const { return std::find(path_.begin(), path_.end(), key) != path_.end(); }

  void log_dangling(const mail::Address& address, std::string_view why) const {
    PETREL_LOG(kWarn, "auth.dangling_target", "recipient=\"{}\" target=\"{}\" via=\"{}\" error=\"{}\"",
               base::log_escape(recipient_.str()), base::log_escape(address.str()),
               base::log_escape(path_.empty() ? std::string() : path_.back()), why);
  }

  // Rule 5: duplicates are dropped by these keys, the first one kept.
  base::Status add_mailbox(const mail::Address& address, const std::string& local, const std::string& domain,
                           std::uint64_t quota_bytes) {
    DeliveryTarget target{DeliveryTarget::Kind::kMailbox, address, local, domain, {}, quota_bytes};
    return add("m:" + local + "@" + domain, std::move(target));
  }
  base::Status add_remote(const mail::Address& address) {
    DeliveryTarget target{DeliveryTarget::Kind::kRemote, address, {}, {}, {}};
    return add("r:" + address.local + "@" + address.domain_key(), std::move(target));
  }
  base::Status add_failed(const mail::Address& address, std::string reason) {
    DeliveryTarget target{DeliveryTarget::Kind::kFailed, address, {}, {}, std::move(reason)};
    return add("f:" + address_key(address), std::move(target));
  }
  base::Status add(std::string dedup_key, DeliveryTarget target) {
    if (!seen_.insert(std::move(dedup_key)).second) return {};
    // Rule 5: bounded fan-out, permanent for the same reason as the depth.
    if (out_.size() >= kMaxTargets) {
      return base::permanent_error("5.2.4 <" + recipient_.str() + ">: alias expansion too large (more than " +
                                   std::to_string(kMaxTargets) + " targets)");
    }
    out_.push_back(std::move(target));
    return {};
  }

  const Snapshot& snap_;
  const std::string& separator_;
  const mail::Address& recipient_;
  Resolution out_;
  std::unordered_set<std::string> seen_;      // dedup keys of out_
  std::vector<std::string> path_;             // aliases and "@domain" catch-alls being expanded
  std::unordered_set<std::string> expanded_;  // keys fully expanded already
};

base::Result<Resolution> DirectoryImpl::resolve(const mail::Address& recipient) const {
  auto snap = snapshot();  // held for the whole walk; a refresh() meanwhile does not disturb it
  return Expansion(*snap, separator_, recipient).run();
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
  // A quota below zero can only come from a hand-edited database: taken as unlimited.
  if (s) {
    s = for_each_row(*db_, "SELECT address, max(quota_bytes, 0) FROM accounts", [&](const sqlite::Stmt& row) {
      snap->accounts.emplace(row.text(0), static_cast<std::uint64_t>(row.int64(1)));
    });
  }
  // rowid order is the order the targets were added: expansion follows it.
  if (s) {
    s = read_targets(*db_, "SELECT address, target FROM aliases ORDER BY rowid",
                     [&](std::string key, mail::Address target) { snap->aliases[std::move(key)].push_back(std::move(target)); });
  }
  if (s) {
    s = read_targets(*db_, "SELECT name, catch_all FROM domains WHERE catch_all IS NOT NULL",
                     [&](std::string domain, mail::Address target) { snap->catch_all.emplace(std::move(domain), std::move(target)); });
  }
  (void)db_->exec(s ? "COMMIT" : "ROLLBACK");
  if (!s) return s.error();
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace petrel::auth
