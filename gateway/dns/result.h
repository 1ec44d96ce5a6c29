// dns/result.h — what a DNS query returns: a status, the DNSSEC flag, a TTL and the answer
// records as text. Plain values: copy them, move them, hand them to any thread.
// Owns: nothing but the strings it carries. Must not touch: libunbound (see answer.h).
// The numbering of RRType and Status equals mg_dns_type and mg_dns_status of the plugin SDK
// (sdk/include/mailgate/plugin.h), so the host can convert with a static_cast.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dns {

// The record types the gateway and its plugins ask for. Values are the DNS TYPE codes.
enum class RRType : uint16_t {
  kA = 1,      // IPv4 address
  kPTR = 12,   // reverse name
  kMX = 15,    // mail exchanger
  kTXT = 16,   // text (SPF, DKIM keys, DMARC policies)
  kAAAA = 28,  // IPv6 address
};

// How a query ended.
enum class Status {
  kOk = 0,        // records present
  kNxDomain = 1,  // the name does not exist
  kNoData = 2,    // the name exists, with no record of the type asked for
  kTempfail = 3,  // no answer now: timeout, SERVFAIL, DNSSEC bogus, cancelled — try later
  kError = 4,     // the query is wrong or the answer unusable: bad name, REFUSED, malformed
};

// One answer record.
//   A, AAAA: text is the address ("192.0.2.1", "2001:db8::1").
//   MX:      text is the exchange name, preference its preference.
//   PTR:     text is the name.
//   TXT:     text is the character-strings concatenated (what SPF, DKIM and DMARC read);
//            strings holds them separately, as they were on the wire (each <= 255 bytes).
// Names are in presentation format without the trailing dot ("mail.example.com"; the root
// is "."), with '.', '\\' and bytes outside 0x21..0x7e escaped as in RFC 1035 (\. \\ \DDD).
// TXT bytes are passed through unchanged and may hold any byte, NUL included.
struct Record {
  std::string text;
  uint16_t preference = 0;           // MX only
  uint32_t ttl = 0;                  // seconds, as left in the cache
  std::vector<std::string> strings;  // TXT only
};

struct Result {
  Status status = Status::kError;
  bool secure = false;          // DNSSEC-validated (always false while DNSSEC is off)
  uint32_t ttl = 0;             // kOk: the smallest record TTL; kNxDomain/kNoData: the negative
                                // TTL from the SOA when the answer has one, else 0
  std::string canonical_name;   // the name the records belong to after CNAMEs (kOk only)
  std::vector<Record> records;  // kOk only, in answer order
  std::string error;            // kTempfail/kError: why, for logs ("timed out after 500 ms")

  bool ok() const { return status == Status::kOk; }
};

// "A", "AAAA", "MX", "TXT", "PTR".
std::string_view to_string(RRType type);
// "ok", "nxdomain", "nodata", "tempfail", "error".
std::string_view to_string(Status status);
// Parses a type name, case-insensitively. Returns false for anything else.
bool parse_rr_type(std::string_view text, RRType* out);

}  // namespace mailgate::dns
