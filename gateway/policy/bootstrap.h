// policy/bootstrap.h — makes sure a policy database exists and has the current schema.
// Owns: first-run creation (WAL journal, all migrations) for the daemon and `mailgatectl init`.
// Must not touch: rows (a new database starts empty: no plugins, no domains).
#pragma once

#include <string>

#include "policy/migrations.h"
#include "util/expected.h"

namespace mailgate::policy {

// Creates `path` (its directory must exist) or migrates it to the newest schema. Refuses a
// non-empty SQLite file that is not a mailgate policy database, and anything not a regular
// file. Errors name the path.
Expected<MigrationResult, std::string> create_or_migrate(const std::string& path);

}  // namespace mailgate::policy
