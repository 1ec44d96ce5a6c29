// policy/routes.cc — see routes.h.
#include "policy/routes.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "policy/sqlite.h"

namespace mailgate::policy {
namespace {

// Characters of the pattern that must match as written (all but the '*').
size_t literal_length(std::string_view pattern) {
  return pattern.size() - static_cast<size_t>(std::count(pattern.begin(), pattern.end(), '*'));
}

// Does the local part `local` match the wildcard local part `pattern` (one
// '*')?
bool wildcard_match(std::string_view pattern, std::string_view local) {
  const size_t star = pattern.find('*');
  const std::string_view head = pattern.substr(0, star);
  const std::string_view tail = pattern.substr(star + 1);
  return local.size() >= head.size() + tail.size() && local.starts_with(head) &&
         local.ends_with(tail);
}

}  // namespace

Problem check_route_pattern(std::string_view pattern, RouteKind *kind) {
  auto bad = [&](std::string_view why) {
    return fmt::format("'{}' is not a route pattern: {}", pattern, why);
  };
  const size_t at = pattern.rfind('@');
  if (at == std::string_view::npos)
    return bad("want 'user@domain', 'user+*@domain' or '@domain' (no '@')");
  const std::string_view local = pattern.substr(0, at);
  const std::string_view domain = pattern.substr(at + 1);
  if (domain.find('*') != std::string_view::npos) return bad("'*' only in the local part");
  if (local.empty()) {
    if (auto p = check_domain(domain)) return bad(*p);
    if (kind) *kind = RouteKind::kCatchAll;
    return std::nullopt;
  }
  const size_t stars = static_cast<size_t>(std::count(local.begin(), local.end(), '*'));
  if (stars > 1) return bad("at most one '*'");
  if (local == "*") return bad(fmt::format("write the catch-all as '@{}'", domain));
  if (stars == 0) {
    if (auto p = check_address(pattern)) return bad(*p);
    if (kind) *kind = RouteKind::kExact;
    return std::nullopt;
  }
  std::string probe(pattern);
  probe[probe.find('*')] = 'x';
  if (auto p = check_address(probe)) return bad(*p);
  if (kind) *kind = RouteKind::kWildcard;
  return std::nullopt;
}

Problem check_route_destination(std::string_view destination) {
  if (destination == kRouteDrop) return std::nullopt;
  if (destination.find('*') != std::string_view::npos)
    return fmt::format(
        "'{}' is not a valid destination: a destination is one "
        "address (no '*')",
        destination);
  if (destination.find(',') != std::string_view::npos)
    return fmt::format("'{}' is not a valid destination: one address per row", destination);
  return check_address(destination);
}

void RouteTable::read(sqlite3 *db, std::vector<std::string> *problems) {
  auto stmt = prepare(db, "SELECT id, pattern, destination, enabled FROM routes ORDER BY id");
  if (!stmt) {
    problems->push_back(fmt::format("routes: cannot read the table: {}", stmt.error()));
    return;
  }
  // Enabled rows grouped by pattern (lower-case), in id order.
  std::map<std::string, std::vector<const RouteRow *>> by_pattern;
  std::map<std::string, RouteKind> kinds;
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt *st = stmt->get();
    RouteRow r;
    r.id = sqlite3_column_int64(st, 0);
    const std::string label = fmt::format("routes row {}", r.id);
    const size_t before = problems->size();
    auto pattern = column_text(st, 1);
    auto destination = column_text(st, 2);
    if (!pattern) problems->push_back(label + ": pattern must not be NULL");
    if (!destination) problems->push_back(label + ": destination must not be NULL");
    r.pattern = to_lower(pattern.value_or(""));
    r.destination = to_lower(destination.value_or(""));
    const int64_t enabled_value = sqlite3_column_int64(st, 3);
    if (sqlite3_column_type(st, 3) != SQLITE_INTEGER || (enabled_value != 0 && enabled_value != 1))
      problems->push_back(fmt::format("{}: enabled must be 0 or 1 (got '{}')", label,
                                      column_text(st, 3).value_or("NULL")));
    r.enabled = enabled_value == 1;
    RouteKind kind = RouteKind::kExact;
    if (pattern) {
      if (auto p = check_route_pattern(r.pattern, &kind))
        problems->push_back(label + ": pattern " + *p);
    }
    if (destination) {
      if (auto p = check_route_destination(r.destination))
        problems->push_back(label + ": destination " + *p);
    }
    if (problems->size() != before) continue;
    kinds[r.pattern] = kind;
    rows_.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) {
    problems->push_back(fmt::format("routes: cannot read the table: {}", sqlite3_errmsg(db)));
    return;
  }
  for (const RouteRow &r : rows_)
    if (r.enabled) by_pattern[r.pattern].push_back(&r);

  for (const auto &[pattern, rows] : by_pattern) {
    Route route;
    route.pattern = pattern;
    route.kind = kinds[pattern];
    const RouteRow *drop_row = nullptr;
    for (const RouteRow *r : rows) {
      if (r->destination == kRouteDrop) {
        drop_row = r;
      } else {
        route.destinations.push_back(r->destination);
      }
    }
    if (drop_row && !route.destinations.empty()) {
      const RouteRow *other = rows.front() == drop_row ? rows[1] : rows.front();
      problems->push_back(
          fmt::format("routes row {}: pattern '{}' has 'drop' and other "
                      "destinations (row {}); drop must be "
                      "its only destination",
                      drop_row->id, pattern, other->id));
      continue;
    }
    route.drop = drop_row != nullptr;
    nlohmann::json j = {{"pattern", pattern}, {"action", route.drop ? "drop" : "forward"}};
    if (!route.drop) j["destinations"] = route.destinations;
    route.json = j.dump();
    routes_.push_back(std::move(route));
  }
  for (uint32_t i = 0; i < routes_.size(); ++i) {
    const Route &r = routes_[i];
    const size_t at = r.pattern.rfind('@');
    switch (r.kind) {
      case RouteKind::kExact:
        exact_.emplace(r.pattern, i);
        break;
      case RouteKind::kCatchAll:
        catch_all_.emplace(r.pattern.substr(at + 1), i);
        break;
      case RouteKind::kWildcard:
        wildcards_[r.pattern.substr(at + 1)].push_back(i);
        break;
    }
  }
  for (auto &[domain, list] : wildcards_) {
    std::stable_sort(list.begin(), list.end(), [&](uint32_t a, uint32_t b) {
      const size_t la = literal_length(routes_[a].pattern);
      const size_t lb = literal_length(routes_[b].pattern);
      if (la != lb) return la > lb;
      return routes_[a].pattern < routes_[b].pattern;
    });
  }
}

const RouteTable::Route *RouteTable::match(std::string_view address) const {
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) return nullptr;
  const std::string lowered = to_lower(address);
  if (auto it = exact_.find(lowered); it != exact_.end()) return &routes_[it->second];
  const std::string domain = lowered.substr(at + 1);
  const std::string_view local = std::string_view(lowered).substr(0, at);
  if (auto it = wildcards_.find(domain); it != wildcards_.end()) {
    for (uint32_t i : it->second) {
      const std::string_view pattern = routes_[i].pattern;
      if (wildcard_match(pattern.substr(0, pattern.rfind('@')), local)) return &routes_[i];
    }
  }
  if (auto it = catch_all_.find(domain); it != catch_all_.end()) return &routes_[it->second];
  return nullptr;
}

bool RouteTable::lookup(std::string_view table, std::string_view key, std::string *out) const {
  if (table != "routes") return false;
  const Route *r = match(key);
  if (!r) return false;
  *out = r->json;
  return true;
}

}  // namespace mailgate::policy
