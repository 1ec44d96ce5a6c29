// policy/migrations.cc — applies the embedded schema migrations. See migrations.h.
#include "policy/migrations.h"

#include <fmt/format.h>

#include "log/log.h"
#include "policy/sqlite.h"

namespace mailgate::policy {
namespace {

Expected<int, std::string> user_version(sqlite3* db) {
  auto v = query_int(db, "PRAGMA user_version");
  if (!v) return unexpected(fmt::format("cannot read the schema version: {}", v.error()));
  return static_cast<int>(*v);
}

std::string too_new(int found) {
  return fmt::format(
      "policy database has schema version {}, newer than this mailgate knows ({}); upgrade "
      "mailgate or use a database made for this version",
      found, latest_schema_version());
}

}  // namespace

std::span<const Migration> migrations() {
  return {detail::kEmbeddedMigrations, detail::kEmbeddedMigrationCount};
}

int latest_schema_version() {
  auto all = migrations();
  return all.empty() ? 0 : all.back().version;
}

Expected<MigrationResult, std::string> migrate(sqlite3* db) {
  const int latest = latest_schema_version();
  // Read first without a write lock: a current (or too new) database is never written.
  auto found = user_version(db);
  if (!found) return unexpected(found.error());
  if (*found > latest) return unexpected(too_new(*found));
  if (*found < 0) {
    return unexpected(fmt::format("policy database has a negative schema version {}", *found));
  }
  if (*found == latest) return MigrationResult{*found, latest};

  auto txn = Transaction::begin(db, Transaction::Kind::kImmediate);
  if (!txn) return unexpected(fmt::format("cannot start the schema migration: {}", txn.error()));
  // Another process may have migrated between the read above and the lock.
  auto from = user_version(db);
  if (!from) return unexpected(from.error());
  if (*from > latest) return unexpected(too_new(*from));
  for (const Migration& m : migrations()) {
    if (m.version <= *from) continue;
    if (auto r = exec(db, m.sql); !r) {
      return unexpected(
          fmt::format("schema migration {} ({}) failed: {}", m.version, m.file, r.error()));
    }
    auto now = user_version(db);
    if (!now) return unexpected(now.error());
    if (*now != m.version) {
      return unexpected(
          fmt::format("schema migration {} ({}) left user_version at {}; it must end with "
                      "PRAGMA user_version = {}",
                      m.version, m.file, *now, m.version));
    }
  }
  if (auto r = txn->commit(); !r) {
    return unexpected(fmt::format("cannot commit the schema migration: {}", r.error()));
  }
  if (*from > 0)
    MG_LOG_INFO("policy: migrated database schema from version {} to {}", *from, latest);
  return MigrationResult{*from, latest};
}

}  // namespace mailgate::policy
