// auth/sqlite_db.h: a thin RAII layer over the sqlite3 C API, and the one function that opens
// petrel.db with its pragmas and schema. Internal to auth/ (AccountStore, DirectoryImpl).
//
// Promise: every connection opened here has busy_timeout 5000 ms, foreign keys on and the
// database in WAL mode; the schema (PRAGMA user_version) is created on first open, or migrated
// from an older version, inside an IMMEDIATE transaction so two processes opening the file at
// once do not race. Statements take their values only through bound parameters.
// Not done here: any knowledge of accounts beyond the DDL.
// Failure: every SQLite error becomes a temporary base::Error "what: sqlite message"; a
// constraint violation is reported by Stmt::step() as kConstraint so callers can name it.
// Thread: a Db and its Stmts belong to one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace petrel::auth::sqlite {

// The schema version this code writes and understands (PRAGMA user_version).
inline constexpr int kSchemaVersion = 3;

enum class Step { kRow, kDone, kConstraint };

class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Stmt(Stmt&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Parameters are 1-based, as in SQLite. Text is copied (SQLITE_TRANSIENT).
  Stmt& bind(int index, std::string_view text);
  Stmt& bind(int index, std::int64_t value);
  Stmt& bind_null(int index);

  base::Result<Step> step();
  // Runs to completion, ignoring rows; a constraint violation is an error here.
  base::Status run();

  std::string text(int column) const;  // "" for NULL
  std::optional<std::string> nullable_text(int column) const;
  std::int64_t int64(int column) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class Db {
 public:
  Db() = default;
  Db(Db&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Opens (creating when absent, mode 0640) the database at `path` and applies the pragmas and
  // schema described above.
  static base::Result<Db> open(const std::string& path);

  base::Result<Stmt> prepare(std::string_view sql);
  // For statements without parameters (pragmas, DDL, BEGIN/COMMIT).
  base::Status exec(const char* sql);
  // A single integer result ("PRAGMA data_version").
  base::Result<std::int64_t> query_int(const char* sql);
  // The number of rows the last INSERT/UPDATE/DELETE changed.
  int changes() const;

  sqlite3* handle() const { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  base::Status init_schema();

  sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when destroyed uncommitted. IMMEDIATE takes the write
// lock up front, so a writer waits in busy_timeout instead of failing with SQLITE_BUSY when
// it would otherwise upgrade a read lock held while another connection writes.
class WriteTransaction {
 public:
  static base::Result<WriteTransaction> begin(Db& db);
  WriteTransaction(WriteTransaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  WriteTransaction& operator=(WriteTransaction&&) = delete;
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  ~WriteTransaction();

  base::Status commit();

 private:
  explicit WriteTransaction(Db* db) : db_(db) {}
  Db* db_ = nullptr;
};

}  // namespace petrel::auth::sqlite
