// ctl/plugin_commands.cc — `policy plugin add|remove|list|enable|disable|order|set` (the
// plugins table, i.e. the chain). Positions are kept dense (1..n) by every command here; hand
// edits may leave gaps, which the gateway accepts (order = position, then name).
#include <fmt/format.h>

#include <algorithm>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/validate.h"

namespace mailgate::ctl {
namespace {

// The attributes `add` and `set` take, validated. Unset optionals were not given.
struct PluginAttributes {
  std::optional<std::string> path, profile, settings, fail_mode;
  std::optional<int64_t> timeout_ms;
};

// Reads and checks --path, --profile, --settings, --fail-mode, --timeout-ms. On a problem prints
// it and returns false with *exit set.
bool read_attributes(Context& ctx, const Args& args, PluginAttributes* a, int* exit) {
  auto check = [&](std::string_view option, std::optional<std::string>* out,
                   policy::Problem (*checker)(std::string_view)) {
    *out = args.value(option);
    if (!*out) return true;
    if (auto p = checker(**out)) {
      *exit = fail(ctx, arg_problem(option, *p));
      return false;
    }
    return true;
  };
  if (!check("--path", &a->path, policy::check_plugin_path) ||
      !check("--profile", &a->profile, policy::check_profile) ||
      !check("--settings", &a->settings, policy::check_settings_json) ||
      !check("--fail-mode", &a->fail_mode, policy::check_fail_mode)) {
    return false;
  }
  if (auto text = args.value("--timeout-ms")) {
    a->timeout_ms = int_arg(ctx, "--timeout-ms", *text, exit);
    if (!a->timeout_ms) return false;
    if (auto p = policy::check_timeout_ms(*a->timeout_ms)) {
      *exit = fail(ctx, arg_problem("--timeout-ms", *p));
      return false;
    }
  }
  return true;
}

// Chain order as the gateway sees it.
Expected<std::vector<std::string>, std::string> chain_names(sqlite3* db) {
  auto rows = query_rows(db, "SELECT name FROM plugins ORDER BY position, name, id");
  if (!rows) return unexpected(rows.error());
  std::vector<std::string> names;
  for (const auto& row : *rows) names.push_back(row[0].value_or(""));
  return names;
}

// Writes positions 1..n in the order of `names`.
Expected<bool, std::string> renumber(sqlite3* db, const std::vector<std::string>& names) {
  for (size_t i = 0; i < names.size(); ++i) {
    auto r = run_statement(db, "UPDATE plugins SET position = CAST(?1 AS INTEGER) WHERE name = ?2",
                           {std::to_string(i + 1), names[i]});
    if (!r) return unexpected(r.error());
  }
  return true;
}

bool plugin_exists(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

int set_enabled(Context& ctx, const Args& args, bool enabled) {
  const std::string& name = args.arg(0);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto r = run_statement(h, "UPDATE plugins SET enabled = CAST(?1 AS INTEGER) WHERE name = ?2",
                           {enabled ? "1" : "0", name});
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(fmt::format("NAME: no plugin '{}'", name));
    return ChangeResult{fmt::format("{} plugin '{}'", enabled ? "enabled" : "disabled", name),
                        std::nullopt};
  });
}

}  // namespace

int run_plugin_add(Context& ctx, const Args& args) {
  const std::string name = *args.value("--name");
  if (auto p = policy::check_plugin_name(name)) return fail(ctx, arg_problem("--name", *p));
  PluginAttributes a;
  int exit = kExitOk;
  if (!read_attributes(ctx, args, &a, &exit)) return exit;
  std::optional<int64_t> position;
  if (auto text = args.value("--position")) {
    position = int_arg(ctx, "--position", *text, &exit);
    if (!position) return exit;
  }
  const bool enabled = !args.has("--disabled");

  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto names = chain_names(h);
    if (!names) return unexpected(names.error());
    if (plugin_exists(*names, name)) {
      return unexpected(fmt::format("--name: plugin '{}' already exists", name));
    }
    const auto count = static_cast<int64_t>(names->size());
    int64_t at = position.value_or(count + 1);
    if (at < 1 || at > count + 1) {
      return unexpected(
          fmt::format("--position: must be 1..{} (the chain has {} entries)", count + 1, count));
    }
    auto r = run_statement(
        h,
        "INSERT INTO plugins (position, name, path, enabled, profile, settings, fail_mode, "
        "timeout_ms) VALUES (CAST(?1 AS INTEGER), ?2, ?3, CAST(?4 AS INTEGER), ?5, ?6, ?7, "
        "CAST(?8 AS INTEGER))",
        {std::to_string(at), name, a.path, enabled ? "1" : "0", a.profile.value_or("*"),
         a.settings.value_or("{}"), a.fail_mode.value_or("tempfail"),
         std::to_string(a.timeout_ms.value_or(5000))});
    if (!r) return unexpected(r.error());
    int64_t id = sqlite3_last_insert_rowid(h);
    names->insert(names->begin() + (at - 1), name);
    if (auto n = renumber(h, *names); !n) return unexpected(n.error());
    return ChangeResult{
        fmt::format("added plugin '{}' at position {}{}", name, at, enabled ? "" : " (disabled)"),
        id};
  });
}

int run_plugin_remove(Context& ctx, const Args& args) {
  const std::string& name = args.arg(0);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto names = chain_names(h);
    if (!names) return unexpected(names.error());
    if (!plugin_exists(*names, name)) return unexpected(fmt::format("NAME: no plugin '{}'", name));
    // Explicit rather than relying on the foreign key (which needs PRAGMA foreign_keys).
    auto settings = run_statement(h, "DELETE FROM plugin_settings WHERE plugin = ?1", {name});
    if (!settings) return unexpected(settings.error());
    auto r = run_statement(h, "DELETE FROM plugins WHERE name = ?1", {name});
    if (!r) return unexpected(r.error());
    names->erase(std::find(names->begin(), names->end(), name));
    if (auto n = renumber(h, *names); !n) return unexpected(n.error());
    std::string message = fmt::format("removed plugin '{}'", name);
    if (*settings > 0) message += fmt::format(" and its {} plugin_settings rows", *settings);
    return ChangeResult{message, std::nullopt};
  });
}

int run_plugin_list(Context& ctx, const Args&) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = query_rows(db.get(),
                         "SELECT position, name, enabled, profile, fail_mode, timeout_ms, path, "
                         "settings FROM plugins ORDER BY position, name, id");
  if (!rows) return fail(ctx, rows.error());
  using K = Column::Kind;
  print_rows(ctx,
             {{"POSITION", K::kInteger},
              {"NAME"},
              {"ENABLED", K::kBool},
              {"PROFILE"},
              {"FAIL_MODE"},
              {"TIMEOUT_MS", K::kInteger},
              {"PATH"},
              {"SETTINGS"}},
             *rows, "no plugins");
  return kExitOk;
}

int run_plugin_enable(Context& ctx, const Args& args) { return set_enabled(ctx, args, true); }
int run_plugin_disable(Context& ctx, const Args& args) { return set_enabled(ctx, args, false); }

int run_plugin_order(Context& ctx, const Args& args) {
  const std::string& name = args.arg(0);
  int exit = kExitOk;
  auto position = int_arg(ctx, "POSITION", args.arg(1), &exit);
  if (!position) return exit;
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto names = chain_names(h);
    if (!names) return unexpected(names.error());
    if (!plugin_exists(*names, name)) return unexpected(fmt::format("NAME: no plugin '{}'", name));
    const auto count = static_cast<int64_t>(names->size());
    if (*position < 1 || *position > count) {
      return unexpected(
          fmt::format("POSITION: must be 1..{} (the chain has {} entries)", count, count));
    }
    names->erase(std::find(names->begin(), names->end(), name));
    names->insert(names->begin() + (*position - 1), name);
    if (auto n = renumber(h, *names); !n) return unexpected(n.error());
    return ChangeResult{fmt::format("moved plugin '{}' to position {}", name, *position),
                        std::nullopt};
  });
}

int run_plugin_set(Context& ctx, const Args& args) {
  const std::string& name = args.arg(0);
  PluginAttributes a;
  int exit = kExitOk;
  if (!read_attributes(ctx, args, &a, &exit)) return exit;
  std::vector<std::pair<std::string_view, std::optional<std::string>>> sets;
  if (a.path) sets.emplace_back("path", a.path);
  if (a.profile) sets.emplace_back("profile", a.profile);
  if (a.settings) sets.emplace_back("settings", a.settings);
  if (a.fail_mode) sets.emplace_back("fail_mode", a.fail_mode);
  if (a.timeout_ms) sets.emplace_back("timeout_ms", std::to_string(*a.timeout_ms));
  if (sets.empty()) {
    return usage_error(ctx,
                       "nothing to set: give one or more of --path, --profile, --settings, "
                       "--fail-mode, --timeout-ms");
  }
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    std::vector<std::string> changed;
    for (const auto& [column, value] : sets) {
      std::string sql = column == "timeout_ms"
                            ? "UPDATE plugins SET timeout_ms = CAST(?1 AS INTEGER) WHERE name = ?2"
                            : fmt::format("UPDATE plugins SET {} = ?1 WHERE name = ?2", column);
      auto r = run_statement(h, sql, {value, name});
      if (!r) return unexpected(r.error());
      if (*r == 0) return unexpected(fmt::format("NAME: no plugin '{}'", name));
      changed.emplace_back(column);
    }
    return ChangeResult{fmt::format("updated plugin '{}': {}", name, fmt::join(changed, ", ")),
                        std::nullopt};
  });
}

}  // namespace mailgate::ctl
