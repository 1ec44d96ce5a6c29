// policy/spam_rules.h — the `spam_rules` table of the policy snapshot: row validation (every
// pattern is compiled with RE2, the library the spamscore plugin matches with) and the answer
// the spamscore plugin reads through policy_lookup.
// Owns: the meaning of a rule row and the lookup value:
//   "spam_rules"  key "*"  value: the ENABLED rules as a JSON array, by name:
//       [{"name":"CASINO","kind":"body","header":null,"pattern":"(?i)casino","score":2.5,
//         "description":"mentions a casino"}, ...]; not found when there is none
// A pattern that does not compile refuses the whole snapshot with a problem naming the row
// ("spam_rules row 'FOO': pattern does not compile: missing ): (abc"), so the gateway keeps the
// policy (and the rule set) it had, and mailgatectl refuses the edit.
// Threading: immutable once read. Must not touch: other tables (snapshot.cc reads those).
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/validate.h"

namespace mailgate::policy {

struct SpamRuleRow {
  std::string name;                   // the symbol: [A-Z0-9_]{1,64}
  std::string kind;                   // header | subject | body | url | raw
  std::optional<std::string> header;  // the field name, kind 'header' only
  std::string pattern;                // RE2 syntax
  double score = 0;
  std::optional<std::string> description;
  bool enabled = true;
};

// "must be header, subject, body, url or raw (got 'x')".
Problem check_spam_rule_kind(std::string_view kind);
// [A-Z0-9_]{1,64}: the symbol a match adds.
Problem check_spam_rule_name(std::string_view name);
// Compiles `pattern` with RE2 (UTF-8); the problem is RE2's own message with the fragment.
Problem check_spam_rule_pattern(std::string_view pattern);

class SpamRuleTable {
 public:
  // Reads every row (disabled ones too, so a rule can be enabled safely); each bad row adds a
  // problem naming it: "spam_rules row 'FOO': pattern does not compile: ...".
  void read(sqlite3* db, std::vector<std::string>* problems);
  // See the header comment. False for no match or another table.
  bool lookup(std::string_view table, std::string_view key, std::string* out) const;
  const std::vector<SpamRuleRow>& rows() const { return rows_; }

 private:
  std::vector<SpamRuleRow> rows_;  // every valid row, by name
  std::string enabled_json_;       // "" when no enabled row
};

}  // namespace mailgate::policy
