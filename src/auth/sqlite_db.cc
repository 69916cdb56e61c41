// sqlite_db.cc: connections, statements, transactions and the petrel.db schema.
#include "auth/sqlite_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

namespace petrel::auth::sqlite {
namespace {

// Why a VFS of our own: SQLite's unix VFS makes a relative file name absolute (getcwd, then an
// lstat of every component) before it opens anything. The server works inside its data
// directory by descriptor (app/data_dir.h) after dropping privileges, and the directories above
// it may not be searchable by the service user (a data directory under /root), so that
// resolution fails where open("./petrel.db") succeeds. This VFS is the default one except that
// xFullPathname leaves a relative name relative; SQLite derives the -wal, -shm and -journal
// names and the directory it syncs from that name, and all of them work from the working
// directory, which petrel never changes once it has entered the data directory.
// Registered once per process (SQLite's VFS list is process-wide by design).
sqlite3_vfs* g_default_vfs = nullptr;

int relative_full_pathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  if (name[0] == '/') return g_default_vfs->xFullPathname(vfs, name, size, out);
  if (std::strlen(name) >= static_cast<std::size_t>(size)) return SQLITE_CANTOPEN;
  sqlite3_snprintf(size, out, "%s", name);
  return SQLITE_OK;
}

const char* relative_vfs_name() {
  static sqlite3_vfs vfs{};
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_initialize();
    g_default_vfs = sqlite3_vfs_find(nullptr);
    vfs = *g_default_vfs;  // pAppData too: the unix VFS finds its locking style through it
    vfs.zName = "petrel-relative";
    vfs.pNext = nullptr;
    vfs.xFullPathname = relative_full_pathname;
    sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  });
  return vfs.zName;
}

base::Error sqlite_error(sqlite3* db, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  return base::temporary_error(std::move(message));
}

// Version 1. accounts.address and aliases.address are lookup keys: lowercased domain and
// case-folded local part (see address_key.h). aliases carries its domain too so that the
// foreign key can cascade when a domain is deleted with force. An alias target keeps its
// local part as written (a remote host may care) but compares without case (NOCASE, ASCII),
// so "Bob@x" and "bob@x" are one target, and `alias del` need not match the spelling.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS domains (
  name       TEXT PRIMARY KEY NOT NULL,
  catch_all  TEXT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
  address       TEXT PRIMARY KEY NOT NULL,
  local         TEXT NOT NULL,
  domain        TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
  password_hash TEXT NOT NULL,
  quota_bytes   INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_domain ON accounts(domain);
CREATE TABLE IF NOT EXISTS aliases (
  address    TEXT NOT NULL,
  domain     TEXT NOT NULL REFERENCES domains(name) ON DELETE CASCADE,
  target     TEXT NOT NULL COLLATE NOCASE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (address, target)
);
CREATE INDEX IF NOT EXISTS aliases_by_domain ON aliases(domain);
PRAGMA user_version = 1;
)sql";

// Version 2: SCRAM-SHA-256 stored keys (RFC 5802 3), base64 text, set with every new
// password. Rows from version 1 keep NULLs: those accounts cannot use SCRAM until their
// password is set again (PLAIN and LOGIN still work, through password_hash).
constexpr const char* kMigrateV2 = R"sql(
ALTER TABLE accounts ADD COLUMN scram_salt TEXT NULL;
ALTER TABLE accounts ADD COLUMN scram_iterations INTEGER NULL;
ALTER TABLE accounts ADD COLUMN scram_stored_key TEXT NULL;
ALTER TABLE accounts ADD COLUMN scram_server_key TEXT NULL;
PRAGMA user_version = 2;
)sql";

// Version 3: the CRAM-MD5 key state (cram_md5_state.h: the HMAC-MD5 chaining values, never the
// password), base64 text, set with a new password only while CRAM-MD5 is enabled, else NULL.
constexpr const char* kMigrateV3 = R"sql(
ALTER TABLE accounts ADD COLUMN cram_md5_state TEXT NULL;
PRAGMA user_version = 3;
)sql";

}  // namespace

// ---- Stmt ----

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::bind(int index, std::string_view text) {
  // A bind error can only be a programming error (bad index) or out of memory; step() then
  // reports it, because SQLite keeps the statement's error state.
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

base::Result<Step> Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return Step::kRow;
  if (rc == SQLITE_DONE) return Step::kDone;
  sqlite3* db = sqlite3_db_handle(stmt_);
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    sqlite3_reset(stmt_);
    return Step::kConstraint;
  }
  base::Error error = sqlite_error(db, "sqlite step");
  sqlite3_reset(stmt_);
  return error;
}

base::Status Stmt::run() {
  for (;;) {
    auto s = step();
    if (!s) return s.error();
    if (*s == Step::kDone) return {};
    if (*s == Step::kConstraint) {
      return base::temporary_error(std::string("sqlite constraint: ") + sqlite3_errmsg(sqlite3_db_handle(stmt_)));
    }
  }
}

std::string Stmt::text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_, column);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::string> Stmt::nullable_text(int column) const {
  if (sqlite3_column_type(stmt_, column) == SQLITE_NULL) return std::nullopt;
  return text(column);
}

std::int64_t Stmt::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

// ---- Db ----

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

Db::~Db() { sqlite3_close_v2(db_); }

base::Result<Db> Db::open(const std::string& path) {
  // The file holds password hashes: create it 0640 ourselves (SQLite would use 0644), and the
  // -wal and -shm files SQLite makes later copy its permissions.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return base::errno_error("open " + path, errno);
  ::close(fd);

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, relative_vfs_name());
  Db db(raw);  // closes `raw` on every path below, even when opening failed
  if (rc != SQLITE_OK) return sqlite_error(raw, "sqlite open " + path);
  sqlite3_extended_result_codes(raw, 1);

  // The busy timeout first: switching to WAL and creating the schema may wait for a lock.
  if (sqlite3_busy_timeout(raw, 5000) != SQLITE_OK) return sqlite_error(raw, "sqlite busy_timeout");
  if (auto s = db.exec("PRAGMA foreign_keys = ON"); !s) return s.error();

  // WAL: readers (the server's directory) never block the writer (`petrel user add`).
  auto mode = db.prepare("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  auto row = mode->step();
  if (!row) return row.error();
  if (*row != Step::kRow || mode->text(0) != "wal") {
    return base::temporary_error("sqlite " + path + ": cannot switch to WAL mode");
  }
  mode = Stmt();

  if (auto s = db.init_schema(); !s) return s.error();
  return db;
}

base::Status Db::init_schema() {
  auto version = query_int("PRAGMA user_version");
  if (!version) return version.error();
  if (*version == kSchemaVersion) return {};
  if (*version > kSchemaVersion) {
    return base::permanent_error("petrel.db has schema version " + std::to_string(*version) +
                                 ", newer than this petrel understands (" + std::to_string(kSchemaVersion) + ")");
  }
  // Older (0 is a new file): create, then migrate one version at a time. Check again under the
  // write lock: another process may have done it meanwhile.
  auto txn = WriteTransaction::begin(*this);
  if (!txn) return txn.error();
  version = query_int("PRAGMA user_version");
  if (!version) return version.error();
  if (*version == 0) {
    if (auto s = exec(kSchemaV1); !s) return s;
    *version = 1;
  }
  if (*version == 1) {
    if (auto s = exec(kMigrateV2); !s) return s;
    *version = 2;
  }
  if (*version == 2) {
    if (auto s = exec(kMigrateV3); !s) return s;
  }
  return txn->commit();
}

base::Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db_, "sqlite prepare");
  return Stmt(stmt);
}

base::Status Db::exec(const char* sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    return base::temporary_error("sqlite: " + text);
  }
  return {};
}

base::Result<std::int64_t> Db::query_int(const char* sql) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.error();
  auto row = stmt->step();
  if (!row) return row.error();
  if (*row != Step::kRow) return base::temporary_error(std::string("sqlite: no result for ") + sql);
  return stmt->int64(0);
}

int Db::changes() const { return sqlite3_changes(db_); }

// ---- WriteTransaction ----

base::Result<WriteTransaction> WriteTransaction::begin(Db& db) {
  if (auto s = db.exec("BEGIN IMMEDIATE"); !s) return s.error();
  return WriteTransaction(&db);
}

WriteTransaction::~WriteTransaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

base::Status WriteTransaction::commit() {
  Db* db = db_;
  db_ = nullptr;
  auto s = db->exec("COMMIT");
  if (!s) (void)db->exec("ROLLBACK");  // a failed COMMIT may leave the transaction open
  return s;
}

}  // namespace petrel::auth::sqlite
