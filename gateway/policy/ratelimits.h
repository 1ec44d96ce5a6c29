// policy/ratelimits.h — the `ratelimits` and `ratelimit_exemptions` tables of the policy
// snapshot: their validation (shared with mailgatectl) and the answers the ratelimit plugin
// reads through policy_lookup.
// Owns: the meaning of a limit row (what is counted, keyed by what, rate/period/burst, action)
// and of an exemption row; the lookup values:
//   "ratelimits"                   key "*"      value: the ENABLED limits as a JSON array, by
//       name: [{"name":"per-24","what":"messages","key":["client_ip"],"ipv4_prefix":24,
//       "ipv6_prefix":64,"rate":30,"period":60,"burst":0,"action":"tempfail"}, ...];
//       not found when there is none
//   "ratelimit_exemptions:network"   key: IP address  value: the exempt CIDR containing it
//   "ratelimit_exemptions:sender"    key: address     value: the exempt address or domain
//   "ratelimit_exemptions:auth_user" key: user name   value: the user name as stored
// Threading: immutable once read. Must not touch: other tables (snapshot.cc reads those).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/cidr.h"
#include "policy/validate.h"

namespace mailgate::policy {

struct RateLimitRow {
  std::string name;
  std::string what;              // connections | messages | recipients | bytes
  std::vector<std::string> key;  // parts, in the order written
  int64_t ipv4_prefix = 32;
  int64_t ipv6_prefix = 64;
  int64_t rate = 0;
  int64_t period = 0;  // seconds
  int64_t burst = 0;   // 0 = rate
  std::string action = "tempfail";
  bool enabled = true;
};

// "must be connections, messages, recipients or bytes (got 'x')".
Problem check_ratelimit_what(std::string_view what);
// The key against what it counts: known parts, no repeats, connections only client_ip,
// messages and bytes no recipient parts.
Problem check_ratelimit_key(std::string_view what, std::string_view key);
Problem check_ratelimit_action(std::string_view action);
// An exemption value of `kind` (network: IP or CIDR; sender: address or domain; auth_user).
Problem check_ratelimit_exemption(std::string_view kind, std::string_view value);

class RateLimitTable {
 public:
  // Reads both tables; each bad row adds a problem naming it:
  //   "ratelimits row 'x': key 'client_ip+recipient' cannot count messages: ..."
  void read(sqlite3* db, std::vector<std::string>* problems);
  // See the header comment. False for no match or an unknown table.
  bool lookup(std::string_view table, std::string_view key, std::string* out) const;
  const std::vector<RateLimitRow>& rows() const { return rows_; }

 private:
  std::vector<RateLimitRow> rows_;  // every row, by name
  std::string enabled_json_;        // "" when no enabled row
  PrefixTable networks_;
  std::vector<std::string> network_text_;
  std::unordered_map<std::string, std::string> senders_;     // lower-case -> as stored
  std::unordered_map<std::string, std::string> auth_users_;  // lower-case -> as stored
};

}  // namespace mailgate::policy
