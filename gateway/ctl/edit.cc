// ctl/edit.cc — validated writes and shared output for mailgatectl. See edit.h.
#include "ctl/edit.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "policy/migrations.h"
#include "policy/snapshot.h"

namespace mailgate::ctl {
namespace {

// The problems read_snapshot() reports for the database as it is inside the transaction.
std::vector<std::string> problems_now(sqlite3* db, const std::string& path) {
  auto snap = policy::read_snapshot(db, path, /*assign_version=*/false);
  if (snap) return {};
  return snap.error();
}

}  // namespace

policy::DbHandle open_policy_db(Context& ctx) {
  struct stat st {};
  if (stat(ctx.db_path.c_str(), &st) != 0) {
    fail(ctx, fmt::format("policy database '{}' does not exist (create it with: mailgatectl "
                          "--db {} init)",
                          ctx.db_path, ctx.db_path));
    return nullptr;
  }
  auto db = policy::open_db(ctx.db_path, policy::OpenMode::kReadWrite);
  if (!db) {
    fail(ctx, db.error());
    return nullptr;
  }
  auto migrated = policy::migrate(db->get());
  if (!migrated) {
    fail(ctx, fmt::format("{}: {}", ctx.db_path, migrated.error()));
    return nullptr;
  }
  return std::move(*db);
}

int apply_change(Context& ctx, sqlite3* db, const Change& change) {
  auto txn = policy::Transaction::begin(db, policy::Transaction::Kind::kImmediate);
  if (!txn)
    return fail(ctx, fmt::format("cannot lock '{}' for writing: {}", ctx.db_path, txn.error()));
  const std::vector<std::string> before = problems_now(db, ctx.db_path);

  auto result = change(db);
  if (!result) return fail(ctx, result.error());  // txn's destructor rolls back

  const std::vector<std::string> after = problems_now(db, ctx.db_path);
  // New problems: those in `after` not matched by one in `before` (multiset difference).
  std::vector<std::string> remaining = before;
  std::vector<std::string> introduced;
  for (const std::string& p : after) {
    auto it = std::find(remaining.begin(), remaining.end(), p);
    if (it == remaining.end()) {
      introduced.push_back(p);
    } else {
      remaining.erase(it);
    }
  }
  if (!introduced.empty()) {
    txn->rollback();
    std::string message = "the change was not made; it would make the policy invalid:";
    for (const std::string& p : introduced) message += fmt::format("\n  {}", p);
    return fail(ctx, message);
  }
  if (auto c = txn->commit(); !c) {
    return fail(ctx, fmt::format("cannot commit to '{}': {}", ctx.db_path, c.error()));
  }

  if (ctx.json) {
    nlohmann::ordered_json j = {{"ok", true}, {"message", result->message}};
    if (result->id) j["id"] = *result->id;
    ctx.out << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else {
    ctx.out << result->message << "\n";
  }
  if (!after.empty()) {
    ctx.err << "mailgatectl: warning: the database still has problems from earlier edits (the "
               "gateway refuses it until they are fixed):\n";
    for (const std::string& p : after) ctx.err << "  " << p << "\n";
  }
  return kExitOk;
}

void print_rows(Context& ctx, const std::vector<Column>& columns,
                const std::vector<std::vector<std::optional<std::string>>>& rows,
                std::string_view empty) {
  if (ctx.json) {
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const auto& row : rows) {
      nlohmann::ordered_json object = nlohmann::ordered_json::object();
      for (size_t i = 0; i < columns.size(); ++i) {
        std::string key = columns[i].header;
        std::transform(key.begin(), key.end(), key.begin(),
                       [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
        const std::optional<std::string>& cell = row[i];
        if (!cell) {
          object[key] = nullptr;
        } else if (columns[i].kind == Column::Kind::kBool && (*cell == "0" || *cell == "1")) {
          object[key] = *cell == "1";
        } else if (auto n = columns[i].kind == Column::Kind::kInteger ? parse_int(*cell)
                                                                      : std::nullopt) {
          object[key] = *n;
        } else {
          object[key] = *cell;
        }
      }
      array.push_back(std::move(object));
    }
    // Cells come from the database and may hold invalid UTF-8 from a hand edit: replace it.
    ctx.out << array.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    return;
  }
  if (rows.empty()) {
    ctx.out << empty << "\n";
    return;
  }
  std::vector<size_t> width(columns.size());
  for (size_t i = 0; i < columns.size(); ++i) width[i] = columns[i].header.size();
  auto cell_text = [&](const std::vector<std::optional<std::string>>& row, size_t i) {
    if (!row[i]) return std::string("-");
    if (columns[i].kind == Column::Kind::kBool && (*row[i] == "0" || *row[i] == "1")) {
      return std::string(*row[i] == "1" ? "yes" : "no");
    }
    return *row[i];
  };
  for (const auto& row : rows) {
    for (size_t i = 0; i < columns.size(); ++i) {
      width[i] = std::max(width[i], cell_text(row, i).size());
    }
  }
  auto line = [&](auto text_of) {
    std::string out;
    for (size_t i = 0; i < columns.size(); ++i) {
      std::string text = text_of(i);
      if (i + 1 == columns.size()) {
        out += text;
      } else {
        out += fmt::format("{:<{}}  ", text, width[i]);
      }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    ctx.out << out << "\n";
  };
  line([&](size_t i) { return columns[i].header; });
  for (const auto& row : rows) {
    line([&](size_t i) { return cell_text(row, i); });
  }
}

std::string arg_problem(std::string_view arg, std::string_view message) {
  for (std::string_view column : {"code ", "enhanced ", "text "}) {
    if (message.starts_with(column)) {
      return fmt::format("--{}: {}", column.substr(0, column.size() - 1),
                         message.substr(column.size()));
    }
  }
  return fmt::format("{}: {}", arg, message);
}

Expected<int, std::string> run_statement(sqlite3* db, std::string_view sql,
                                         const std::vector<std::optional<std::string>>& params) {
  auto stmt = policy::prepare(db, sql);
  if (!stmt) return unexpected(stmt.error());
  for (size_t i = 0; i < params.size(); ++i) {
    policy::bind_optional_text(stmt->get(), static_cast<int>(i + 1), params[i]);
  }
  if (sqlite3_step(stmt->get()) != SQLITE_DONE) return unexpected(std::string(sqlite3_errmsg(db)));
  return sqlite3_changes(db);
}

Expected<std::vector<std::vector<std::optional<std::string>>>, std::string> query_rows(
    sqlite3* db, std::string_view sql, const std::vector<std::string>& params) {
  auto stmt = policy::prepare(db, sql);
  if (!stmt) return unexpected(stmt.error());
  for (size_t i = 0; i < params.size(); ++i) {
    policy::bind_text(stmt->get(), static_cast<int>(i + 1), params[i]);
  }
  std::vector<std::vector<std::optional<std::string>>> rows;
  const int n = sqlite3_column_count(stmt->get());
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    auto& row = rows.emplace_back();
    for (int i = 0; i < n; ++i) row.push_back(policy::column_text(stmt->get(), i));
  }
  if (rc != SQLITE_DONE) return unexpected(std::string(sqlite3_errmsg(db)));
  return rows;
}

}  // namespace mailgate::ctl
