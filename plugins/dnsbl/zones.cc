// plugins/dnsbl/zones.cc — see zones.h.
#include "zones.h"

#include <arpa/inet.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "query_names.h"

namespace mailgate::dnsbl {
namespace {

bool valid_symbol(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == std::string::npos;
}

// The row as a Zone; throws std::invalid_argument with what is wrong.
Zone parse_zone(const nlohmann::json& row) {
  if (!row.is_object()) throw std::invalid_argument("is not an object");
  Zone z;
  const auto name = normalize_domain(row.value("zone", std::string()), 200);
  if (!name) throw std::invalid_argument("zone is not a domain name");
  z.name = *name;
  const std::string kind = row.value("kind", std::string());
  if (kind == "ip")
    z.kind = ZoneKind::kIp;
  else if (kind == "domain")
    z.kind = ZoneKind::kDomain;
  else
    throw std::invalid_argument("kind must be ip or domain");
  z.symbol = row.value("symbol", std::string());
  if (!valid_symbol(z.symbol)) throw std::invalid_argument("symbol must match [A-Z0-9_]{1,64}");
  if (!row.contains("score") || !row["score"].is_number())
    throw std::invalid_argument("score must be a number");
  z.score = row["score"].get<double>();
  if (!row.contains("timeout_ms") || !row["timeout_ms"].is_number_integer() ||
      row["timeout_ms"].get<std::int64_t>() < 1 || row["timeout_ms"].get<std::int64_t>() > 60000)
    throw std::invalid_argument("timeout_ms must be an integer in 1..60000");
  z.timeout_ms = row["timeout_ms"].get<std::uint32_t>();
  if (row.contains("codes")) {
    const nlohmann::json& codes = row["codes"];
    if (!codes.is_object()) throw std::invalid_argument("codes must be an object");
    for (const auto& [address, value] : codes.items()) {
      in_addr a{};
      if (inet_pton(AF_INET, address.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
        throw std::invalid_argument("codes key '" + address + "' is not in 127.0.0.0/8");
      if (!value.is_object() || !value.contains("symbol") || !value["symbol"].is_string())
        throw std::invalid_argument("codes '" + address + "' has no symbol");
      Listing l{value["symbol"].get<std::string>(), z.score};
      if (!valid_symbol(l.symbol))
        throw std::invalid_argument("codes '" + address + "' symbol must match [A-Z0-9_]{1,64}");
      if (value.contains("score")) {
        if (!value["score"].is_number())
          throw std::invalid_argument("codes '" + address + "' score must be a number");
        l.score = value["score"].get<double>();
      }
      z.codes.emplace(address, std::move(l));
    }
  }
  return z;
}

}  // namespace

ZoneList parse_zones(const std::string& json, std::vector<std::string>* skipped) {
  ZoneList list;
  list.json = json;
  nlohmann::json rows = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!rows.is_array()) {
    skipped->push_back("dnsbl_zones: the policy's answer is not a JSON array; no zone is asked");
    return list;
  }
  for (const nlohmann::json& row : rows) {
    const std::string name = row.is_object() && row.contains("zone") && row["zone"].is_string()
                                 ? row["zone"].get<std::string>()
                                 : "?";
    try {
      list.zones.push_back(parse_zone(row));
    } catch (const std::exception& e) {
      skipped->push_back("dnsbl_zones row '" + name + "': " + e.what() + "; skipped");
    }
  }
  return list;
}

AnswerKind classify_answer(const Zone& zone, std::string_view address, Listing* listing) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(address).c_str(), &a) != 1) return AnswerKind::kNotLoopback;
  const std::uint32_t ip = ntohl(a.s_addr);
  if ((ip >> 24) != 127) return AnswerKind::kNotLoopback;
  char canonical[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, canonical, sizeof(canonical));
  if (auto it = zone.codes.find(canonical); it != zone.codes.end()) {
    *listing = it->second;
    return AnswerKind::kListed;
  }
  if ((ip >> 8) == 0x7fffffu) return AnswerKind::kErrorCode;
  *listing = Listing{zone.symbol, zone.score};
  return AnswerKind::kListed;
}

}  // namespace mailgate::dnsbl
