// policy/spam_thresholds.h — the `spam_thresholds` table of the policy snapshot: row
// validation and the answer the spamscore plugin reads through policy_lookup.
// Owns: the meaning of a threshold row and the lookup value:
//   "spam_thresholds"  key: a recipient domain (case-insensitive; exact, no parent fallback)
//       value: that domain's row, else the '*' row, as a JSON object:
//       {"domain":"example.com","add_header":5.0,"tempfail":null,"reject":10.0}
//       (null = that step is off); not found when neither exists
// Rules: domain is '*' or a valid domain name; each threshold, when set, is a finite number;
// the steps that are set rise: add_header <= tempfail <= reject (a message refused at a lower
// score than it would be marked makes no sense and is refused with the row named).
// Threading: immutable once read. Must not touch: other tables (snapshot.cc reads those).
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/validate.h"

namespace mailgate::policy {

struct SpamThresholdRow {
  std::string domain;  // lower-case, or "*"
  std::optional<double> add_header;
  std::optional<double> tempfail;
  std::optional<double> reject;
};

// The order of the steps that are set: "reject (5) must not be below tempfail (8)".
Problem check_spam_threshold_order(const std::optional<double>& add_header,
                                   const std::optional<double>& tempfail,
                                   const std::optional<double>& reject);

class SpamThresholdTable {
 public:
  // Reads every row; each bad row adds a problem naming it:
  //   "spam_thresholds row 'example.com': reject (5) must not be below tempfail (8)".
  void read(sqlite3* db, std::vector<std::string>* problems);
  // See the header comment. False for no match or another table.
  bool lookup(std::string_view table, std::string_view key, std::string* out) const;
  const std::vector<SpamThresholdRow>& rows() const { return rows_; }

 private:
  std::vector<SpamThresholdRow> rows_;                 // by domain
  std::unordered_map<std::string, std::string> json_;  // lower-case domain or "*" -> object
};

}  // namespace mailgate::policy
