// policy/dnsbl_zones.h — the `dnsbl_zones` table of the policy snapshot: row validation (shared
// with mailgatectl) and the answer the dnsbl plugin reads through policy_lookup.
// Owns: the meaning of a zone row (kind ip|domain, symbol, score, return codes, timeout) and the
// lookup value:
//   "dnsbl_zones"  key "*"  value: the ENABLED zones as a JSON array, by zone (lower-case):
//       [{"zone":"zen.example.org","kind":"ip","symbol":"RBL_ZEN","score":1.0,
//         "codes":{"127.0.0.2":{"symbol":"RBL_ZEN_SBL","score":4.0}},"timeout_ms":2000}, ...];
//       a code without "score" gets the row's score; not found when no zone is enabled
// Threading: immutable once read. Must not touch: other tables (snapshot.cc reads those).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/validate.h"

namespace mailgate::policy {

struct DnsblCode {
  std::string address;  // "127.0.0.2"
  std::string symbol;
  double score = 0;
};

struct DnsblZoneRow {
  std::string zone;  // lower-case, no trailing dot
  std::string kind;  // ip | domain
  std::string symbol;
  double score = 1;
  std::vector<DnsblCode> codes;  // by address
  int64_t timeout_ms = 2000;
  bool enabled = true;
};

// A symbol name: [A-Z0-9_]{1,64}.
Problem check_dnsbl_symbol(std::string_view symbol);
// The zone: a DNS name of at most 200 characters (a query prepends up to 63 more).
Problem check_dnsbl_zone(std::string_view zone);
Problem check_dnsbl_kind(std::string_view kind);
// The codes JSON: an object whose keys are IPv4 addresses in 127.0.0.0/8 and whose values are
// objects {"symbol": NAME, "score": NUMBER (optional)}. On success fills *out (by address).
Problem parse_dnsbl_codes(std::string_view json, double row_score, std::vector<DnsblCode>* out);

class DnsblZoneTable {
 public:
  // Reads the table; each bad row adds a problem naming it:
  //   "dnsbl_zones row 'zen.test': codes key '127.0.0.300' is not an IPv4 address in 127.0.0.0/8"
  void read(sqlite3* db, std::vector<std::string>* problems);
  // See the header comment. False for no match or an unknown table.
  bool lookup(std::string_view table, std::string_view key, std::string* out) const;
  const std::vector<DnsblZoneRow>& rows() const { return rows_; }

 private:
  std::vector<DnsblZoneRow> rows_;  // every valid row, by zone
  std::string enabled_json_;        // "" when no enabled row
};

}  // namespace mailgate::policy
