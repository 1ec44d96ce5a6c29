// ctl/dkim_commands.cc — `dkim keygen|list|record|enable|disable|remove` (the dkim_keys table,
// the keys the dkim_sign plugin signs with). Keys are made and checked by policy/dkim_key.h,
// the same rules the gateway's loader applies; domains and selectors are stored lower-case.
// keygen prints the DNS TXT record to publish; `record` prints it again from the stored key.
// Must not touch: other tables.
#include <fmt/format.h>

#include "ctl/commands.h"
#include "ctl/edit.h"
#include "policy/dkim_key.h"
#include "policy/validate.h"

namespace mailgate::ctl {
namespace {

// Checks DOMAIN and SELECTOR; prints the problem and returns false when one is bad.
bool domain_and_selector(Context& ctx, const Args& args, int* exit) {
  if (auto p = policy::check_domain(args.arg(0))) {
    *exit = fail(ctx, arg_problem("DOMAIN", *p));
    return false;
  }
  if (auto p = policy::check_dkim_selector(args.arg(1))) {
    *exit = fail(ctx, arg_problem("SELECTOR", *p));
    return false;
  }
  return true;
}

int set_enabled(Context& ctx, const Args& args, bool enabled) {
  int exit = kExitOk;
  if (!domain_and_selector(ctx, args, &exit)) return exit;
  const std::string domain = policy::to_lower(args.arg(0));
  const std::string selector = policy::to_lower(args.arg(1));
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto r =
        run_statement(h, "UPDATE dkim_keys SET enabled = ?3 WHERE domain = ?1 AND selector = ?2",
                      {domain, selector, enabled ? "1" : "0"});
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(fmt::format("no DKIM key '{}' for {}", selector, domain));
    return ChangeResult{
        fmt::format("{} DKIM key '{}' for {}", enabled ? "enabled" : "disabled", selector, domain),
        std::nullopt};
  });
}

}  // namespace

int run_dkim_keygen(Context& ctx, const Args& args) {
  int exit = kExitOk;
  if (!domain_and_selector(ctx, args, &exit)) return exit;
  const std::string domain = policy::to_lower(args.arg(0));
  const std::string selector = policy::to_lower(args.arg(1));
  const std::string kind = args.value("--algorithm").value_or("rsa");
  if (kind != "rsa" && kind != "ed25519")
    return fail(ctx, fmt::format("--algorithm: must be rsa or ed25519 (got '{}')", kind));
  const std::string algorithm = kind == "rsa" ? "rsa-sha256" : "ed25519-sha256";
  int bits = policy::kDkimDefaultRsaBits;
  if (auto text = args.value("--bits")) {
    if (kind != "rsa") return fail(ctx, "--bits: only RSA keys have a size");
    auto n = int_arg(ctx, "--bits", *text, &exit);
    if (!n) return exit;
    if (*n < policy::kDkimMinRsaBits || *n > policy::kDkimMaxRsaBits)
      return fail(ctx, fmt::format("--bits: must be {}..{} (RFC 8301; got {})",
                                   policy::kDkimMinRsaBits, policy::kDkimMaxRsaBits, *n));
    bits = static_cast<int>(*n);
  }
  const bool force = args.has("--force");
  const auto comment = args.value("--comment");
  const bool disabled = args.has("--disabled");

  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto existing =
        query_rows(h, "SELECT algorithm FROM dkim_keys WHERE domain = ?1 AND selector = ?2",
                   {domain, selector});
    if (!existing) return unexpected(existing.error());
    if (!existing->empty() && !force) {
      return unexpected(fmt::format(
          "DKIM key '{}' for {} already exists; choose another selector, or replace it with "
          "--force (mail signed with the old key stops verifying once the new record is "
          "published)",
          selector, domain));
    }
    auto pair = policy::generate_dkim_key(algorithm, bits);
    if (!pair) return unexpected(pair.error());
    if (!existing->empty()) {
      auto r = run_statement(h, "DELETE FROM dkim_keys WHERE domain = ?1 AND selector = ?2",
                             {domain, selector});
      if (!r) return unexpected(r.error());
    }
    auto r = run_statement(
        h,
        "INSERT INTO dkim_keys (domain, selector, algorithm, private_key, enabled, comment) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        {domain, selector, algorithm, pair->private_pem, disabled ? "0" : "1", comment});
    if (!r) return unexpected(r.error());
    const std::string size = kind == "rsa" ? fmt::format(", {} bits", bits) : "";
    return ChangeResult{
        fmt::format("{} DKIM key '{}' for {} ({}{}{}); publish this DNS record:\n{}",
                    existing->empty() ? "added" : "replaced", selector, domain, algorithm, size,
                    disabled ? ", disabled" : "",
                    policy::dkim_txt_record(domain, selector, algorithm, pair->public_b64)),
        std::nullopt};
  });
}

int run_dkim_record(Context& ctx, const Args& args) {
  int exit = kExitOk;
  if (!domain_and_selector(ctx, args, &exit)) return exit;
  const std::string domain = policy::to_lower(args.arg(0));
  const std::string selector = policy::to_lower(args.arg(1));
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  auto rows = query_rows(
      db.get(), "SELECT algorithm, private_key FROM dkim_keys WHERE domain = ?1 AND selector = ?2",
      {domain, selector});
  if (!rows) return fail(ctx, rows.error());
  if (rows->empty()) return fail(ctx, fmt::format("no DKIM key '{}' for {}", selector, domain));
  const std::string algorithm = (*rows)[0][0].value_or("");
  auto pub = policy::dkim_public_key(algorithm, (*rows)[0][1].value_or(""));
  if (!pub)
    return fail(ctx, fmt::format("dkim_keys row '{}/{}': {}", domain, selector, pub.error()));
  const std::string record = policy::dkim_txt_record(domain, selector, algorithm, *pub);
  if (ctx.json)
    print_rows(ctx, {{"RECORD"}}, {{record}}, "");
  else
    ctx.out << record << "\n";
  return kExitOk;
}

int run_dkim_list(Context& ctx, const Args& args) {
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  std::string sql =
      "SELECT domain, selector, algorithm, enabled, "
      "strftime('%Y-%m-%dT%H:%M:%SZ', created, 'unixepoch'), comment FROM dkim_keys";
  std::vector<std::string> params;
  if (!args.positional().empty()) {
    sql += " WHERE domain = ?1";
    params.push_back(args.arg(0));
  }
  sql += " ORDER BY domain, created DESC, selector";
  auto rows = query_rows(db.get(), sql, params);
  if (!rows) return fail(ctx, rows.error());
  print_rows(ctx,
             {{"DOMAIN"},
              {"SELECTOR"},
              {"ALGORITHM"},
              {"ENABLED", Column::Kind::kBool},
              {"CREATED"},
              {"COMMENT"}},
             *rows, "no DKIM keys");
  return kExitOk;
}

int run_dkim_enable(Context& ctx, const Args& args) { return set_enabled(ctx, args, true); }
int run_dkim_disable(Context& ctx, const Args& args) { return set_enabled(ctx, args, false); }

int run_dkim_remove(Context& ctx, const Args& args) {
  // Any spelling removes the row (COLLATE NOCASE), even one the validator would refuse.
  const std::string& domain = args.arg(0);
  const std::string& selector = args.arg(1);
  auto db = open_policy_db(ctx);
  if (!db) return kExitFailure;
  return apply_change(ctx, db.get(), [&](sqlite3* h) -> Expected<ChangeResult, std::string> {
    auto r = run_statement(h, "DELETE FROM dkim_keys WHERE domain = ?1 AND selector = ?2",
                           {domain, selector});
    if (!r) return unexpected(r.error());
    if (*r == 0) return unexpected(fmt::format("no DKIM key '{}' for {}", selector, domain));
    return ChangeResult{fmt::format("removed DKIM key '{}' for {}; also remove its DNS record "
                                    "once mail signed with it has been delivered",
                                    policy::to_lower(selector), policy::to_lower(domain)),
                        std::nullopt};
  });
}

}  // namespace mailgate::ctl
