// plugins/dnsbl/zones.h — the zones the dnsbl plugin asks, parsed from the policy's answer to
// policy_lookup("dnsbl_zones", "*") (gateway/policy/dnsbl_zones.h writes it), and what one
// answer record of a zone means.
// Owns: Zone, the parse of the JSON array (rows that do not parse are skipped and named), and
// the mapping of an answer address to a listing, an ignored error code or a broken answer.
// Threading: a ZoneList is immutable once parsed. Must not touch: the host, DNS.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dnsbl {

enum class ZoneKind { kIp, kDomain };

struct Listing {
  std::string symbol;
  double score = 0;
};

struct Zone {
  std::string name;  // "zen.example.org", lower-case, no trailing dot
  ZoneKind kind = ZoneKind::kIp;
  std::string symbol;
  double score = 1;
  std::map<std::string, Listing> codes;  // "127.0.0.2" -> its own symbol and score
  std::uint32_t timeout_ms = 2000;
};

struct ZoneList {
  std::string json;  // the policy answer it was parsed from
  std::vector<Zone> zones;
};

// Parses the JSON array; each row that does not parse adds a message naming it to *skipped.
// Throws nothing: a JSON text that is not an array skips everything (one message).
ZoneList parse_zones(const std::string& json, std::vector<std::string>* skipped);

// What one A record of a zone's answer means.
enum class AnswerKind {
  kListed,       // in 127.0.0.0/8: a listing, *listing filled (from codes, else the zone's)
  kErrorCode,    // 127.255.255.0/24 without an entry in codes: the list refused the query
  kNotLoopback,  // outside 127.0.0.0/8 (or not an address): a broken list, ignored
};
AnswerKind classify_answer(const Zone& zone, std::string_view address, Listing* listing);

}  // namespace mailgate::dnsbl
