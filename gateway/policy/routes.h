// policy/routes.h — the `routes` table of the policy snapshot: row validation
// (shared with mailgatectl), the index that finds a recipient's route, and the
// answer the routing plugin reads through policy_lookup. Owns: the meaning of a
// route pattern (exact address, one-'*' wildcard in the local part, a domain's
// catch-all '@domain'), of a destination (an address or 'drop'), the precedence
// among patterns, and the lookup value:
//   "routes"  key: recipient address   value: the most specific ENABLED route,
//   as JSON:
//       {"pattern":"sales-*@example.com","action":"forward","destinations":["a@x.net","b@y.org"]}
//       {"pattern":"@example.com","action":"drop"}
//     not found when no enabled route matches.
// Precedence: the exact address; else, among the domain's wildcards, the one
// with the most literal characters (ties: the pattern that sorts first); else
// the domain's catch-all. All comparisons are case-insensitive (patterns and
// destinations are kept lower-case). Threading: immutable once read. Must not
// touch: other tables (snapshot.cc reads those).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/validate.h"

namespace mailgate::policy {

enum class RouteKind {
  kExact,     // "user@example.com"
  kWildcard,  // "sales-*@example.com": one '*' in the local part, any run of
              // characters
  kCatchAll,  // "@example.com": any address of the domain
};

// The destination that drops the recipient instead of forwarding it.
inline constexpr std::string_view kRouteDrop = "drop";

// One row of `routes`, validated; pattern and destination lower-case.
struct RouteRow {
  int64_t id = 0;
  std::string pattern;
  std::string destination;  // an address, or "drop"
  bool enabled = true;
};

// The pattern's kind, or a problem: "'x' is not a route pattern: ..." (messages
// carry their own subject).
Problem check_route_pattern(std::string_view pattern, RouteKind *kind = nullptr);
// An address (no '*') or 'drop'.
Problem check_route_destination(std::string_view destination);

class RouteTable {
 public:
  struct Route {
    std::string pattern;
    RouteKind kind = RouteKind::kExact;
    bool drop = false;
    std::vector<std::string> destinations;  // in row-id order; empty when drop
    std::string json;                       // the lookup value
  };

  // Reads the table; each bad row adds a problem naming it:
  //   "routes row 7: pattern 'a*b*@x.org' is not a route pattern: at most one
  //   '*'" "routes row 9: pattern '@example.com' has 'drop' and other
  //   destinations (row 8)"
  void read(sqlite3 *db, std::vector<std::string> *problems);
  // The most specific enabled route for `address`, or nullptr.
  const Route *match(std::string_view address) const;
  // See the header comment. False for no match or an unknown table.
  bool lookup(std::string_view table, std::string_view key, std::string *out) const;
  const std::vector<RouteRow> &rows() const { return rows_; }

 private:
  std::vector<RouteRow> rows_;                           // every valid row, by id
  std::vector<Route> routes_;                            // enabled patterns
  std::unordered_map<std::string, uint32_t> exact_;      // address -> route
  std::unordered_map<std::string, uint32_t> catch_all_;  // domain -> route
  std::unordered_map<std::string, std::vector<uint32_t>>
      wildcards_;  // domain -> routes, best first
};

}  // namespace mailgate::policy
