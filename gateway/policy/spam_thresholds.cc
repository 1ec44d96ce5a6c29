// policy/spam_thresholds.cc — see spam_thresholds.h.
#include "policy/spam_thresholds.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "policy/sqlite.h"

namespace mailgate::policy {

Problem check_spam_threshold_order(const std::optional<double>& add_header,
                                   const std::optional<double>& tempfail,
                                   const std::optional<double>& reject) {
  struct Step {
    const char* name;
    const std::optional<double>& value;
  };
  const Step steps[] = {{"add_header", add_header}, {"tempfail", tempfail}, {"reject", reject}};
  for (size_t hi = 1; hi < 3; ++hi) {
    if (!steps[hi].value) continue;
    for (size_t lo = hi; lo-- > 0;) {
      if (!steps[lo].value) continue;
      if (*steps[hi].value < *steps[lo].value)
        return fmt::format("{} ({}) must not be below {} ({})", steps[hi].name, *steps[hi].value,
                           steps[lo].name, *steps[lo].value);
      break;
    }
  }
  return std::nullopt;
}

void SpamThresholdTable::read(sqlite3* db, std::vector<std::string>* problems) {
  auto stmt = prepare(db,
                      "SELECT domain, add_header, tempfail, reject FROM spam_thresholds "
                      "ORDER BY lower(domain)");
  if (!stmt) {
    problems->push_back(fmt::format("spam_thresholds: cannot read the table: {}", stmt.error()));
    return;
  }
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* st = stmt->get();
    const std::string domain = column_text(st, 0).value_or("");
    const std::string label = fmt::format("spam_thresholds row '{}'", domain);
    const size_t before = problems->size();
    auto number = [&](int col, const char* column) -> std::optional<double> {
      const int type = sqlite3_column_type(st, col);
      if (type == SQLITE_NULL) return std::nullopt;
      const double v = sqlite3_column_double(st, col);
      if ((type != SQLITE_INTEGER && type != SQLITE_FLOAT) || !std::isfinite(v)) {
        problems->push_back(fmt::format("{}: {} must be a number or NULL (got '{}')", label, column,
                                        column_text(st, col).value_or("")));
        return std::nullopt;
      }
      return v;
    };
    SpamThresholdRow r;
    r.domain = domain == "*" ? domain : to_lower(domain);
    r.add_header = number(1, "add_header");
    r.tempfail = number(2, "tempfail");
    r.reject = number(3, "reject");
    if (domain != "*") {
      if (auto p = check_domain(domain))
        problems->push_back(fmt::format("{}: domain {}", label, *p));
    }
    if (problems->size() == before) {
      if (auto p = check_spam_threshold_order(r.add_header, r.tempfail, r.reject))
        problems->push_back(fmt::format("{}: {}", label, *p));
    }
    if (problems->size() != before) continue;
    nlohmann::json value = {
        {"domain", r.domain}, {"add_header", nullptr}, {"tempfail", nullptr}, {"reject", nullptr}};
    if (r.add_header) value["add_header"] = *r.add_header;
    if (r.tempfail) value["tempfail"] = *r.tempfail;
    if (r.reject) value["reject"] = *r.reject;
    if (!json_.emplace(r.domain, value.dump()).second) {
      problems->push_back(label + ": duplicates another row (domains are case-insensitive)");
      continue;
    }
    rows_.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE)
    problems->push_back(
        fmt::format("spam_thresholds: cannot read the table: {}", sqlite3_errmsg(db)));
}

bool SpamThresholdTable::lookup(std::string_view table, std::string_view key,
                                std::string* out) const {
  if (table != "spam_thresholds") return false;
  std::string domain = to_lower(key);
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  auto it = json_.find(domain);
  if (it == json_.end()) it = json_.find("*");
  if (it == json_.end()) return false;
  *out = it->second;
  return true;
}

}  // namespace mailgate::policy
