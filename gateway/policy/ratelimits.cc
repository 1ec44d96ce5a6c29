// policy/ratelimits.cc — see ratelimits.h.
#include "policy/ratelimits.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "policy/sqlite.h"

namespace mailgate::policy {
namespace {

constexpr std::string_view kParts[] = {
    "client_ip", "helo", "sender", "sender_domain", "recipient", "recipient_domain", "auth_user"};

std::vector<std::string> split_key(std::string_view key) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t plus = key.find('+', start);
    parts.emplace_back(key.substr(start, plus == std::string_view::npos ? key.npos : plus - start));
    if (plus == std::string_view::npos) break;
    start = plus + 1;
  }
  return parts;
}

}  // namespace

Problem check_ratelimit_what(std::string_view what) {
  if (what == "connections" || what == "messages" || what == "recipients" || what == "bytes")
    return std::nullopt;
  return fmt::format("must be connections, messages, recipients or bytes (got '{}')", what);
}

Problem check_ratelimit_key(std::string_view what, std::string_view key) {
  std::vector<std::string> parts = split_key(key);
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (std::find(std::begin(kParts), std::end(kParts), p) == std::end(kParts))
      return fmt::format(
          "'{}' has an unknown part '{}' (want client_ip, helo, sender, sender_domain, "
          "recipient, recipient_domain or auth_user, joined by '+')",
          key, p);
    if (std::find(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(i), p) !=
        parts.begin() + static_cast<std::ptrdiff_t>(i))
      return fmt::format("'{}' names '{}' twice", key, p);
    if (what == "connections" && p != "client_ip")
      return fmt::format("'{}' cannot count connections: only client_ip is known at connect", key);
    if ((what == "messages" || what == "bytes") && p.starts_with("recipient"))
      return fmt::format(
          "'{}' cannot count {}: a message has several recipients (count "
          "recipients instead)",
          key, what);
  }
  return std::nullopt;
}

Problem check_ratelimit_action(std::string_view action) {
  if (action == "tempfail" || action == "reject") return std::nullopt;
  return fmt::format("must be tempfail or reject (got '{}')", action);
}

Problem check_ratelimit_exemption(std::string_view kind, std::string_view value) {
  if (kind == "network") {
    auto p = parse_prefix(value);
    if (!p) return p.error();
    return std::nullopt;
  }
  if (kind == "sender") {
    if (value.find('@') != std::string_view::npos) return check_address(value);
    return check_domain(value);
  }
  if (kind == "auth_user") {
    if (value.empty() || value.size() > 256) return std::string("must be 1..256 characters");
    for (unsigned char c : value)
      if (c < 0x21 || c == 0x7f) return fmt::format("'{}' has a space or control character", value);
    return std::nullopt;
  }
  return fmt::format("kind must be network, sender or auth_user (got '{}')", kind);
}

void RateLimitTable::read(sqlite3* db, std::vector<std::string>* problems) {
  auto stmt = prepare(db,
                      "SELECT name, what, key, ipv4_prefix, ipv6_prefix, rate, period, burst, "
                      "action, enabled FROM ratelimits ORDER BY name");
  if (!stmt) {
    problems->push_back(fmt::format("ratelimits: cannot read the table: {}", stmt.error()));
    return;
  }
  nlohmann::json enabled = nlohmann::json::array();
  int rc;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* st = stmt->get();
    RateLimitRow r;
    r.name = column_text(st, 0).value_or("");
    const std::string label = fmt::format("ratelimits row '{}'", r.name);
    size_t before = problems->size();
    auto integer = [&](int col, const char* column, int64_t lo, int64_t hi) -> int64_t {
      if (sqlite3_column_type(st, col) != SQLITE_INTEGER) {
        problems->push_back(fmt::format("{}: {} must be an integer (got '{}')", label, column,
                                        column_text(st, col).value_or("NULL")));
        return 0;
      }
      int64_t v = sqlite3_column_int64(st, col);
      if (v < lo || v > hi)
        problems->push_back(
            fmt::format("{}: {} must be between {} and {} (got {})", label, column, lo, hi, v));
      return v;
    };
    r.what = column_text(st, 1).value_or("");
    const std::string key = column_text(st, 2).value_or("");
    r.ipv4_prefix = integer(3, "ipv4_prefix", 1, 32);
    r.ipv6_prefix = integer(4, "ipv6_prefix", 1, 128);
    r.rate = integer(5, "rate", 1, 1'000'000'000);
    r.period = integer(6, "period", 1, 2'592'000);
    r.burst = integer(7, "burst", 0, 1'000'000'000);
    r.action = column_text(st, 8).value_or("");
    r.enabled = integer(9, "enabled", 0, 1) == 1;
    if (r.name.empty() || r.name.size() > 64 ||
        r.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") != std::string::npos)
      problems->push_back(fmt::format("{}: name must match [a-z0-9_.-]{{1,64}}", label));
    if (auto p = check_ratelimit_what(r.what)) problems->push_back(label + ": what " + *p);
    if (auto p = check_ratelimit_key(r.what, key)) problems->push_back(label + ": key " + *p);
    if (auto p = check_ratelimit_action(r.action)) problems->push_back(label + ": action " + *p);
    if (problems->size() != before) continue;
    r.key = split_key(key);
    if (r.enabled) {
      enabled.push_back({{"name", r.name},
                         {"what", r.what},
                         {"key", r.key},
                         {"ipv4_prefix", r.ipv4_prefix},
                         {"ipv6_prefix", r.ipv6_prefix},
                         {"rate", r.rate},
                         {"period", r.period},
                         {"burst", r.burst},
                         {"action", r.action}});
    }
    rows_.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE)
    problems->push_back(fmt::format("ratelimits: cannot read the table: {}", sqlite3_errmsg(db)));
  if (!enabled.empty()) enabled_json_ = enabled.dump();

  auto ex = prepare(db, "SELECT kind, value FROM ratelimit_exemptions ORDER BY kind, value");
  if (!ex) {
    problems->push_back(fmt::format("ratelimit_exemptions: cannot read the table: {}", ex.error()));
    return;
  }
  while ((rc = sqlite3_step(ex->get())) == SQLITE_ROW) {
    const std::string kind = column_text(ex->get(), 0).value_or("");
    const std::string value = column_text(ex->get(), 1).value_or("");
    const std::string label = fmt::format("ratelimit_exemptions row '{}/{}'", kind, value);
    if (auto p = check_ratelimit_exemption(kind, value)) {
      problems->push_back(fmt::format("{}: {}", label, *p));
      continue;
    }
    if (kind == "network") {
      auto prefix = parse_prefix(value);
      if (networks_.insert(*prefix, static_cast<uint32_t>(network_text_.size()))) {
        problems->push_back(fmt::format("{}: the same network is listed twice", label));
        continue;
      }
      network_text_.push_back(prefix->to_string());
    } else if (kind == "sender") {
      senders_.emplace(to_lower(value), value);
    } else {
      auth_users_.emplace(to_lower(value), value);
    }
  }
  if (rc != SQLITE_DONE)
    problems->push_back(
        fmt::format("ratelimit_exemptions: cannot read the table: {}", sqlite3_errmsg(db)));
}

bool RateLimitTable::lookup(std::string_view table, std::string_view key, std::string* out) const {
  if (table == "ratelimits") {
    if (key != "*" || enabled_json_.empty()) return false;
    *out = enabled_json_;
    return true;
  }
  if (table == "ratelimit_exemptions:network") {
    auto address = parse_address(key);
    if (!address) return false;
    auto m = networks_.lookup(*address);
    if (!m) return false;
    *out = network_text_[m->value];
    return true;
  }
  if (table == "ratelimit_exemptions:sender") {
    const std::string address = to_lower(key);
    if (auto it = senders_.find(address); it != senders_.end()) {
      *out = it->second;
      return true;
    }
    const size_t at = address.rfind('@');
    if (at == std::string::npos) return false;
    if (auto it = senders_.find(address.substr(at + 1)); it != senders_.end()) {
      *out = it->second;
      return true;
    }
    return false;
  }
  if (table == "ratelimit_exemptions:auth_user") {
    auto it = auth_users_.find(to_lower(key));
    if (it == auth_users_.end()) return false;
    *out = it->second;
    return true;
  }
  return false;
}

}  // namespace mailgate::policy
