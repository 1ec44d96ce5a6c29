// plugins/ratelimit/limits.hpp — the ratelimit plugin's view of the policy's limit rows: the
// JSON array the gateway answers for policy_lookup("ratelimits", "*") parsed into Limit
// values, and the key a limit counts an event under.
// Owns: reading the row JSON (defensively: a row this plugin cannot read is skipped with a
// reason, the others still apply) and composing counting keys.
// Must not touch: the store (ratelimit.cc calls it) or replies. Threading: pure functions.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_prefix.hpp"
#include "common/store_key.hpp"

namespace mailgate::ratelimit {

enum class What { kConnections, kMessages, kRecipients, kBytes };
enum class Part {
  kClientIp,
  kHelo,
  kSender,
  kSenderDomain,
  kRecipient,
  kRecipientDomain,
  kAuthUser
};

struct Limit {
  std::string name;
  What what = What::kMessages;
  std::vector<Part> key;
  int ipv4_prefix = 32;
  int ipv6_prefix = 64;
  std::uint32_t rate = 0;
  std::uint32_t period_s = 0;
  std::uint32_t burst = 0;  // 0 = rate
  bool reject = false;      // action: reject (550 5.7.1) instead of tempfail (451 4.7.1)
};

inline const char* what_name(What w) {
  switch (w) {
    case What::kConnections:
      return "connections";
    case What::kMessages:
      return "messages";
    case What::kRecipients:
      return "recipients";
    case What::kBytes:
      return "bytes";
  }
  return "?";
}

inline std::optional<What> parse_what(std::string_view s) {
  if (s == "connections") return What::kConnections;
  if (s == "messages") return What::kMessages;
  if (s == "recipients") return What::kRecipients;
  if (s == "bytes") return What::kBytes;
  return std::nullopt;
}

inline std::optional<Part> parse_part(std::string_view s) {
  if (s == "client_ip") return Part::kClientIp;
  if (s == "helo") return Part::kHelo;
  if (s == "sender") return Part::kSender;
  if (s == "sender_domain") return Part::kSenderDomain;
  if (s == "recipient") return Part::kRecipient;
  if (s == "recipient_domain") return Part::kRecipientDomain;
  if (s == "auth_user") return Part::kAuthUser;
  return std::nullopt;
}

// Parses the array; rows it cannot read go to `skipped` as "row N: why".
inline std::vector<Limit> parse_limits(std::string_view json, std::vector<std::string>* skipped) {
  std::vector<Limit> out;
  nlohmann::json rows = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!rows.is_array()) {
    skipped->push_back("the ratelimits value is not a JSON array");
    return out;
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const nlohmann::json& r = rows[i];
    const std::string label = "row " + (r.is_object() && r.contains("name") && r["name"].is_string()
                                            ? "'" + r["name"].get<std::string>() + "'"
                                            : std::to_string(i));
    try {
      Limit l;
      l.name = r.at("name").get<std::string>();
      auto what = parse_what(r.at("what").get<std::string>());
      if (!what) throw std::invalid_argument("unknown 'what'");
      l.what = *what;
      for (const auto& p : r.at("key")) {
        auto part = parse_part(p.get<std::string>());
        if (!part) throw std::invalid_argument("unknown key part " + p.dump());
        l.key.push_back(*part);
      }
      if (l.key.empty()) throw std::invalid_argument("empty key");
      l.ipv4_prefix = r.value("ipv4_prefix", 32);
      l.ipv6_prefix = r.value("ipv6_prefix", 64);
      l.rate = r.at("rate").get<std::uint32_t>();
      l.period_s = r.at("period").get<std::uint32_t>();
      l.burst = r.value("burst", 0u);
      const std::string action = r.value("action", std::string("tempfail"));
      if (action != "tempfail" && action != "reject")
        throw std::invalid_argument("unknown action '" + action + "'");
      l.reject = action == "reject";
      if (l.rate == 0 || l.period_s == 0 || l.period_s > 2'592'000)
        throw std::invalid_argument("rate and period must be > 0 (period at most 30 days)");
      out.push_back(std::move(l));
    } catch (const std::exception& e) {
      skipped->push_back(label + ": " + e.what());
    }
  }
  return out;
}

// What an event is counted against. Fields the stage does not know are empty.
struct Event {
  std::string_view client_addr;
  std::string_view helo;
  std::optional<std::string_view> sender;  // nullopt before MAIL; "" for the null sender
  std::string_view recipient;              // RCPT stage only
  std::optional<std::string_view> auth_user;
};

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

inline std::string domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : lower(address.substr(at + 1));
}

// The store key "rl:NAME/RATE/PERIOD/BURST:VALUE|VALUE...", or nullopt when the limit does not
// apply to the event (an auth_user part without authentication, or a part this stage does not
// know). The spec is part of the key: a GCRA state means something only for the spec it was
// made with, so editing a limit's numbers starts its counts afresh.
inline std::optional<std::string> counting_key(const Limit& l, const Event& e) {
  const std::string prefix = "rl:" + l.name + "/" + std::to_string(l.rate) + "/" +
                             std::to_string(l.period_s) + "/" + std::to_string(l.burst) + ":";
  std::string key;
  bool first = true;
  for (Part p : l.key) {
    if (!first) key += '|';
    first = false;
    switch (p) {
      case Part::kClientIp: {
        auto net = plugins::client_network(e.client_addr, l.ipv4_prefix, l.ipv6_prefix);
        key += net ? *net : std::string(e.client_addr);
        break;
      }
      case Part::kHelo:
        key += lower(e.helo);
        break;
      case Part::kSender:
        if (!e.sender) return std::nullopt;
        key += e.sender->empty() ? std::string("<>") : lower(*e.sender);
        break;
      case Part::kSenderDomain:
        if (!e.sender) return std::nullopt;
        key += e.sender->empty() ? std::string("<>") : domain_of(*e.sender);
        break;
      case Part::kRecipient:
        if (e.recipient.empty()) return std::nullopt;
        key += lower(e.recipient);
        break;
      case Part::kRecipientDomain:
        if (e.recipient.empty()) return std::nullopt;
        key += domain_of(e.recipient);
        break;
      case Part::kAuthUser:
        if (!e.auth_user || e.auth_user->empty()) return std::nullopt;
        key += lower(*e.auth_user);
        break;
    }
  }
  return plugins::store_key(prefix, key);
}

}  // namespace mailgate::ratelimit
