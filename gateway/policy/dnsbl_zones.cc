// policy/dnsbl_zones.cc — see dnsbl_zones.h.
#include "policy/dnsbl_zones.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "policy/sqlite.h"

namespace mailgate::policy {
namespace {

// A canonical dotted quad ("127.0.0.2": no leading zeros, four parts) in 127.0.0.0/8.
bool loopback_code(std::string_view text) {
  const std::string s(text);
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  char back[INET_ADDRSTRLEN];
  if (inet_ntop(AF_INET, &a, back, sizeof(back)) == nullptr || s != back) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

}  // namespace

Problem check_dnsbl_symbol(std::string_view symbol) {
  if (symbol.empty() || symbol.size() > 64 ||
      symbol.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string_view::npos)
    return fmt::format("'{}' must match [A-Z0-9_]{{1,64}}", symbol);
  return std::nullopt;
}

Problem check_dnsbl_zone(std::string_view zone) {
  if (zone.size() > 200)
    return fmt::format("'{}' is longer than 200 characters (the query names would not fit)", zone);
  return check_domain(zone);
}

Problem check_dnsbl_kind(std::string_view kind) {
  if (kind == "ip" || kind == "domain") return std::nullopt;
  return fmt::format("must be ip or domain (got '{}')", kind);
}

Problem parse_dnsbl_codes(std::string_view json, double row_score, std::vector<DnsblCode>* out) {
  if (auto p = check_settings_json(json)) return *p;
  const nlohmann::json codes = nlohmann::json::parse(json);
  std::vector<DnsblCode> parsed;
  for (const auto& [key, value] : codes.items()) {
    if (!loopback_code(key))
      return fmt::format("key '{}' is not an IPv4 address in 127.0.0.0/8 (a list's answer)", key);
    if (!value.is_object())
      return fmt::format("'{}' must map to an object {{\"symbol\": ..., \"score\": ...}}", key);
    DnsblCode code;
    code.address = key;
    code.score = row_score;
    bool has_symbol = false;
    for (const auto& [name, field] : value.items()) {
      if (name == "symbol") {
        if (!field.is_string()) return fmt::format("'{}': symbol must be a string", key);
        code.symbol = field.get<std::string>();
        if (auto p = check_dnsbl_symbol(code.symbol))
          return fmt::format("'{}': symbol {}", key, *p);
        has_symbol = true;
      } else if (name == "score") {
        if (!field.is_number() || !std::isfinite(field.get<double>()))
          return fmt::format("'{}': score must be a number", key);
        code.score = field.get<double>();
      } else {
        return fmt::format("'{}': unknown field '{}' (want symbol and score)", key, name);
      }
    }
    if (!has_symbol) return fmt::format("'{}': symbol is missing", key);
    parsed.push_back(std::move(code));
  }
  *out = std::move(parsed);
  return std::nullopt;
}

void DnsblZoneTable::read(sqlite3* db, std::vector<std::string>* problems) {
  auto stmt = prepare(db,
                      "SELECT zone, kind, symbol, score, codes, timeout_ms, enabled "
                      "FROM dnsbl_zones ORDER BY lower(zone)");
  if (!stmt) {
    problems->push_back(fmt::format("dnsbl_zones: cannot read the table: {}", stmt.error()));
    return;
  }
  nlohmann::json enabled = nlohmann::json::array();
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* st = stmt->get();
    DnsblZoneRow r;
    r.zone = to_lower(column_text(st, 0).value_or(""));
    while (!r.zone.empty() && r.zone.back() == '.') r.zone.pop_back();
    const std::string label = fmt::format("dnsbl_zones row '{}'", r.zone);
    const size_t before = problems->size();
    r.kind = column_text(st, 1).value_or("");
    r.symbol = column_text(st, 2).value_or("");
    const int score_type = sqlite3_column_type(st, 3);
    if (score_type != SQLITE_INTEGER && score_type != SQLITE_FLOAT)
      problems->push_back(fmt::format("{}: score must be a number (got '{}')", label,
                                      column_text(st, 3).value_or("NULL")));
    r.score = sqlite3_column_double(st, 3);
    const std::string codes = column_text(st, 4).value_or("");
    if (sqlite3_column_type(st, 5) != SQLITE_INTEGER) {
      problems->push_back(fmt::format("{}: timeout_ms must be an integer (got '{}')", label,
                                      column_text(st, 5).value_or("NULL")));
    } else {
      r.timeout_ms = sqlite3_column_int64(st, 5);
      if (r.timeout_ms < 1 || r.timeout_ms > 60000)
        problems->push_back(fmt::format("{}: timeout_ms must be between 1 and 60000 (got {})",
                                        label, r.timeout_ms));
    }
    const int64_t enabled_value = sqlite3_column_int64(st, 6);
    if (sqlite3_column_type(st, 6) != SQLITE_INTEGER || (enabled_value != 0 && enabled_value != 1))
      problems->push_back(fmt::format("{}: enabled must be 0 or 1 (got '{}')", label,
                                      column_text(st, 6).value_or("NULL")));
    r.enabled = enabled_value == 1;
    if (auto p = check_dnsbl_zone(r.zone)) problems->push_back(label + ": zone " + *p);
    if (auto p = check_dnsbl_kind(r.kind)) problems->push_back(label + ": kind " + *p);
    if (auto p = check_dnsbl_symbol(r.symbol)) problems->push_back(label + ": symbol " + *p);
    if (auto p = parse_dnsbl_codes(codes, r.score, &r.codes))
      problems->push_back(label + ": codes " + *p);
    if (problems->size() != before) continue;
    if (r.enabled) {
      nlohmann::json code_map = nlohmann::json::object();
      for (const DnsblCode& c : r.codes)
        code_map[c.address] = {{"symbol", c.symbol}, {"score", c.score}};
      enabled.push_back({{"zone", r.zone},
                         {"kind", r.kind},
                         {"symbol", r.symbol},
                         {"score", r.score},
                         {"codes", std::move(code_map)},
                         {"timeout_ms", r.timeout_ms}});
    }
    rows_.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE)
    problems->push_back(fmt::format("dnsbl_zones: cannot read the table: {}", sqlite3_errmsg(db)));
  if (!enabled.empty()) enabled_json_ = enabled.dump();
}

bool DnsblZoneTable::lookup(std::string_view table, std::string_view key, std::string* out) const {
  if (table != "dnsbl_zones" || key != "*" || enabled_json_.empty()) return false;
  *out = enabled_json_;
  return true;
}

}  // namespace mailgate::policy
