// dns/answer.cc — ub_result to Result. See answer.h.
#include "dns/answer.h"

#include <unbound.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

#include "dns/wire.h"

namespace mailgate::dns {
namespace {

constexpr int kMaxCnameHops = 16;

std::string rcode_name(int rcode) {
  static constexpr const char* kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                           "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                           "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (rcode >= 0 && rcode < static_cast<int>(std::size(kNames))) return kNames[rcode];
  return "rcode " + std::to_string(rcode);
}

std::string strip_dot(std::string name) {
  if (name.size() > 1 && name.back() == '.') name.pop_back();
  return name;
}

// Negative-caching TTL (RFC 2308 §5): the smaller of the SOA's TTL and its MINIMUM.
uint32_t negative_ttl(const std::optional<wire::Message>& message, wire::Bytes packet) {
  if (!message) return 0;
  for (const wire::ResourceRecord& rr : message->authority) {
    if (rr.type != wire::kTypeSoa) continue;
    auto minimum = wire::parse_soa_minimum(packet, rr.rdata_offset, rr.rdata_length);
    if (minimum) return std::min(rr.ttl, *minimum);
  }
  return 0;
}

// Collects the records of `type` owned by the end of the CNAME chain that starts at the
// question name. Returns the canonical name; records that do not parse are skipped, the
// first reason kept in *first_error.
std::string records_from_packet(const wire::Message& message, wire::Bytes packet, RRType type,
                                std::vector<Record>* out, std::string* first_error) {
  std::string current = message.qname;
  for (int hop = 0; hop < kMaxCnameHops; ++hop) {
    bool followed = false;
    for (const wire::ResourceRecord& rr : message.answers) {
      if (rr.type != wire::kTypeCname || !wire::names_equal(rr.owner, current)) continue;
      auto target = wire::parse_cname(packet, rr.rdata_offset, rr.rdata_length);
      if (!target) {
        if (first_error->empty()) *first_error = target.error();
        break;
      }
      current = std::move(*target);
      followed = true;
      break;
    }
    if (!followed) break;
  }
  for (const wire::ResourceRecord& rr : message.answers) {
    if (rr.type != static_cast<uint16_t>(type) || rr.klass != wire::kClassIn ||
        !wire::names_equal(rr.owner, current))
      continue;
    auto record = wire::parse_rdata(type, packet, rr.rdata_offset, rr.rdata_length);
    if (!record) {
      if (first_error->empty()) *first_error = record.error();
      continue;
    }
    record->ttl = rr.ttl;
    out->push_back(std::move(*record));
  }
  return current;
}

}  // namespace

Result make_result(int err, const ub_result* res, RRType type) {
  Result r;
  if (err != 0 || res == nullptr) {
    r.status = err == UB_SYNTAX ? Status::kError : Status::kTempfail;
    r.error = std::string("libunbound: ") + ub_strerror(err);
    return r;
  }
  r.secure = res->secure != 0;
  if (res->bogus) {
    r.status = Status::kTempfail;
    r.error =
        std::string("DNSSEC validation failed: ") + (res->why_bogus ? res->why_bogus : "bogus");
    return r;
  }

  wire::Bytes packet;
  if (res->answer_packet != nullptr && res->answer_len > 0)
    packet = wire::Bytes(static_cast<const uint8_t*>(res->answer_packet),
                         static_cast<size_t>(res->answer_len));
  std::optional<wire::Message> message;
  std::string packet_error;
  if (!packet.empty()) {
    auto parsed = wire::parse_message(packet);
    if (parsed)
      message = std::move(*parsed);
    else
      packet_error = parsed.error();
  }

  switch (res->rcode) {
    case 0:  // NOERROR
      break;
    case 3:  // NXDOMAIN
      r.status = Status::kNxDomain;
      r.ttl = negative_ttl(message, packet);
      return r;
    case 2:  // SERVFAIL: upstream failure, timeout inside libunbound, lame delegation
      r.status = Status::kTempfail;
      r.error = "SERVFAIL";
      return r;
    default:
      r.status = Status::kError;
      r.error = rcode_name(res->rcode);
      return r;
  }
  if (!res->havedata) {
    r.status = Status::kNoData;
    r.ttl = negative_ttl(message, packet);
    return r;
  }

  std::string first_error = packet_error;
  if (message)
    r.canonical_name = records_from_packet(*message, packet, type, &r.records, &first_error);
  if (r.records.empty() && res->data != nullptr) {
    // No usable packet: fall back to the rdata libunbound extracted (names uncompressed).
    for (int i = 0; res->data[i] != nullptr; ++i) {
      if (res->len == nullptr || res->len[i] < 0) break;
      wire::Bytes rdata(reinterpret_cast<const uint8_t*>(res->data[i]),
                        static_cast<size_t>(res->len[i]));
      auto record = wire::parse_rdata(type, rdata, 0, rdata.size());
      if (!record) {
        if (first_error.empty()) first_error = record.error();
        continue;
      }
      record->ttl = res->ttl > 0 ? static_cast<uint32_t>(res->ttl) : 0;
      r.records.push_back(std::move(*record));
    }
  }
  if (r.canonical_name.empty() && res->canonname != nullptr) r.canonical_name = res->canonname;
  if (r.canonical_name.empty() && res->qname != nullptr) r.canonical_name = res->qname;
  r.canonical_name = strip_dot(std::move(r.canonical_name));
  if (r.records.empty()) {
    r.status = Status::kError;
    r.error =
        "malformed answer: " + (first_error.empty() ? std::string("no records") : first_error);
    return r;
  }
  r.status = Status::kOk;
  r.ttl = std::numeric_limits<uint32_t>::max();
  for (const Record& record : r.records) r.ttl = std::min(r.ttl, record.ttl);
  return r;
}

}  // namespace mailgate::dns
