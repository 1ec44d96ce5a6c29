// ctl/edit.h — how mailgatectl reads and changes the policy database safely.
// Owns: opening the database for a command (it must exist; pending migrations are applied),
// and apply_change(): every write runs inside one IMMEDIATE transaction, after which the whole
// database is re-read with the gateway's own loader (policy::read_snapshot). The change is
// committed only if it introduced no new problem; otherwise it is rolled back and the problems
// it would have caused are printed. Problems that were already there (a hand edit) do not block
// an unrelated change, they are reported as a warning; this way a bad row can always be removed.
// Also the shared output of results: aligned tables for people, JSON with --json.
// Threading: single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ctl/cli.h"
#include "policy/sqlite.h"
#include "util/expected.h"

namespace mailgate::ctl {

// Opens ctx.db_path (which must exist) and migrates it. On failure prints the error and
// returns an empty handle (the command then returns kExitFailure).
policy::DbHandle open_policy_db(Context& ctx);

// What a successful change reports: the message for people ("added local domain
// 'example.com'") and, for inserts with a row id, the id.
struct ChangeResult {
  std::string message;
  std::optional<int64_t> id;
};
// The change: runs statements on `db` inside the transaction. Returns its result, or an error
// (printed as "error: ...", exit 1) that rolls everything back.
using Change = std::function<Expected<ChangeResult, std::string>(sqlite3* db)>;

// Runs `change` in a transaction, validates the result, commits or rolls back. Returns the exit
// code. Success prints the message, or with --json {"ok": true, "message": ..., "id": N}.
int apply_change(Context& ctx, sqlite3* db, const Change& change);

// Prints rows: an aligned table with a header line, or with --json an array of objects keyed
// by the lower-cased header names. `empty` is printed instead of an empty table.
struct Column {
  enum class Kind {
    kText,     // as is; JSON string
    kInteger,  // JSON number
    kBool,     // "1"/"0": "yes"/"no" in a table, true/false in JSON
  };
  std::string header;  // "DOMAIN"; the JSON key is its lower-case form
  Kind kind = Kind::kText;
};
// NULL cells print as "-" in a table and null in JSON.
void print_rows(Context& ctx, const std::vector<Column>& columns,
                const std::vector<std::vector<std::optional<std::string>>>& rows,
                std::string_view empty);

// "ARG: message" for a validator's message (validate.h) about the argument ARG. A message that
// starts with a column name ("code must be 5xx ...") names the option instead: "--code: must be
// 5xx ...".
std::string arg_problem(std::string_view arg, std::string_view message);

// Runs one statement with text parameters (nullopt binds NULL); returns sqlite3_changes().
Expected<int, std::string> run_statement(sqlite3* db, std::string_view sql,
                                         const std::vector<std::optional<std::string>>& params);

// Runs a SELECT and returns its rows as text (NULL -> nullopt).
Expected<std::vector<std::vector<std::optional<std::string>>>, std::string> query_rows(
    sqlite3* db, std::string_view sql, const std::vector<std::string>& params = {});

}  // namespace mailgate::ctl
