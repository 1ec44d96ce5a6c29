// policy/spam_rules.cc — see spam_rules.h.
#include "policy/spam_rules.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "policy/sqlite.h"

namespace mailgate::policy {

Problem check_spam_rule_kind(std::string_view kind) {
  if (kind == "header" || kind == "subject" || kind == "body" || kind == "url" || kind == "raw")
    return std::nullopt;
  return fmt::format("must be header, subject, body, url or raw (got '{}')", kind);
}

Problem check_spam_rule_name(std::string_view name) {
  if (name.empty() || name.size() > 64 ||
      name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string_view::npos)
    return fmt::format("must match [A-Z0-9_]{{1,64}} (got '{}')", name);
  return std::nullopt;
}

Problem check_spam_rule_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.size() > 4096) return std::string("must be 1..4096 characters");
  RE2::Options options;  // UTF-8, as the plugin compiles it
  options.set_log_errors(false);
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re.ok()) return fmt::format("does not compile: {}", re.error());
  return std::nullopt;
}

void SpamRuleTable::read(sqlite3* db, std::vector<std::string>* problems) {
  auto stmt = prepare(db,
                      "SELECT name, kind, header, pattern, score, description, enabled "
                      "FROM spam_rules ORDER BY name");
  if (!stmt) {
    problems->push_back(fmt::format("spam_rules: cannot read the table: {}", stmt.error()));
    return;
  }
  nlohmann::json enabled = nlohmann::json::array();
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* st = stmt->get();
    SpamRuleRow r;
    r.name = column_text(st, 0).value_or("");
    const std::string label = fmt::format("spam_rules row '{}'", r.name);
    const size_t before = problems->size();
    auto problem = [&](std::string_view column, const Problem& p) {
      if (p) problems->push_back(fmt::format("{}: {} {}", label, column, *p));
    };
    r.kind = column_text(st, 1).value_or("");
    r.header = column_text(st, 2);
    r.pattern = column_text(st, 3).value_or("");
    const int score_type = sqlite3_column_type(st, 4);
    r.score = sqlite3_column_double(st, 4);
    r.description = column_text(st, 5);
    const int64_t enabled_value = sqlite3_column_int64(st, 6);
    problem("name", check_spam_rule_name(r.name));
    problem("kind", check_spam_rule_kind(r.kind));
    if (r.kind == "header" && (!r.header || r.header->empty()))
      problems->push_back(label + ": header must name a header field for kind 'header'");
    if (r.kind != "header" && r.header)
      problems->push_back(label + ": header must be NULL unless kind is 'header'");
    if (r.header && r.header->find_first_of(": \t\r\n") != std::string::npos)
      problems->push_back(fmt::format("{}: header '{}' is not a field name", label, *r.header));
    if ((score_type != SQLITE_INTEGER && score_type != SQLITE_FLOAT) || !std::isfinite(r.score))
      problems->push_back(fmt::format("{}: score must be a number (got '{}')", label,
                                      column_text(st, 4).value_or("NULL")));
    if (sqlite3_column_type(st, 6) != SQLITE_INTEGER || (enabled_value != 0 && enabled_value != 1))
      problems->push_back(fmt::format("{}: enabled must be 0 or 1 (got '{}')", label,
                                      column_text(st, 6).value_or("NULL")));
    problem("pattern", check_spam_rule_pattern(r.pattern));
    if (problems->size() != before) continue;
    r.enabled = enabled_value == 1;
    if (r.enabled) {
      nlohmann::json row = {{"name", r.name},       {"kind", r.kind},   {"header", nullptr},
                            {"pattern", r.pattern}, {"score", r.score}, {"description", nullptr}};
      if (r.header) row["header"] = *r.header;
      if (r.description) row["description"] = *r.description;
      enabled.push_back(std::move(row));
    }
    rows_.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE)
    problems->push_back(fmt::format("spam_rules: cannot read the table: {}", sqlite3_errmsg(db)));
  if (!enabled.empty()) enabled_json_ = enabled.dump();
}

bool SpamRuleTable::lookup(std::string_view table, std::string_view key, std::string* out) const {
  if (table != "spam_rules" || key != "*" || enabled_json_.empty()) return false;
  *out = enabled_json_;
  return true;
}

}  // namespace mailgate::policy
