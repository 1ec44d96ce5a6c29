// ctl/ratelimit_commands.cc — `policy ratelimit add|remove|list` (the ratelimits table) and
// `policy ratelimit exempt|unexempt|exemptions` (ratelimit_exemptions). Values are checked
// with the snapshot's own rules (policy/ratelimits.h) before anything is written, and the
// whole database is validated again by apply_change().
// Must not touch: other tables.
#include <fmt/format.h>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/cidr.h"
#include "policy/ratelimits.h"
#include "policy/validate.h"

namespace mailgate::ctl {
namespace {

// An integer option within [lo, hi]; nullopt with the exit code set when bad.
std::optional<int64_t> bounded(Context& ctx, const Args& args, std::string_view option,
                               int64_t fallback, int64_t lo, int64_t hi, int* exit) {
  auto text = args.value(option);
  if (!text) return fallback;
  auto v = int_arg(ctx, option, *text, exit);
  if (!v) return std::nullopt;
  if (*v < lo || *v > hi) {
    *exit = fail(ctx, fmt::format("{}: must be between {} and {} (got {})", option, lo, hi, *v));
    return std::nullopt;
  }
  return v;
}

}  // namespace

int run_ratelimit_add(Context& ctx, const Args& args) {
  const std::string name = args.arg(0);
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") != std::string::npos)
    return fail(ctx, fmt::format("NAME: must match [a-z0-9_.-]{{1,64}} (got '{}')", name));
  const std::string what = *args.value("--what");
  const std::string key = *args.value("--key");
  const std::string action = args.value("--action").value_or("tempfail");
  if (auto p = policy::check_ratelimit_what(what)) return fail(ctx, arg_problem("--what", *p));
  if (auto p = policy::check_ratelimit_key(what, key)) return fail(ctx, arg_problem("--key", *p));
  if (auto p = policy::check_ratelimit_action(action))
    return fail(ctx, arg_problem("--action", *p));
  int exit = kExitOk;
  auto rate = bounded(ctx, args, "--rate", 0, 1, 1'000'000'000, &exit);
  if (!rate) return exit;
  auto period = bounded(ctx, args, "--period", 0, 1, 2'592'000, &exit);
  if (!period) return exit;
  auto burst = bounded(ctx, args, "--burst", 0, 0, 1'000'000'000, &exit);
  if (!burst) return exit;
  auto v4 = bounded(ctx, args, "--ipv4-prefix", 32, 1, 32, &exit);
  if (!v4) return exit;
  auto v6 = bounded(ctx, args, "--ipv6-prefix", 64, 1, 128, &exit);
  if (!v6) return exit;
  const auto comment = args.value("--comment");
  const std::string enabled = args.has("--disabled") ? "0" : "1";

  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto existing = query_rows(h, "SELECT name FROM ratelimits WHERE name = ?1", {name});
    if (!existing) return unexpected(existing.error());
    if (!existing->empty())
      return unexpected(fmt::format("NAME: rate limit '{}' already exists; remove it first", name));
    auto r = run_statement(
        h,
        "INSERT INTO ratelimits (name, what, key, ipv4_prefix, ipv6_prefix, rate, period, burst, "
        "action, enabled, comment) VALUES (?1, ?2, ?3, CAST(?4 AS INTEGER), CAST(?5 AS INTEGER), "
        "CAST(?6 AS INTEGER), CAST(?7 AS INTEGER), CAST(?8 AS INTEGER), ?9, CAST(?10 AS INTEGER), "
        "?11)",
        {name, what, key, std::to_string(*v4), std::to_string(*v6), std::to_string(*rate),
         std::to_string(*period), std::to_string(*burst), action, enabled, comment});
    if (!r) return unexpected(r.error());
    return ChangeResult{
        fmt::format("added rate limit '{}': {} {} per {} s by {}", name, *rate, what, *period, key),
        std::nullopt};
  });
}

int run_ratelimit_remove(Context& ctx, const Args& args) {
  const std::string& name = args.arg(0);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto r = run_statement(h, "DELETE FROM ratelimits WHERE name = ?1", {name});
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(fmt::format("NAME: no rate limit '{}'", name));
    return ChangeResult{fmt::format("removed rate limit '{}'", name), std::nullopt};
  });
}

int run_ratelimit_list(Context& ctx, const Args&) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = query_rows(db.get(),
                         "SELECT name, what, key, rate, period, burst, ipv4_prefix, ipv6_prefix, "
                         "action, enabled, comment FROM ratelimits ORDER BY name");
  if (!rows) return fail(ctx, rows.error());
  using K = Column::Kind;
  print_rows(ctx,
             {{"NAME"},
              {"WHAT"},
              {"KEY"},
              {"RATE", K::kInteger},
              {"PERIOD", K::kInteger},
              {"BURST", K::kInteger},
              {"IPV4_PREFIX", K::kInteger},
              {"IPV6_PREFIX", K::kInteger},
              {"ACTION"},
              {"ENABLED", K::kBool},
              {"COMMENT"}},
             *rows, "no rate limits");
  return kExitOk;
}

int run_ratelimit_exempt(Context& ctx, const Args& args) {
  const std::string& kind = args.arg(0);
  std::string value = args.arg(1);
  if (auto p = policy::check_ratelimit_exemption(kind, value))
    return fail(
        ctx,
        arg_problem(kind == "network" || kind == "sender" || kind == "auth_user" ? "VALUE" : "KIND",
                    *p));
  value = kind == "network" ? policy::parse_prefix(value)->to_string() : policy::to_lower(value);
  const auto comment = args.value("--comment");
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto existing = query_rows(
        h, "SELECT value FROM ratelimit_exemptions WHERE kind = ?1 AND value = ?2", {kind, value});
    if (!existing) return unexpected(existing.error());
    if (!existing->empty())
      return unexpected(fmt::format("{} '{}' is already exempt", kind, value));
    auto r = run_statement(
        h, "INSERT INTO ratelimit_exemptions (kind, value, comment) VALUES (?1, ?2, ?3)",
        {kind, value, comment});
    if (!r) return unexpected(r.error());
    return ChangeResult{fmt::format("exempted {} '{}' from rate limits", kind, value),
                        std::nullopt};
  });
}

int run_ratelimit_unexempt(Context& ctx, const Args& args) {
  const std::string& kind = args.arg(0);
  const std::string& value = args.arg(1);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    std::string stored = value;
    if (kind == "network") {
      if (auto p = policy::parse_prefix(value)) stored = p->to_string();
    }
    auto r = run_statement(h, "DELETE FROM ratelimit_exemptions WHERE kind = ?1 AND value = ?2",
                           {kind, stored});
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(fmt::format("no {} exemption '{}'", kind, value));
    return ChangeResult{fmt::format("removed the {} exemption '{}'", kind, stored), std::nullopt};
  });
}

int run_ratelimit_exemptions(Context& ctx, const Args&) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = query_rows(db.get(),
                         "SELECT kind, value, comment FROM ratelimit_exemptions ORDER BY kind, "
                         "value");
  if (!rows) return fail(ctx, rows.error());
  print_rows(ctx, {{"KIND"}, {"VALUE"}, {"COMMENT"}}, *rows, "no rate limit exemptions");
  return kExitOk;
}

}  // namespace mailgate::ctl
