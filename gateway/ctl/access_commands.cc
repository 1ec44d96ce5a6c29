// ctl/access_commands.cc — `policy access add|remove|list` (the access table).
// Patterns are stored canonical: client networks as "addr/len", everything else lower-case.
#include <fmt/format.h>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/cidr.h"
#include "policy/validate.h"

namespace mailgate::ctl {
namespace {

// The canonical stored form of a pattern already checked with check_access_pattern().
std::string canonical_pattern(const std::string& stage, const std::string& pattern) {
  if (stage == "client") return policy::parse_prefix(pattern)->to_string();
  return policy::to_lower(pattern);
}

bool same_pattern(const std::string& stage, const std::string& a, const std::string& b) {
  if (stage == "client") {
    auto pa = policy::parse_prefix(a);
    auto pb = policy::parse_prefix(b);
    return pa && pb && *pa == *pb;
  }
  return policy::to_lower(a) == policy::to_lower(b);
}

}  // namespace

int run_access_add(Context& ctx, const Args& args) {
  const std::string stage = *args.value("--stage");
  const std::string action = *args.value("--action");
  const std::string raw_pattern = *args.value("--pattern");
  if (auto p = policy::check_access_stage(stage)) return fail(ctx, arg_problem("--stage", *p));
  if (auto p = policy::check_access_action(action)) return fail(ctx, arg_problem("--action", *p));
  if (auto p = policy::check_access_pattern(stage, raw_pattern)) {
    return fail(ctx, arg_problem("--pattern", *p));
  }
  std::optional<int64_t> code;
  if (auto text = args.value("--code")) {
    int exit = kExitOk;
    code = int_arg(ctx, "--code", *text, &exit);
    if (!code) return exit;
  }
  const auto enhanced = args.value("--enhanced");
  const auto text = args.value("--text");
  if (action == "allow" && (code || enhanced || text)) {
    return fail(ctx, "--code, --enhanced and --text are not allowed with --action allow");
  }
  if (auto p = policy::check_access_reply(action, code, enhanced, text)) {
    return fail(ctx, arg_problem("--code", *p));  // names --code, --enhanced or --text
  }
  const auto comment = args.value("--comment");
  const std::string pattern = canonical_pattern(stage, raw_pattern);

  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto rows = query_rows(h, "SELECT id, pattern FROM access WHERE stage = ?1", {stage});
    if (!rows) return unexpected(rows.error());
    for (const auto& row : *rows) {
      if (row[1] && same_pattern(stage, *row[1], pattern)) {
        return unexpected(
            fmt::format("--pattern: stage {} already has a rule for '{}' (id {}); remove it first",
                        stage, *row[1], row[0].value_or("?")));
      }
    }
    auto r = run_statement(h,
                           "INSERT INTO access (stage, pattern, action, code, enhanced, text, "
                           "comment) VALUES (?1, ?2, ?3, CAST(?4 AS INTEGER), ?5, ?6, ?7)",
                           {stage, pattern, action,
                            code ? std::optional<std::string>(std::to_string(*code)) : std::nullopt,
                            enhanced, text, comment});
    if (!r) return unexpected(r.error());
    int64_t id = sqlite3_last_insert_rowid(h);
    return ChangeResult{
        fmt::format("added access rule {}: {} '{}' -> {}", id, stage, pattern, action), id};
  });
}

int run_access_remove(Context& ctx, const Args& args) {
  int exit = kExitOk;
  auto id = int_arg(ctx, "ID", args.arg(0), &exit);
  if (!id) return exit;
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto r = run_statement(h, "DELETE FROM access WHERE id = CAST(?1 AS INTEGER)",
                           {std::to_string(*id)});
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(fmt::format("ID: no access rule with id {}", *id));
    return ChangeResult{fmt::format("removed access rule {}", *id), *id};
  });
}

int run_access_list(Context& ctx, const Args& args) {
  const auto stage = args.value("--stage");
  if (stage) {
    if (auto p = policy::check_access_stage(*stage)) return fail(ctx, arg_problem("--stage", *p));
  }
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = stage ? query_rows(db.get(),
                                 "SELECT id, stage, pattern, action, code, enhanced, text, "
                                 "comment FROM access WHERE stage = ?1 ORDER BY id",
                                 {*stage})
                    : query_rows(db.get(),
                                 "SELECT id, stage, pattern, action, code, enhanced, text, "
                                 "comment FROM access ORDER BY id");
  if (!rows) return fail(ctx, rows.error());
  print_rows(ctx,
             {{"ID", Column::Kind::kInteger},
              {"STAGE"},
              {"PATTERN"},
              {"ACTION"},
              {"CODE", Column::Kind::kInteger},
              {"ENHANCED"},
              {"TEXT"},
              {"COMMENT"}},
             *rows, "no access rules");
  return kExitOk;
}

}  // namespace mailgate::ctl
