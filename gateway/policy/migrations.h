// policy/migrations.h — the policy database's schema versions and how to reach the newest.
// Owns: the list of migrations embedded at build time (db/migrations/NNNN_name.sql, turned into
// migrations_sql.cc by embed_migrations.cmake) and applying the pending ones.
// Schema version = PRAGMA user_version; migration N leaves the database at version N.
// Threading: migrate() runs on the caller's connection; concurrent migrators are serialised by
// SQLite's write lock (BEGIN IMMEDIATE), and the second finds nothing left to do.
// Must not touch: row contents (the snapshot validates them).
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "util/expected.h"

namespace mailgate::policy {

struct Migration {
  int version;            // 1, 2, ...: the user_version after applying it
  std::string_view file;  // "0001_initial.sql"
  std::string_view sql;   // the file's text
};

// All migrations known to this binary, in order (versions 1..N, no gaps).
std::span<const Migration> migrations();

// The newest schema version this binary knows (N).
int latest_schema_version();

struct MigrationResult {
  int from_version = 0;  // user_version found
  int to_version = 0;    // user_version now (== latest_schema_version())
};

// Brings the database on `db` to latest_schema_version(): applies every pending migration in
// one IMMEDIATE transaction, checking after each that it set user_version to its number. A
// database newer than this binary is refused without being touched:
// "policy database has schema version 7, newer than this mailgate knows (1); upgrade mailgate".
// Nothing is written when the database is already current (works on a read-only file).
Expected<MigrationResult, std::string> migrate(sqlite3* db);

namespace detail {
// Defined in the generated migrations_sql.cc.
extern const Migration kEmbeddedMigrations[];
extern const size_t kEmbeddedMigrationCount;
}  // namespace detail

}  // namespace mailgate::policy
