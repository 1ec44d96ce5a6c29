// dns/wire.h — a bounds-checked reader of DNS messages (RFC 1035 §4): header, question,
// resource records, compressed names, and the rdata of the types the resolver returns.
// Owns: no state; every function reads only inside the span it is given and reports a
// malformed input as an error, never by reading past the end or looping.
// Must not touch: libunbound (answer.cc feeds it the bytes libunbound hands over).
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dns/result.h"
#include "util/expected.h"

namespace mailgate::dns::wire {

using Bytes = std::span<const uint8_t>;

// TYPE codes used internally besides RRType.
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeSoa = 6;
inline constexpr uint16_t kClassIn = 1;

// A name read from a message: its presentation text and the offset just past its bytes at
// the place it was read (after the first compression pointer, if any).
struct Name {
  std::string text;
  size_t end = 0;
};

// Reads the (possibly compressed) name at `offset` of `message`. Compression pointers must
// point strictly backwards (which also rules out loops); labels are at most 63 octets and the
// whole name at most 255; label types 01 and 10 are refused. Text as described in result.h.
Expected<Name, std::string> read_name(Bytes message, size_t offset);

struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  int rcode() const { return flags & 0xf; }
};

struct ResourceRecord {
  std::string owner;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  size_t rdata_offset = 0;  // into the message
  uint16_t rdata_length = 0;
};

struct Message {
  Header header;
  std::string qname;  // empty when the message has no question
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  std::vector<ResourceRecord> answers;
  std::vector<ResourceRecord> authority;
  // The additional section is not read.
};

// Parses the header, the first question, the answer and the authority sections.
Expected<Message, std::string> parse_message(Bytes message);

// Parses the rdata of an A, AAAA, MX, TXT or PTR record found at [offset, offset + length)
// of `message`. Names in MX and PTR rdata may be compressed against `message`; to parse a
// standalone rdata buffer pass it as the message with offset 0. The rdata must be exactly
// consumed. The record's ttl is left 0.
Expected<Record, std::string> parse_rdata(RRType type, Bytes message, size_t offset, size_t length);

// The target of a CNAME rdata.
Expected<std::string, std::string> parse_cname(Bytes message, size_t offset, size_t length);
// The MINIMUM field (negative-caching TTL, RFC 2308) of an SOA rdata.
Expected<uint32_t, std::string> parse_soa_minimum(Bytes message, size_t offset, size_t length);

// Case-insensitive comparison of two presentation names (ASCII letters only; RFC 4343).
bool names_equal(std::string_view a, std::string_view b);

}  // namespace mailgate::dns::wire
