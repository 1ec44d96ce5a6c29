// dns/wire.cc — bounds-checked DNS message reader. See wire.h.
#include "dns/wire.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

namespace mailgate::dns::wire {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxNameWire = 255;  // RFC 1035 §2.3.4, length octets included
constexpr size_t kMaxLabel = 63;

uint16_t get16(Bytes b, size_t at) { return static_cast<uint16_t>((b[at] << 8) | b[at + 1]); }
uint32_t get32(Bytes b, size_t at) {
  return (static_cast<uint32_t>(b[at]) << 24) | (static_cast<uint32_t>(b[at + 1]) << 16) |
         (static_cast<uint32_t>(b[at + 2]) << 8) | static_cast<uint32_t>(b[at + 3]);
}

// Appends one label in presentation format (RFC 1035 §5.1 escapes).
void append_label(std::string& out, Bytes label) {
  for (uint8_t c : label) {
    if (c == '.' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x21 || c > 0x7e) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03u", static_cast<unsigned>(c));
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

std::string at(size_t offset) { return " at offset " + std::to_string(offset); }

// Checks [offset, offset + length) lies inside the message.
bool in_bounds(Bytes message, size_t offset, size_t length) {
  return offset <= message.size() && length <= message.size() - offset;
}

Expected<ResourceRecord, std::string> read_rr(Bytes message, size_t* pos) {
  auto owner = read_name(message, *pos);
  if (!owner) return unexpected(owner.error());
  size_t p = owner->end;
  if (!in_bounds(message, p, 10)) return unexpected("truncated record header" + at(p));
  ResourceRecord rr;
  rr.owner = std::move(owner->text);
  rr.type = get16(message, p);
  rr.klass = get16(message, p + 2);
  rr.ttl = get32(message, p + 4);
  // RFC 2181 §8: a TTL with the top bit set is treated as zero.
  if (rr.ttl & 0x80000000u) rr.ttl = 0;
  rr.rdata_length = get16(message, p + 8);
  rr.rdata_offset = p + 10;
  if (!in_bounds(message, rr.rdata_offset, rr.rdata_length))
    return unexpected("rdata runs past the end of the message" + at(rr.rdata_offset));
  *pos = rr.rdata_offset + rr.rdata_length;
  return rr;
}

// Reads a name that must end exactly at `limit` (the end of its rdata).
Expected<std::string, std::string> read_rdata_name(Bytes message, size_t offset, size_t limit) {
  auto name = read_name(message.first(limit), offset);
  if (!name) return unexpected(name.error());
  if (name->end != limit) return unexpected("trailing bytes after the name in rdata" + at(offset));
  return std::move(name->text);
}

}  // namespace

Expected<Name, std::string> read_name(Bytes message, size_t offset) {
  Name name;
  size_t pos = offset;
  size_t wire_length = 0;
  bool jumped = false;
  // Every pointer must go strictly backwards, so the walk ends; the bound on hops is a
  // second guard.
  for (int hops = 0;;) {
    if (pos >= message.size()) return unexpected("name runs past the end of the message" + at(pos));
    uint8_t len = message[pos];
    switch (len & 0xc0) {
      case 0x00: {
        if (len == 0) {
          if (!jumped) name.end = pos + 1;
          if (name.text.empty()) name.text = ".";
          return name;
        }
        if (len > kMaxLabel) return unexpected("label longer than 63 octets" + at(pos));
        wire_length += 1u + len;
        if (wire_length + 1 > kMaxNameWire)
          return unexpected("name longer than 255 octets" + at(offset));
        if (!in_bounds(message, pos + 1, len))
          return unexpected("label runs past the end of the message" + at(pos));
        if (!name.text.empty()) name.text.push_back('.');
        append_label(name.text, message.subspan(pos + 1, len));
        pos += 1u + len;
        break;
      }
      case 0xc0: {
        if (pos + 1 >= message.size()) return unexpected("truncated compression pointer" + at(pos));
        size_t target = static_cast<size_t>(get16(message, pos) & 0x3fff);
        if (target >= pos)
          return unexpected("compression pointer does not point backwards" + at(pos));
        if (++hops > 127) return unexpected("too many compression pointers" + at(offset));
        if (!jumped) name.end = pos + 2;
        jumped = true;
        pos = target;
        break;
      }
      default:
        return unexpected("unsupported label type" + at(pos));
    }
  }
}

Expected<Message, std::string> parse_message(Bytes message) {
  if (message.size() < kHeaderSize)
    return unexpected(std::string("message shorter than its header"));
  Message m;
  m.header.id = get16(message, 0);
  m.header.flags = get16(message, 2);
  m.header.qdcount = get16(message, 4);
  m.header.ancount = get16(message, 6);
  m.header.nscount = get16(message, 8);
  m.header.arcount = get16(message, 10);
  size_t pos = kHeaderSize;
  for (uint16_t i = 0; i < m.header.qdcount; ++i) {
    auto qname = read_name(message, pos);
    if (!qname) return unexpected("question: " + qname.error());
    if (!in_bounds(message, qname->end, 4)) return unexpected("truncated question" + at(pos));
    if (i == 0) {
      m.qname = std::move(qname->text);
      m.qtype = get16(message, qname->end);
      m.qclass = get16(message, qname->end + 2);
    }
    pos = qname->end + 4;
  }
  struct Section {
    uint16_t count;
    std::vector<ResourceRecord>* out;
    const char* name;
  };
  const Section sections[] = {{m.header.ancount, &m.answers, "answer"},
                              {m.header.nscount, &m.authority, "authority"}};
  for (const Section& s : sections) {
    // A record takes at least 11 octets: no reservation beyond what the bytes can hold.
    s.out->reserve(std::min<size_t>(s.count, (message.size() - pos) / 11));
    for (uint16_t i = 0; i < s.count; ++i) {
      auto rr = read_rr(message, &pos);
      if (!rr) return unexpected(std::string(s.name) + " section: " + rr.error());
      s.out->push_back(std::move(*rr));
    }
  }
  return m;
}

Expected<Record, std::string> parse_rdata(RRType type, Bytes message, size_t offset,
                                          size_t length) {
  if (!in_bounds(message, offset, length))
    return unexpected("rdata runs past the end of the message" + at(offset));
  Record record;
  const size_t limit = offset + length;
  switch (type) {
    case RRType::kA:
    case RRType::kAAAA: {
      const bool v4 = type == RRType::kA;
      const size_t want = v4 ? 4 : 16;
      if (length != want)
        return unexpected(std::string(to_string(type)) + " rdata of " + std::to_string(length) +
                          " octets (want " + std::to_string(want) + ")");
      char buf[INET6_ADDRSTRLEN] = {};
      if (!inet_ntop(v4 ? AF_INET : AF_INET6, message.data() + offset, buf, sizeof buf))
        return unexpected(std::string("cannot format address"));
      record.text = buf;
      return record;
    }
    case RRType::kMX: {
      if (length < 3) return unexpected("MX rdata of " + std::to_string(length) + " octets");
      record.preference = get16(message, offset);
      auto name = read_rdata_name(message, offset + 2, limit);
      if (!name) return unexpected("MX exchange: " + name.error());
      record.text = std::move(*name);
      return record;
    }
    case RRType::kPTR: {
      auto name = read_rdata_name(message, offset, limit);
      if (!name) return unexpected("PTR name: " + name.error());
      record.text = std::move(*name);
      return record;
    }
    case RRType::kTXT: {
      if (length == 0) return unexpected(std::string("empty TXT rdata"));
      size_t pos = offset;
      while (pos < limit) {
        size_t n = message[pos];
        if (n > limit - pos - 1)
          return unexpected("TXT character-string runs past its rdata" + at(pos));
        record.strings.emplace_back(reinterpret_cast<const char*>(message.data() + pos + 1), n);
        record.text += record.strings.back();
        pos += 1 + n;
      }
      return record;
    }
  }
  return unexpected("unsupported record type " + std::to_string(static_cast<int>(type)));
}

Expected<std::string, std::string> parse_cname(Bytes message, size_t offset, size_t length) {
  if (!in_bounds(message, offset, length))
    return unexpected("rdata runs past the end of the message" + at(offset));
  auto name = read_rdata_name(message, offset, offset + length);
  if (!name) return unexpected("CNAME target: " + name.error());
  return name;
}

Expected<uint32_t, std::string> parse_soa_minimum(Bytes message, size_t offset, size_t length) {
  if (!in_bounds(message, offset, length))
    return unexpected("rdata runs past the end of the message" + at(offset));
  const size_t limit = offset + length;
  Bytes bounded = message.first(limit);
  auto mname = read_name(bounded, offset);
  if (!mname) return unexpected("SOA MNAME: " + mname.error());
  auto rname = read_name(bounded, mname->end);
  if (!rname) return unexpected("SOA RNAME: " + rname.error());
  if (limit - rname->end != 20)
    return unexpected("SOA rdata: bad length of the counters" + at(offset));
  return get32(message, rname->end + 16);
}

bool names_equal(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

}  // namespace mailgate::dns::wire
