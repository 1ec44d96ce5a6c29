// ctl/route_commands.cc — `policy route ...`: the routes table of the routing
// plugin. Patterns and destinations are validated with the snapshot's own rules
// (policy/routes.h) and stored lower-case, one row per destination; the whole
// database is re-validated before the change commits (edit.h), so 'drop' beside
// another destination is refused with the row named. `policy route test
// ADDRESS` shows the route the gateway would apply, from the same snapshot code
// the gateway uses.
#include <fmt/format.h>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/routes.h"
#include "policy/snapshot.h"
#include "policy/validate.h"

namespace mailgate::ctl {
namespace {

// "a@x.test, b@y.test" or "a@x.test,b@y.test" -> the addresses, trimmed; empty
// items refused.
Expected<std::vector<std::string>, std::string> split_destinations(const std::string &text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    const size_t b = item.find_first_not_of(" \t");
    const size_t e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? std::string() : item.substr(b, e - b + 1);
    if (item.empty()) return unexpected(std::string("DESTINATIONS: an empty destination"));
    if (auto p = policy::check_route_destination(policy::to_lower(item)))
      return unexpected(arg_problem("DESTINATIONS", *p));
    out.push_back(policy::to_lower(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

int run_route_add(Context &ctx, const Args &args) {
  const std::string pattern = policy::to_lower(args.arg(0));
  if (auto p = policy::check_route_pattern(pattern)) return fail(ctx, arg_problem("PATTERN", *p));
  auto destinations = split_destinations(args.arg(1));
  if (!destinations) return fail(ctx, destinations.error());
  if (destinations->size() > 1)
    for (const std::string &d : *destinations)
      if (d == policy::kRouteDrop)
        return fail(ctx, "DESTINATIONS: 'drop' must be the only destination of a pattern");
  const std::string enabled = args.has("--disabled") ? "0" : "1";
  const auto comment = args.value("--comment");
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3 *h) -> Expected<ChangeResult, std::string> {
    std::optional<int64_t> first_id;
    for (const std::string &d : *destinations) {
      auto existing = query_rows(h, "SELECT id FROM routes WHERE pattern = ?1 AND destination = ?2",
                                 {pattern, d});
      if (!existing) return unexpected(existing.error());
      if (!existing->empty())
        return unexpected(fmt::format("route '{}' -> '{}' already exists (row {})", pattern, d,
                                      (*existing)[0][0].value_or("?")));
      auto r = run_statement(h,
                             "INSERT INTO routes (pattern, destination, "
                             "enabled, comment) VALUES "
                             "(?1, ?2, ?3, ?4)",
                             {pattern, d, enabled, comment});
      if (!r) return unexpected(r.error());
      if (!first_id) first_id = sqlite3_last_insert_rowid(h);
    }
    std::string list;
    for (const std::string &d : *destinations) list += (list.empty() ? "" : ", ") + d;
    return ChangeResult{
        fmt::format("added route '{}' -> {}{}", pattern, list, enabled == "0" ? " (disabled)" : ""),
        first_id};
  });
}

int run_route_remove(Context &ctx, const Args &args) {
  const std::string pattern = policy::to_lower(args.arg(0));
  const std::optional<std::string> destination =
      args.positional().size() > 1 ? std::optional(policy::to_lower(args.arg(1))) : std::nullopt;
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3 *h) -> Expected<ChangeResult, std::string> {
    // COLLATE NOCASE on the columns: any spelling removes the row.
    auto r = destination ? run_statement(h,
                                         "DELETE FROM routes WHERE pattern = ?1 AND "
                                         "destination = ?2",
                                         {pattern, *destination})
                         : run_statement(h, "DELETE FROM routes WHERE pattern = ?1", {pattern});
    if (!r) return unexpected(r.error());
    if (*r == 0)
      return unexpected(destination ? fmt::format("no route '{}' -> '{}'", pattern, *destination)
                                    : fmt::format("PATTERN: no route '{}'", pattern));
    return ChangeResult{
        fmt::format("removed {} route row{} of '{}'", *r, *r == 1 ? "" : "s", pattern),
        std::nullopt};
  });
}

int run_route_list(Context &ctx, const Args &) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = query_rows(db.get(),
                         "SELECT id, pattern, destination, enabled, comment FROM routes "
                         "ORDER BY lower(substr(pattern, instr(pattern, '@'))), lower(pattern), "
                         "id");
  if (!rows) return fail(ctx, rows.error());
  print_rows(ctx,
             {{"ID", Column::Kind::kInteger},
              {"PATTERN"},
              {"DESTINATION"},
              {"ENABLED", Column::Kind::kBool},
              {"COMMENT"}},
             *rows, "no routes");
  return kExitOk;
}

int run_route_test(Context &ctx, const Args &args) {
  const std::string &address = args.arg(0);
  if (auto p = policy::check_address(address)) return fail(ctx, arg_problem("ADDRESS", *p));
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto snap = policy::read_snapshot(db.get(), ctx.db_path, /*assign_version=*/false);
  if (!snap)
    return fail(ctx, fmt::format("{}: {}", ctx.db_path, policy::join_problems(snap.error())));
  const policy::RouteTable::Route *route = (*snap)->routes().match(address);
  if (ctx.json) {
    ctx.out << (route ? route->json : std::string("null")) << "\n";
    return kExitOk;
  }
  if (!route) {
    ctx.out << fmt::format("<{}>: no route (delivered as addressed)\n", address);
  } else if (route->drop) {
    ctx.out << fmt::format("<{}>: dropped (route '{}')\n", address, route->pattern);
  } else {
    std::string list;
    for (const std::string &d : route->destinations) list += (list.empty() ? "<" : ", <") + d + ">";
    ctx.out << fmt::format("<{}> -> {} (route '{}')\n", address, list, route->pattern);
  }
  return kExitOk;
}

}  // namespace mailgate::ctl
