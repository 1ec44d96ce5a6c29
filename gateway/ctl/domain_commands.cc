// ctl/domain_commands.cc — `policy domain ...` (local_domains) and `policy network ...`
// (relay_networks). Values are validated with the snapshot's own rules (policy/validate.h,
// policy/cidr.h) and stored in canonical form: domains lower-case, networks as "addr/len".
#include <fmt/format.h>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/cidr.h"
#include "policy/validate.h"

namespace mailgate::ctl {

int run_domain_add(Context& ctx, const Args& args) {
  if (auto p = policy::check_domain(args.arg(0))) return fail(ctx, arg_problem("DOMAIN", *p));
  const std::string domain = policy::to_lower(args.arg(0));
  const auto comment = args.value("--comment");
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto existing = query_rows(h, "SELECT domain FROM local_domains WHERE domain = ?1", {domain});
    if (!existing) return unexpected(existing.error());
    if (!existing->empty())
      return unexpected(fmt::format("local domain '{}' already exists", domain));
    auto r = run_statement(h, "INSERT INTO local_domains (domain, comment) VALUES (?1, ?2)",
                           {domain, comment});
    if (!r) return unexpected(r.error());
    return ChangeResult{fmt::format("added local domain '{}'", domain), std::nullopt};
  });
}

int run_domain_remove(Context& ctx, const Args& args) {
  const std::string& domain = args.arg(0);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    // COLLATE NOCASE on the column: any spelling of the name removes it.
    auto r = run_statement(h, "DELETE FROM local_domains WHERE domain = ?1", {domain});
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(fmt::format("DOMAIN: no local domain '{}'", domain));
    return ChangeResult{fmt::format("removed local domain '{}'", policy::to_lower(domain)),
                        std::nullopt};
  });
}

int run_domain_list(Context& ctx, const Args&) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = query_rows(db.get(), "SELECT domain, comment FROM local_domains ORDER BY domain");
  if (!rows) return fail(ctx, rows.error());
  print_rows(ctx, {{"DOMAIN"}, {"COMMENT"}}, *rows, "no local domains");
  return kExitOk;
}

int run_network_add(Context& ctx, const Args& args) {
  auto prefix = policy::parse_prefix(args.arg(0));
  if (!prefix) return fail(ctx, fmt::format("CIDR: {}", prefix.error()));
  const std::string cidr = prefix->to_string();
  const auto comment = args.value("--comment");
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto rows = query_rows(h, "SELECT cidr FROM relay_networks");
    if (!rows) return unexpected(rows.error());
    for (const auto& row : *rows) {
      if (!row[0]) continue;
      auto other = policy::parse_prefix(*row[0]);
      if (other && *other == *prefix) {
        return unexpected(fmt::format("relay network {} already exists (as '{}')", cidr, *row[0]));
      }
    }
    auto r = run_statement(h, "INSERT INTO relay_networks (cidr, comment) VALUES (?1, ?2)",
                           {cidr, comment});
    if (!r) return unexpected(r.error());
    return ChangeResult{fmt::format("added relay network {}", cidr), std::nullopt};
  });
}

int run_network_remove(Context& ctx, const Args& args) {
  // Accept any spelling of the network ("10.0.0.1" for "10.0.0.1/32"), but also the row's text
  // as stored, so a row the validator refuses can still be removed.
  const std::string& text = args.arg(0);
  auto prefix = policy::parse_prefix(text);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto rows = query_rows(h, "SELECT cidr FROM relay_networks");
    if (!rows) return unexpected(rows.error());
    for (const auto& row : *rows) {
      if (!row[0]) continue;
      auto other = policy::parse_prefix(*row[0]);
      bool same = *row[0] == text || (prefix && other && *other == *prefix);
      if (!same) continue;
      auto r = run_statement(h, "DELETE FROM relay_networks WHERE cidr = ?1", {*row[0]});
      if (!r) return unexpected(r.error());
      return ChangeResult{fmt::format("removed relay network {}", *row[0]), std::nullopt};
    }
    if (!prefix) return unexpected(fmt::format("CIDR: {}", prefix.error()));
    return unexpected(fmt::format("CIDR: no relay network {}", prefix->to_string()));
  });
}

int run_network_list(Context& ctx, const Args&) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = query_rows(db.get(), "SELECT cidr, comment FROM relay_networks ORDER BY cidr");
  if (!rows) return fail(ctx, rows.error());
  print_rows(ctx, {{"CIDR"}, {"COMMENT"}}, *rows, "no relay networks");
  return kExitOk;
}

}  // namespace mailgate::ctl
