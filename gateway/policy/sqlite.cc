// policy/sqlite.cc — RAII handles and helpers around the SQLite C API. See sqlite.h.
#include "policy/sqlite.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace mailgate::policy {
namespace {

constexpr int kBusyTimeoutMs = 5000;

}  // namespace

Expected<DbHandle, std::string> open_db(const std::string& path, OpenMode mode) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (mode == OpenMode::kReadWriteCreate) flags |= SQLITE_OPEN_CREATE;
  struct stat before {};
  const bool creating = mode == OpenMode::kReadWriteCreate && ::stat(path.c_str(), &before) != 0;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbHandle db(raw);  // sqlite3_open_v2 may return a handle even on failure
  if (rc != SQLITE_OK) {
    std::string reason = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    return unexpected(fmt::format("cannot open policy database '{}': {}", path, reason));
  }
  // The policy holds DKIM private keys: a database we create is for its owner only (SQLite
  // gives its -wal and -shm files the same mode).
  if (creating && ::chmod(path.c_str(), 0600) != 0)
    return unexpected(fmt::format("cannot make policy database '{}' private: {}", path,
                                  std::strerror(errno)));
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  // Opening is lazy: read the header now so "file is not a database" surfaces here.
  if (auto r = exec(db.get(), "PRAGMA foreign_keys = ON; SELECT count(*) FROM sqlite_schema;");
      !r) {
    return unexpected(fmt::format("cannot open policy database '{}': {}", path, r.error()));
  }
  return db;
}

Expected<bool, std::string> exec(sqlite3* db, std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return unexpected(std::move(message));
  }
  return true;
}

Expected<StmtHandle, std::string> prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr) !=
      SQLITE_OK) {
    return unexpected(fmt::format("{} (in: {})", sqlite3_errmsg(db), sql));
  }
  return StmtHandle(raw);
}

Expected<int64_t, std::string> query_int(sqlite3* db, std::string_view sql) {
  auto stmt = prepare(db, sql);
  if (!stmt) return unexpected(stmt.error());
  int rc = sqlite3_step(stmt->get());
  if (rc != SQLITE_ROW) {
    return unexpected(fmt::format("{} (in: {})", sqlite3_errmsg(db), sql));
  }
  return static_cast<int64_t>(sqlite3_column_int64(stmt->get(), 0));
}

std::optional<std::string> column_text(sqlite3_stmt* stmt, int col) {
  if (sqlite3_column_type(stmt, col) == SQLITE_NULL) return std::nullopt;
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  int size = sqlite3_column_bytes(stmt, col);
  return std::string(text ? text : "", static_cast<size_t>(size));
}

void bind_text(sqlite3_stmt* stmt, int index, std::string_view value) {
  sqlite3_bind_text(stmt, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
}

void bind_optional_text(sqlite3_stmt* stmt, int index, const std::optional<std::string>& value) {
  if (value) {
    bind_text(stmt, index, *value);
  } else {
    sqlite3_bind_null(stmt, index);
  }
}

Expected<Transaction, std::string> Transaction::begin(sqlite3* db, Kind kind) {
  auto r = exec(db, kind == Kind::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!r) return unexpected(r.error());
  return Transaction(db);
}

Transaction::~Transaction() { rollback(); }

Expected<bool, std::string> Transaction::commit() {
  if (!db_) return unexpected(std::string("transaction already finished"));
  auto r = exec(db_, "COMMIT");
  if (!r) {
    rollback();
    return r;
  }
  db_ = nullptr;
  return true;
}

void Transaction::rollback() {
  if (!db_) return;
  // A failed statement may already have rolled back; only roll back what is still open.
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  db_ = nullptr;
}

}  // namespace mailgate::policy
