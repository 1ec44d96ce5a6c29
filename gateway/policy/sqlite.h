// policy/sqlite.h — RAII handles and small helpers around the SQLite C API.
// Owns: sqlite3* and sqlite3_stmt* lifetimes (unique_ptr with deleters), opening a policy
// database with the connection settings every user of it wants (busy timeout, foreign keys),
// error text that names the file, and a scoped transaction.
// Threading: a connection is used by one thread at a time (SQLite's default "serialized" mode
// would allow more, but nothing here relies on it). Not used on the hot path: only the snapshot
// loader, the watcher and mailgatectl open connections.
// Must not touch: schema knowledge (migrations.h), row validation (validate.h).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/expected.h"

namespace mailgate::policy {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

enum class OpenMode {
  kReadWrite,        // the file must exist (the gateway, mailgatectl policy ...)
  kReadWriteCreate,  // created when missing (mailgatectl init)
};

// Opens `path` with a busy timeout (so a reader waits out a writer's commit rather than
// failing) and foreign keys on. Errors read "cannot open policy database 'PATH': REASON".
Expected<DbHandle, std::string> open_db(const std::string& path, OpenMode mode);

// Runs one or more statements without results. Error: SQLite's message.
Expected<bool, std::string> exec(sqlite3* db, std::string_view sql);

// Prepares one statement. Error: SQLite's message and the statement.
Expected<StmtHandle, std::string> prepare(sqlite3* db, std::string_view sql);

// Runs a query returning a single integer (e.g. "PRAGMA user_version").
Expected<int64_t, std::string> query_int(sqlite3* db, std::string_view sql);

// Text of column `col` of the current row, or nullopt when it is NULL.
std::optional<std::string> column_text(sqlite3_stmt* stmt, int col);

// Binds text (SQLITE_TRANSIENT) or NULL when `value` is empty-optional.
void bind_text(sqlite3_stmt* stmt, int index, std::string_view value);
void bind_optional_text(sqlite3_stmt* stmt, int index, const std::optional<std::string>& value);

// A transaction that rolls back unless commit() succeeded. begin() uses BEGIN IMMEDIATE
// (take the write lock now) or BEGIN (deferred: a consistent read snapshot).
class Transaction {
 public:
  enum class Kind { kDeferred, kImmediate };
  static Expected<Transaction, std::string> begin(sqlite3* db, Kind kind);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  Expected<bool, std::string> commit();
  void rollback();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;  // null once committed or rolled back
};

}  // namespace mailgate::policy
