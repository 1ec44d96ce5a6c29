// ctl/init_command.cc — `mailgatectl init`: creates the policy database with the current schema
// (journal in WAL mode, so the gateway's reads never wait for an edit), or brings an existing
// mailgate database up to date. Never touches a non-empty database that is not a mailgate one.
#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/migrations.h"

namespace mailgate::ctl {

int run_init(Context& ctx, const Args&) {
  const std::string& path = ctx.db_path;
  struct stat st {};
  const bool exists = stat(path.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode))
    return fail(ctx, fmt::format("'{}' is not a regular file", path));
  if (!exists) {
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      return fail(ctx, fmt::format("cannot create '{}': directory '{}' does not exist", path,
                                   dir.string()));
    }
  }

  auto db = policy::open_db(path, policy::OpenMode::kReadWriteCreate);
  if (!db) return fail(ctx, db.error());
  auto version = policy::query_int(db->get(), "PRAGMA user_version");
  if (!version) return fail(ctx, fmt::format("{}: {}", path, version.error()));
  auto tables = policy::query_int(db->get(), "SELECT count(*) FROM sqlite_schema");
  if (!tables) return fail(ctx, fmt::format("{}: {}", path, tables.error()));
  if (*version == 0 && *tables > 0) {
    return fail(ctx, fmt::format("refusing to initialise '{}': it is a non-empty SQLite database "
                                 "that is not a mailgate policy database (user_version 0, {} "
                                 "schema objects)",
                                 path, *tables));
  }
  if (*version == 0) {
    // Persistent, and only possible outside a transaction: set it before the first migration.
    if (auto r = policy::exec(db->get(), "PRAGMA journal_mode = WAL"); !r) {
      return fail(ctx, fmt::format("{}: cannot enable WAL: {}", path, r.error()));
    }
  }
  auto migrated = policy::migrate(db->get());
  if (!migrated) return fail(ctx, fmt::format("{}: {}", path, migrated.error()));

  std::string message;
  if (migrated->from_version == 0) {
    message =
        fmt::format("created policy database '{}' (schema version {})", path, migrated->to_version);
  } else if (migrated->from_version < migrated->to_version) {
    message = fmt::format("migrated policy database '{}' from schema version {} to {}", path,
                          migrated->from_version, migrated->to_version);
  } else {
    message = fmt::format("policy database '{}' is already at schema version {}", path,
                          migrated->to_version);
  }
  if (ctx.json) {
    nlohmann::ordered_json j = {{"ok", true},
                                {"message", message},
                                {"from_version", migrated->from_version},
                                {"schema_version", migrated->to_version}};
    ctx.out << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else {
    ctx.out << message << "\n";
  }
  return kExitOk;
}

}  // namespace mailgate::ctl
