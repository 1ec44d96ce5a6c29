// ctl/init_command.cc — `mailgatectl init`: creates the policy database with the current schema
// (journal in WAL mode, so the gateway's reads never wait for an edit), or brings an existing
// mailgate database up to date. Never touches a non-empty database that is not a mailgate one.
#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/bootstrap.h"
#include "policy/migrations.h"

namespace mailgate::ctl {

int run_init(Context& ctx, const Args&) {
  const std::string& path = ctx.db_path;
  auto migrated = policy::create_or_migrate(path);
  if (!migrated) return fail(ctx, migrated.error());

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
