// ctl/settings_commands.cc — `policy settings set|remove|list` (the plugin_settings table:
// per-domain settings overrides that plugins read with policy_lookup("plugin_settings", ...)).
#include <fmt/format.h>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/validate.h"

namespace mailgate::ctl {

int run_settings_set(Context& ctx, const Args& args) {
  const std::string& plugin = args.arg(0);
  const std::string& raw_domain = args.arg(1);
  const std::string& json = args.arg(2);
  if (auto p = policy::check_plugin_name(plugin)) return fail(ctx, arg_problem("PLUGIN", *p));
  if (auto p = policy::check_settings_domain(raw_domain)) {
    return fail(ctx, arg_problem("DOMAIN", *p));
  }
  if (auto p = policy::check_settings_json(json)) return fail(ctx, arg_problem("JSON", *p));
  const std::string domain = policy::to_lower(raw_domain);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto exists = query_rows(h, "SELECT 1 FROM plugins WHERE name = ?1", {plugin});
    if (!exists) return unexpected(exists.error());
    if (exists->empty()) {
      return unexpected(fmt::format(
          "PLUGIN: no plugin '{}' in the chain (add it first: mailgatectl policy plugin add)",
          plugin));
    }
    auto r =
        run_statement(h,
                      "INSERT INTO plugin_settings (plugin, domain, settings) "
                      "VALUES (?1, ?2, ?3) "
                      "ON CONFLICT (plugin, domain) DO UPDATE SET settings = excluded.settings",
                      {plugin, domain, json});
    if (!r) return unexpected(r.error());
    return ChangeResult{fmt::format("set settings of plugin '{}' for domain '{}'", plugin, domain),
                        std::nullopt};
  });
}

int run_settings_remove(Context& ctx, const Args& args) {
  const std::string& plugin = args.arg(0);
  const std::string& domain = args.arg(1);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto r = run_statement(h, "DELETE FROM plugin_settings WHERE plugin = ?1 AND domain = ?2",
                           {plugin, domain});
    if (!r) return unexpected(r.error());
    if (*r == 0) {
      return unexpected(fmt::format("no settings for plugin '{}' and domain '{}'", plugin, domain));
    }
    return ChangeResult{fmt::format("removed settings of plugin '{}' for domain '{}'", plugin,
                                    policy::to_lower(domain)),
                        std::nullopt};
  });
}

int run_settings_list(Context& ctx, const Args& args) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  const bool one = !args.positional().empty();
  auto rows = one ? query_rows(db.get(),
                               "SELECT plugin, domain, settings FROM plugin_settings "
                               "WHERE plugin = ?1 ORDER BY plugin, domain",
                               {args.arg(0)})
                  : query_rows(db.get(),
                               "SELECT plugin, domain, settings FROM plugin_settings "
                               "ORDER BY plugin, domain");
  if (!rows) return fail(ctx, rows.error());
  print_rows(ctx, {{"PLUGIN"}, {"DOMAIN"}, {"SETTINGS"}}, *rows, "no plugin settings");
  return kExitOk;
}

}  // namespace mailgate::ctl
