// policy/bootstrap.cc — see bootstrap.h.
#include "policy/bootstrap.h"

#include <sys/stat.h>

#include <filesystem>

#include <fmt/format.h>

#include "policy/sqlite.h"

namespace mailgate::policy {

Expected<MigrationResult, std::string> create_or_migrate(const std::string& path) {
  struct stat st {};
  const bool exists = stat(path.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode))
    return unexpected(fmt::format("'{}' is not a regular file", path));
  if (!exists) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      return unexpected(fmt::format("cannot create '{}': directory '{}' does not exist", path,
                                    dir.string()));
  }
  auto db = open_db(path, OpenMode::kReadWriteCreate);
  if (!db) return unexpected(db.error());
  auto version = query_int(db->get(), "PRAGMA user_version");
  if (!version) return unexpected(fmt::format("{}: {}", path, version.error()));
  auto tables = query_int(db->get(), "SELECT count(*) FROM sqlite_schema");
  if (!tables) return unexpected(fmt::format("{}: {}", path, tables.error()));
  if (*version == 0 && *tables > 0)
    return unexpected(fmt::format(
        "refusing to initialise '{}': it is a non-empty SQLite database that is not a mailgate "
        "policy database (user_version 0, {} schema objects)",
        path, *tables));
  if (*version == 0) {
    // Persistent, and only possible outside a transaction: set it before the first migration.
    if (auto r = exec(db->get(), "PRAGMA journal_mode = WAL"); !r)
      return unexpected(fmt::format("{}: cannot enable WAL: {}", path, r.error()));
  }
  auto migrated = migrate(db->get());
  if (!migrated) return unexpected(fmt::format("{}: {}", path, migrated.error()));
  return *migrated;
}

}  // namespace mailgate::policy
