// policy/snapshot.h — an immutable, indexed copy of the whole policy database.
// Owns: reading every table once, validating every row (validate.h), and the indexes the hot
// path asks: the plugin chain per listener profile, local domains (hash set), relay networks
// and client access rules (CIDR tries, cidr.h), name/address access rules (hash maps, with
// '.suffix' patterns in their own map), per-domain plugin settings (hash map), DKIM signing keys
// by domain (hash map of ready-made JSON answers, dkim_key.h checks the keys).
// Lookups are case-insensitive for names, domains and addresses and never allocate for the
// name kinds; nothing here touches SQLite after load.
// Threading: a Snapshot is immutable once built; share it as std::shared_ptr<const Snapshot>
// and read it from any thread. PolicyStore (policy_store.h) swaps in new ones.
// Must not touch: the chain, sessions or plugins (they read a snapshot, never the reverse).
#pragma once

#include <sqlite3.h>

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "policy/cidr.h"
#include "policy/dnsbl_zones.h"
#include "policy/ratelimits.h"
#include "policy/routes.h"
#include "policy/spam_rules.h"
#include "policy/spam_thresholds.h"
#include "util/expected.h"

namespace mailgate::policy {

enum class FailMode {
  kOpen,      // a failing plugin counts as CONTINUE
  kTempfail,  // a failing plugin answers 451 4.3.0 (the default)
};

// One row of `plugins`, validated. Paths are as stored; see resolve_plugin_path().
struct PluginEntry {
  int64_t id = 0;
  int64_t position = 0;
  std::string name;  // [a-z0-9_-]{1,64}, unique
  std::string path;  // *.so, absolute or relative to the plugin directory
  bool enabled = true;
  std::string profile = "*";         // listener profile, or "*" for every listener
  std::string settings_json = "{}";  // a JSON object, verbatim from the database
  FailMode fail_mode = FailMode::kTempfail;
  std::chrono::milliseconds timeout{5000};
};

// `path` itself when absolute (or when plugin_dir is empty), else plugin_dir/path.
std::string resolve_plugin_path(std::string_view path, std::string_view plugin_dir);

enum class AccessStage {
  kClient,           // connecting IP: IP or CIDR patterns, longest prefix wins
  kHelo,             // HELO/EHLO name: exact, or '.suffix'
  kSender,           // MAIL FROM address: exact (case-insensitive)
  kSenderDomain,     // MAIL FROM domain: exact, or '.suffix' (subdomains)
  kRecipient,        // RCPT TO address: exact (case-insensitive)
  kRecipientDomain,  // RCPT TO domain: exact, or '.suffix' (subdomains)
};
inline constexpr size_t kAccessStageCount = 6;
std::optional<AccessStage> parse_access_stage(std::string_view text);
std::string_view to_string(AccessStage stage);

enum class AccessAction {
  kAllow,     // accept at this stage (skip later access checks of the stage)
  kDeny,      // permanent refusal (5xx)
  kTempfail,  // temporary refusal (4xx)
};
std::string_view to_string(AccessAction action);

// One row of `dkim_keys`, validated (dkim_key.h). Domain and selector lower-case.
struct DkimKey {
  std::string domain;
  std::string selector;
  std::string algorithm;    // "rsa-sha256" or "ed25519-sha256"
  std::string private_key;  // PEM
  bool enabled = true;
  int64_t created = 0;  // Unix seconds
};

// One row of `access`, validated. Empty optionals mean "the default reply part".
struct AccessRule {
  int64_t id = 0;
  AccessStage stage = AccessStage::kClient;
  std::string pattern;  // as stored (client: canonical CIDR text is in `prefix`)
  AccessAction action = AccessAction::kDeny;
  std::optional<int> code;
  std::optional<std::string> enhanced;
  std::optional<std::string> text;

  // The reply with defaults filled in: deny 554 5.7.1 "Access denied", tempfail 450 4.7.1
  // "Try again later". For allow: 0, "", "".
  int reply_code() const;
  std::string_view reply_enhanced() const;
  std::string_view reply_text() const;
  // "deny 554 5.7.1 Access denied" or "allow" (the policy_lookup value for access:<stage>).
  std::string summary() const;
};

// Transparent case-insensitive (ASCII) hashing, so lookups take string_view and never allocate.
struct CaseInsensitiveHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const;
};
struct CaseInsensitiveEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};

class Snapshot {
 public:
  // Process-wide load counter: every successfully built snapshot gets the next number, so a
  // larger version is always the newer policy. Starts at 1.
  uint64_t version() const { return version_; }
  int schema_version() const { return schema_version_; }
  const std::string& source() const { return source_; }  // the database path ("" if unknown)

  // Every plugin row (enabled or not), ordered by position, then name.
  const std::vector<PluginEntry>& plugins() const { return plugins_; }
  // The enabled entries whose profile is `profile` or '*', in chain order. The pointers (like
  // every pointer and reference a Snapshot hands out) live as long as the snapshot.
  std::vector<const PluginEntry*> plugins_for(std::string_view profile) const;
  const PluginEntry* plugin(std::string_view name) const;

  bool is_local_domain(std::string_view domain) const;
  size_t local_domain_count() const { return local_domains_.size(); }

  bool is_relay_network(const asio::ip::address& address) const;
  // The relay network (canonical CIDR text) containing `address`, longest prefix first.
  const std::string* relay_network_for(const asio::ip::address& address) const;

  // The most specific rule of `stage` matching `value`, or nullptr. Client values are IP
  // address text (IPv4-mapped IPv6 is matched as IPv4); others are names/addresses/domains,
  // compared case-insensitively. Precedence: longest CIDR prefix; an exact pattern before any
  // '.suffix'; among suffixes the longest. An exact domain pattern does not match its
  // subdomains, and '.example.com' does not match 'example.com' itself.
  const AccessRule* match_access(AccessStage stage, std::string_view value) const;
  const AccessRule* match_access(std::string_view stage, std::string_view value) const;
  const AccessRule* match_client(const asio::ip::address& address) const;
  const std::vector<AccessRule>& access_rules() const { return access_rules_; }

  // Settings JSON for `plugin` in `domain`: the domain's row, else the '*' row, else nullptr.
  const std::string* plugin_settings(std::string_view plugin, std::string_view domain) const;

  // The ratelimits and ratelimit_exemptions tables (policy/ratelimits.h).
  const RateLimitTable& ratelimits() const { return ratelimits_; }
  // The dnsbl_zones table (policy/dnsbl_zones.h).
  const DnsblZoneTable& dnsbl_zones() const { return dnsbl_zones_; }
  // The spam_rules and spam_thresholds tables (policy/spam_rules.h, policy/spam_thresholds.h).
  const SpamRuleTable& spam_rules() const { return spam_rules_; }
  const SpamThresholdTable& spam_thresholds() const { return spam_thresholds_; }
  // The routes table (policy/routes.h).
  const RouteTable& routes() const { return routes_; }

  // Every dkim_keys row (enabled or not), by domain, then newest first, then selector.
  const std::vector<DkimKey>& dkim_keys() const { return dkim_keys_; }

  // Generic read-only lookup behind the SDK's policy_lookup host service. Tables and values:
  //   "local_domains"   key: domain        value: "1"
  //   "relay_networks"  key: IP address    value: the matching CIDR ("10.0.0.0/8")
  //   "plugin_settings" key: "plugin/domain" value: the settings JSON (domain row, else '*')
  //   "access:STAGE"    key: as match_access value: AccessRule::summary()
  //   "ratelimits", "ratelimit_exemptions:KIND"  see policy/ratelimits.h
  //   "dnsbl_zones"     key "*"            see policy/dnsbl_zones.h
  //   "spam_rules", "spam_thresholds"  see policy/spam_rules.h, policy/spam_thresholds.h
  //   "routes"          key: recipient address  see policy/routes.h
  //   "dkim_keys"       key: domain (case-insensitive, exact: no parent-domain fallback)
  //                     value: the domain's ENABLED keys as a JSON array, newest first:
  //                     [{"selector":"sel2","algorithm":"ed25519-sha256","private_key":"-----
  //                     BEGIN PRIVATE KEY-----\n..."}, ...]; not found when it has none
  // Returns false (and leaves *out alone) for no match or an unknown table.
  bool lookup(std::string_view table, std::string_view key, std::string* out) const;

 private:
  friend class SnapshotBuilder;
  Snapshot() = default;

  using NameIndex =
      std::unordered_map<std::string, uint32_t, CaseInsensitiveHash, CaseInsensitiveEqual>;
  struct NameRules {
    NameIndex exact;   // pattern -> index into access_rules_
    NameIndex suffix;  // ".example.com" -> index
  };
  const AccessRule* match_name(const NameRules& rules, std::string_view value) const;

  uint64_t version_ = 0;
  int schema_version_ = 0;
  std::string source_;
  std::vector<PluginEntry> plugins_;
  std::unordered_set<std::string, CaseInsensitiveHash, CaseInsensitiveEqual> local_domains_;
  PrefixTable relay_networks_;
  std::vector<std::string> relay_network_text_;  // PrefixTable values index this
  std::vector<AccessRule> access_rules_;         // ordered by id
  PrefixTable client_rules_;
  NameRules name_rules_[kAccessStageCount];  // by AccessStage; kClient's entry is unused
  std::unordered_map<std::string, std::string> plugin_settings_;  // "plugin/domain" lower-case
  RateLimitTable ratelimits_;
  DnsblZoneTable dnsbl_zones_;
  SpamRuleTable spam_rules_;
  SpamThresholdTable spam_thresholds_;
  RouteTable routes_;
  std::vector<DkimKey> dkim_keys_;
  std::unordered_map<std::string, std::string> dkim_keys_json_;  // lower-case domain -> array
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

// Reads and validates every table through `db` (inside one read transaction, so the snapshot
// is consistent) and builds a Snapshot. On failure returns every problem found (up to 50),
// one per entry, each naming the table, the row and what is wrong:
//   "access row 7: bad CIDR '10.0.0.0/33': prefix length must be 0..32"
//   "plugins row 'spf': settings is not valid JSON: parse error at line 1, column 2: ..."
//   "plugins row 'x': fail_mode must be open or tempfail (got 'closed')"
//   "plugin_settings row 'spf/example.com': unknown plugin 'spf'"
// The schema must be current (see migrate()). Does not assign a version when
// `assign_version` is false (mailgatectl's dry runs).
Expected<SnapshotPtr, std::vector<std::string>> read_snapshot(sqlite3* db, std::string source,
                                                              bool assign_version = true);

// Opens `path` (which must exist), applies pending migrations, and reads it. Errors are one
// string: an open/migration error, or the row problems joined with "; ".
Expected<SnapshotPtr, std::string> load_snapshot(const std::string& path);

// Joins problems for one log line: "a; b; c".
std::string join_problems(const std::vector<std::string>& problems);

}  // namespace mailgate::policy
