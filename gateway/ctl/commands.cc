// ctl/commands.cc — mailgatectl's command table: every command, its arguments and options,
// and the function that runs it. One screen to see the whole CLI. See commands.h.
#include "ctl/commands.h"

namespace mailgate::ctl {
namespace {

const OptionSpec kComment{"--comment", "TEXT", "free text for the admin"};

const OptionSpec kPluginPath{"--path", "PATH",
                             "the .so, absolute or relative to the gateway's plugin directory"};
const OptionSpec kPluginOptions[] = {
    {"--profile", "PROFILE", "listener profile the entry applies to ('*' = all; default '*')"},
    {"--settings", "JSON", "settings object passed to the plugin (default '{}')"},
    {"--fail-mode", "MODE", "open or tempfail: what a plugin failure becomes (default tempfail)"},
    {"--timeout-ms", "N", "time budget of one callback in ms, 1..600000 (default 5000)"},
};

// The Bayes token store of learn and classify (default: the bayes plugin's settings).
const OptionSpec kBayesDb{"--bayes-db", "FILE", "the SQLite token file (learn creates it)"};
const OptionSpec kBayesRedis{"--redis", "HOST:PORT",
                             "the gateway's Redis, for the plugin's backend \"store\""};
const OptionSpec kBayesPrefix{"--key-prefix", "PREFIX",
                              "with --redis: the plugin's key_prefix (default bayes)"};

// The attribute options of add and set; add requires --path.
std::vector<OptionSpec> plugin_options(bool path_required,
                                       std::initializer_list<OptionSpec> extra) {
  OptionSpec path = kPluginPath;
  path.required = path_required;
  std::vector<OptionSpec> out{path};
  out.insert(out.end(), std::begin(kPluginOptions), std::end(kPluginOptions));
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

}  // namespace

// clang-format off: one row per command reads better than the formatter's layout.
const std::vector<CommandSpec>& command_table() {
  static const std::vector<CommandSpec> table = {
      {{"init"}, "", "create the policy database with the current schema, or migrate it",
       0, 0, {}, run_init},

      {{"policy", "domain", "add"}, "DOMAIN [--comment TEXT]", "add a local domain", 1, 1,
       {kComment}, run_domain_add},
      {{"policy", "domain", "remove"}, "DOMAIN", "remove a local domain", 1, 1, {},
       run_domain_remove},
      {{"policy", "domain", "list"}, "", "list local domains", 0, 0, {}, run_domain_list},

      {{"policy", "network", "add"}, "CIDR [--comment TEXT]", "add a relay network", 1, 1,
       {kComment}, run_network_add},
      {{"policy", "network", "remove"}, "CIDR", "remove a relay network", 1, 1, {},
       run_network_remove},
      {{"policy", "network", "list"}, "", "list relay networks", 0, 0, {}, run_network_list},

      {{"policy", "access", "add"},
       "--stage STAGE --pattern PATTERN --action ACTION [--code N] [--enhanced X.Y.Z] "
       "[--text TEXT] [--comment TEXT]",
       "add an access rule", 0, 0,
       {{"--stage", "STAGE",
         "client, helo, sender, sender_domain, recipient or recipient_domain", true},
        {"--pattern", "PATTERN",
         "client: IP or CIDR; helo: name or .suffix; sender/recipient: address; "
         "*_domain: domain or .suffix",
         true},
        {"--action", "ACTION", "allow, deny or tempfail", true},
        {"--code", "N", "reply code (5xx for deny, 4xx for tempfail)"},
        {"--enhanced", "X.Y.Z", "enhanced status code (5.x.x for deny, 4.x.x for tempfail)"},
        {"--text", "TEXT", "reply text"},
        kComment},
       run_access_add},
      {{"policy", "access", "remove"}, "ID", "remove an access rule", 1, 1, {},
       run_access_remove},
      {{"policy", "access", "list"}, "[--stage STAGE]", "list access rules", 0, 0,
       {{"--stage", "STAGE", "only this stage"}}, run_access_list},

      {{"policy", "plugin", "add"},
       "--name NAME --path PATH [--profile PROFILE] [--settings JSON] [--fail-mode MODE] "
       "[--timeout-ms N] [--position K] [--disabled]",
       "add a plugin to the chain (at the end, or at position K)", 0, 0,
       plugin_options(true, {{"--name", "NAME", "the entry's name, [a-z0-9_-]", true},
                       {"--position", "K", "1-based place in the chain (default: last)"},
                       {"--disabled", "", "add it disabled"}}),
       run_plugin_add},
      {{"policy", "plugin", "remove"}, "NAME", "remove a plugin and its plugin_settings rows",
       1, 1, {}, run_plugin_remove},
      {{"policy", "plugin", "list"}, "", "list the chain in order", 0, 0, {}, run_plugin_list},
      {{"policy", "plugin", "enable"}, "NAME", "enable a plugin", 1, 1, {}, run_plugin_enable},
      {{"policy", "plugin", "disable"}, "NAME", "disable a plugin (keeps its row)", 1, 1, {},
       run_plugin_disable},
      {{"policy", "plugin", "order"}, "NAME POSITION", "move a plugin to a 1-based position", 2,
       2, {}, run_plugin_order},
      {{"policy", "plugin", "set"},
       "NAME [--path PATH] [--profile PROFILE] [--settings JSON] [--fail-mode MODE] "
       "[--timeout-ms N]",
       "change a plugin's attributes", 1, 1, plugin_options(false, {}), run_plugin_set},

      {{"policy", "settings", "set"}, "PLUGIN DOMAIN JSON",
       "set a plugin's settings for a domain ('*' = the plugin's default)", 3, 3, {},
       run_settings_set},
      {{"policy", "settings", "remove"}, "PLUGIN DOMAIN", "remove a plugin's domain settings", 2,
       2, {}, run_settings_remove},
      {{"policy", "settings", "list"}, "[PLUGIN]", "list per-domain plugin settings", 0, 1, {},
       run_settings_list},

      {{"policy", "ratelimit", "add"},
       "NAME --what WHAT --key KEY --rate N --period SECONDS [--burst N] [--ipv4-prefix N] "
       "[--ipv6-prefix N] [--action ACTION] [--disabled] [--comment TEXT]",
       "add a rate limit (the ratelimit plugin)", 1, 1,
       {{"--what", "WHAT", "connections, messages, recipients or bytes", true},
        {"--key", "KEY",
         "client_ip, helo, sender, sender_domain, recipient, recipient_domain, auth_user, or "
         "several joined by '+'",
         true},
        {"--rate", "N", "events (bytes for --what bytes) per period", true},
        {"--period", "SECONDS", "the period", true},
        {"--burst", "N", "how many at once (default 0 = the rate)"},
        {"--ipv4-prefix", "N", "count client_ip per IPv4 network of N bits (default 32)"},
        {"--ipv6-prefix", "N", "count client_ip per IPv6 network of N bits (default 64)"},
        {"--action", "ACTION", "tempfail (451 4.7.1, the default) or reject (550 5.7.1)"},
        {"--disabled", "", "add it switched off"},
        kComment},
       run_ratelimit_add},
      {{"policy", "ratelimit", "remove"}, "NAME", "remove a rate limit", 1, 1, {},
       run_ratelimit_remove},
      {{"policy", "ratelimit", "list"}, "", "list rate limits", 0, 0, {}, run_ratelimit_list},
      {{"policy", "ratelimit", "exempt"}, "KIND VALUE [--comment TEXT]",
       "exempt a network (IP/CIDR), sender (address or domain) or auth_user from rate limits", 2,
       2, {kComment}, run_ratelimit_exempt},
      {{"policy", "ratelimit", "unexempt"}, "KIND VALUE", "remove a rate limit exemption", 2, 2,
       {}, run_ratelimit_unexempt},
      {{"policy", "ratelimit", "exemptions"}, "", "list rate limit exemptions", 0, 0, {},
       run_ratelimit_exemptions},
      {{"policy", "route", "add"}, "PATTERN DESTINATIONS [--disabled] [--comment TEXT]",
       "route an address ('user@d'), a wildcard ('sales-*@d') or a domain ('@d') to "
       "addresses (comma list) or 'drop' (the routing plugin)", 2, 2,
       {{"--disabled", "", "add it switched off"}, kComment}, run_route_add},
      {{"policy", "route", "remove"}, "PATTERN [DESTINATION]",
       "remove a route (every destination, or one)", 1, 2, {}, run_route_remove},
      {{"policy", "route", "list"}, "", "list routes", 0, 0, {}, run_route_list},
      {{"policy", "route", "test"}, "ADDRESS", "show the route the gateway applies to an address",
       1, 1, {}, run_route_test},
      {{"dkim", "keygen"},
       "DOMAIN SELECTOR [--algorithm rsa|ed25519] [--bits N] [--force] [--disabled] "
       "[--comment TEXT]",
       "make a DKIM signing key, store it and print the DNS TXT record to publish", 2, 2,
       {{"--algorithm", "ALG", "rsa (rsa-sha256, the default) or ed25519 (ed25519-sha256)"},
        {"--bits", "N", "RSA key size, 1024..4096 (default 2048)"},
        {"--force", "", "replace an existing key of that domain and selector"},
        {"--disabled", "", "store it disabled (publish the record first, enable later)"},
        kComment},
       run_dkim_keygen},
      {{"dkim", "list"}, "[DOMAIN]", "list DKIM signing keys (never the private keys)", 0, 1,
       {}, run_dkim_list},
      {{"dkim", "record"}, "DOMAIN SELECTOR", "print a stored key's DNS TXT record again", 2, 2,
       {}, run_dkim_record},
      {{"dkim", "enable"}, "DOMAIN SELECTOR", "sign with a DKIM key again", 2, 2, {},
       run_dkim_enable},
      {{"dkim", "disable"}, "DOMAIN SELECTOR", "stop signing with a DKIM key (keeps it)", 2, 2,
       {}, run_dkim_disable},
      {{"dkim", "remove"}, "DOMAIN SELECTOR", "delete a DKIM key", 2, 2, {}, run_dkim_remove},

      {{"learn"},
       "PATH... --spam|--ham [--bayes-db FILE] [--redis HOST:PORT] [--key-prefix PREFIX]",
       "teach the Bayes classifier: message files, mboxes, maildirs or directories of messages",
       1, 1000000,
       {{"--spam", "", "the messages are spam"},
        {"--ham", "", "the messages are ham (wanted mail)"},
        kBayesDb, kBayesRedis, kBayesPrefix},
       run_learn},
      {{"classify"},
       "[--bayes-db FILE] [--redis HOST:PORT] [--key-prefix PREFIX] [--spam-cutoff P] "
       "[--ham-cutoff P] FILE...",
       "print the Bayes spam probability and verdict (spam, unsure, ham) of each message", 1,
       1000000,
       {kBayesDb, kBayesRedis, kBayesPrefix,
        {"--spam-cutoff", "P", "spam at or above this probability (default: the plugin's, 0.9)"},
        {"--ham-cutoff", "P", "ham at or below this probability (default: the plugin's, 0.2)"}},
       run_classify},

      {{"check"},
       "--client-ip IP [--client-name NAME] [--helo NAME] --from ADDR --to ADDR [--to ADDR...] "
       "[--profile PROFILE] [--plugin-dir DIR] [--auth-user USER] [--dns-servers LIST] "
       "[--dns-timeout-ms N] FILE",
       "run the profile's plugin chain over a message file ('-' = stdin) as the gateway would; "
       "exit 0 accept, 3 reject, 4 tempfail, 5 discard",
       1, 1,
       {{"--client-ip", "IP", "the client's address", true},
        {"--client-name", "NAME", "the client's verified host name (default 'unknown')"},
        {"--helo", "NAME", "the HELO/EHLO argument (default: the address literal [IP])"},
        {"--from", "ADDR", "envelope sender; '' for the null sender <>", true},
        {"--to", "ADDR", "envelope recipient; repeat for more", true},
        {"--profile", "PROFILE", "listener profile whose chain runs (default 'inbound')"},
        {"--plugin-dir", "DIR",
         "where relative plugin paths point (default " MAILGATE_DEFAULT_PLUGIN_DIR ")"},
        {"--auth-user", "USER", "as if the client had authenticated as USER"},
        {"--dns-servers", "LIST",
         "DNS for plugins: IP[@PORT],... forwarders, 'system', 'recursive' or 'none' "
         "(default 'none': no query leaves the machine)"},
        {"--dns-timeout-ms", "N", "longest a DNS query may take, 1..300000 (default 5000)"}},
       run_check},

      {{"trace"},
       "[--trace-db FILE] [--from ADDR] [--to ADDR] [--client-ip IP] [--message-id ID] "
       "[--queue-id ID] [--status STATUS] [--since TIME] [--until TIME] [--limit N]",
       "find recent transactions in the gateway's trace (--trace_db), newest first, with their "
       "envelope, plugin actions, symbols, score, verdict and backend reply",
       0, 0,
       {{"--trace-db", "FILE", "the trace database (default: $MAILGATE_TRACE_DB, else "
                               "/var/lib/mailgate/trace.db)"},
        {"--from", "ADDR", "envelope sender (exact, case-insensitive; '' = null sender)"},
        {"--to", "ADDR", "a recipient (exact, case-insensitive)"},
        {"--client-ip", "IP", "client address"},
        {"--message-id", "ID", "Message-ID header, with or without <>"},
        {"--queue-id", "ID", "the backend's queue id (Postfix: \"queued as ID\")"},
        {"--status", "STATUS", "accepted, rejected, tempfail, discarded or aborted"},
        {"--since", "TIME", "not before: 30m, 2h, 7d (ago), Unix seconds or 2026-11-22T10:00:00Z"},
        {"--until", "TIME", "not after (same forms)"},
        {"--limit", "N", "most transactions shown (default 50)"}},
       run_trace},
  };
  return table;
}
// clang-format on

}  // namespace mailgate::ctl
