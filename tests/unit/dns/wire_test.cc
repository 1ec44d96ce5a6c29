// tests/unit/dns/wire_test.cc — tests gateway/dns/wire.cc: names (compression, escapes,
// limits, loops), messages, and the rdata of A, AAAA, MX, TXT, PTR, CNAME and SOA, with
// crafted and malformed buffers; then random and mutated buffers that must never crash.
#include "dns/wire.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "message_builder.h"

namespace mailgate::dns::wire {
namespace {

using testing::MessageBuilder;

Bytes span_of(const std::vector<uint8_t>& v) { return Bytes(v.data(), v.size()); }

TEST(ReadName, PlainName) {
  MessageBuilder b;
  b.name("mail.example.test");
  auto n = read_name(span_of(b.bytes()), 0);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(n->text, "mail.example.test");
  EXPECT_EQ(n->end, b.size());
}

TEST(ReadName, Root) {
  std::vector<uint8_t> root = {0};
  auto n = read_name(span_of(root), 0);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->text, ".");
  EXPECT_EQ(n->end, 1u);
}

TEST(ReadName, CompressionPointerBackwards) {
  MessageBuilder b;
  size_t base = b.name("example.test");
  size_t at = b.name_with_pointer("mx1", base);
  auto n = read_name(span_of(b.bytes()), at);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(n->text, "mx1.example.test");
  EXPECT_EQ(n->end, b.size());  // just past the pointer, not where it jumped
}

TEST(ReadName, ChainOfPointers) {
  MessageBuilder b;
  size_t test = b.name("test");
  size_t example = b.name_with_pointer("example", test);
  size_t mx = b.name_with_pointer("mx", example);
  b.pointer(mx);  // a bare pointer to a name that itself ends in pointers
  auto n = read_name(span_of(b.bytes()), b.size() - 2);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(n->text, "mx.example.test");
}

TEST(ReadName, PointerToItselfIsRefused) {
  MessageBuilder b;
  b.put16(0);  // padding so the pointer is not at 0
  b.pointer(2);
  auto n = read_name(span_of(b.bytes()), 2);
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().find("backwards"), std::string::npos) << n.error();
}

TEST(ReadName, ForwardPointerIsRefused) {
  MessageBuilder b;
  b.pointer(4);
  b.name("x");
  EXPECT_FALSE(read_name(span_of(b.bytes()), 0));
}

TEST(ReadName, LoopBetweenTwoPointersIsRefused) {
  // 0: pointer to 2; 2: pointer to 0. The second one goes backwards, the first forwards.
  std::vector<uint8_t> loop = {0xc0, 0x02, 0xc0, 0x00};
  EXPECT_FALSE(read_name(span_of(loop), 0));
  EXPECT_FALSE(read_name(span_of(loop), 2));
}

TEST(ReadName, TruncatedInputs) {
  std::vector<uint8_t> cases[] = {
      {},                  // nothing
      {3, 'a', 'b'},       // label longer than what is left
      {3, 'a', 'b', 'c'},  // no terminating zero
      {0xc0},              // half a pointer
      {1, 'a', 0xc0},      // half a pointer after a label
  };
  for (const auto& c : cases) EXPECT_FALSE(read_name(span_of(c), 0)) << c.size();
  std::vector<uint8_t> one = {0};
  EXPECT_FALSE(read_name(span_of(one), 1));   // offset at the end
  EXPECT_FALSE(read_name(span_of(one), 99));  // offset past the end
}

TEST(ReadName, ReservedLabelTypesAreRefused) {
  std::vector<uint8_t> extended = {0x41, 0};  // 01xxxxxx: EDNS extended label (obsolete)
  std::vector<uint8_t> reserved = {0x80, 0};  // 10xxxxxx: reserved
  EXPECT_FALSE(read_name(span_of(extended), 0));
  EXPECT_FALSE(read_name(span_of(reserved), 0));
}

TEST(ReadName, LengthLimits) {
  MessageBuilder ok;
  ok.name(std::string(63, 'a') + ".test");
  EXPECT_TRUE(read_name(span_of(ok.bytes()), 0));

  // 4 labels of 63 octets: 4 * 64 + 1 = 257 > 255.
  MessageBuilder too_long;
  std::string label(63, 'b');
  too_long.name(label + "." + label + "." + label + "." + label);
  auto n = read_name(span_of(too_long.bytes()), 0);
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().find("255"), std::string::npos) << n.error();

  // Exactly 255: 3 * 64 + 62 + 1.
  MessageBuilder exact;
  exact.name(label + "." + label + "." + label + "." + std::string(61, 'c'));
  EXPECT_TRUE(read_name(span_of(exact.bytes()), 0));

  // Pointers cannot be used to build a name longer than 255 either.
  MessageBuilder via_pointers;
  size_t base = via_pointers.name(label + "." + label + "." + label);
  size_t next = via_pointers.name_with_pointer(label, base);
  EXPECT_FALSE(read_name(span_of(via_pointers.bytes()), next));
}

TEST(ReadName, EscapesSpecialBytes) {
  std::vector<uint8_t> name = {5, 'a', '.', 'b', ' ', '\\', 2, 0x00, 0xff, 0};
  auto n = read_name(span_of(name), 0);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(n->text, "a\\.b\\032\\\\.\\000\\255");
}

// A reply to "example.test MX" with three MX records whose names are compressed against the
// question, plus a SOA in the authority section.
std::vector<uint8_t> mx_reply(size_t* mx1_rdata = nullptr) {
  MessageBuilder b;
  b.header(0x1234, 0x8180, 1, 3, 1, 0);
  size_t qname = b.size();
  b.question("example.test", 15);
  const char* hosts[] = {"mx1", "mx2", "backup"};
  uint16_t prefs[] = {10, 20, 30};
  for (int i = 0; i < 3; ++i) {
    b.pointer(qname).rr_fixed(15, 300 + i);
    if (i == 0 && mx1_rdata) *mx1_rdata = b.size();
    b.put16(prefs[i]);
    b.name_with_pointer(hosts[i], qname);
    b.end_rr();
  }
  b.pointer(qname).rr_fixed(kTypeSoa, 3600);
  size_t ns = b.name_with_pointer("ns", qname);
  b.name_with_pointer("hostmaster", qname);
  b.put32(1).put32(3600).put32(600).put32(86400).put32(120);
  b.end_rr();
  (void)ns;
  return b.bytes();
}

TEST(ParseMessage, ReadsHeaderQuestionAnswersAndAuthority) {
  auto packet = mx_reply();
  auto m = parse_message(span_of(packet));
  ASSERT_TRUE(m) << m.error();
  EXPECT_EQ(m->header.id, 0x1234);
  EXPECT_EQ(m->header.rcode(), 0);
  EXPECT_EQ(m->qname, "example.test");
  EXPECT_EQ(m->qtype, 15);
  ASSERT_EQ(m->answers.size(), 3u);
  ASSERT_EQ(m->authority.size(), 1u);
  const char* expect[] = {"mx1.example.test", "mx2.example.test", "backup.example.test"};
  for (size_t i = 0; i < 3; ++i) {
    const auto& rr = m->answers[i];
    EXPECT_EQ(rr.owner, "example.test");
    EXPECT_EQ(rr.type, 15);
    EXPECT_EQ(rr.ttl, 300 + i);
    auto rec = parse_rdata(RRType::kMX, span_of(packet), rr.rdata_offset, rr.rdata_length);
    ASSERT_TRUE(rec) << rec.error();
    EXPECT_EQ(rec->text, expect[i]);
    EXPECT_EQ(rec->preference, 10 * (i + 1));
  }
  const auto& soa = m->authority[0];
  auto minimum = parse_soa_minimum(span_of(packet), soa.rdata_offset, soa.rdata_length);
  ASSERT_TRUE(minimum) << minimum.error();
  EXPECT_EQ(*minimum, 120u);
}

TEST(ParseMessage, EveryTruncationIsAnErrorNotACrash) {
  auto packet = mx_reply();
  for (size_t len = 0; len < packet.size(); ++len) {
    auto m = parse_message(Bytes(packet.data(), len));
    EXPECT_FALSE(m) << "length " << len;
  }
}

TEST(ParseMessage, CountsThatLieAreErrors) {
  MessageBuilder b;
  b.header(1, 0x8180, 1, 65535, 0, 0).question("a.test", 1);
  EXPECT_FALSE(parse_message(span_of(b.bytes())));
}

TEST(ParseMessage, TtlWithTopBitIsZero) {
  MessageBuilder b;
  b.header(1, 0x8180, 1, 1, 0, 0).question("a.test", 1);
  b.pointer(12).rr_fixed(1, 0x80000001u).raw(std::string("\xc0\x00\x02\x01", 4)).end_rr();
  auto m = parse_message(span_of(b.bytes()));
  ASSERT_TRUE(m) << m.error();
  EXPECT_EQ(m->answers[0].ttl, 0u);
}

TEST(ParseRdata, Addresses) {
  std::vector<uint8_t> v4 = {192, 0, 2, 1};
  auto a = parse_rdata(RRType::kA, span_of(v4), 0, 4);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->text, "192.0.2.1");
  std::vector<uint8_t> v6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  auto aaaa = parse_rdata(RRType::kAAAA, span_of(v6), 0, 16);
  ASSERT_TRUE(aaaa);
  EXPECT_EQ(aaaa->text, "2001:db8::1");
  // Wrong lengths.
  EXPECT_FALSE(parse_rdata(RRType::kA, span_of(v4), 0, 3));
  EXPECT_FALSE(parse_rdata(RRType::kA, span_of(v6), 0, 16));
  EXPECT_FALSE(parse_rdata(RRType::kAAAA, span_of(v6), 0, 15));
  EXPECT_FALSE(parse_rdata(RRType::kAAAA, span_of(v4), 0, 4));
  // Range outside the buffer.
  EXPECT_FALSE(parse_rdata(RRType::kA, span_of(v4), 1, 4));
  EXPECT_FALSE(parse_rdata(RRType::kA, span_of(v4), 5, 4));
  EXPECT_FALSE(parse_rdata(RRType::kA, span_of(v4), SIZE_MAX, 4));
}

TEST(ParseRdata, MxMalformed) {
  // Too short for a preference and a name.
  std::vector<uint8_t> short_mx = {0, 10};
  EXPECT_FALSE(parse_rdata(RRType::kMX, span_of(short_mx), 0, 2));
  // Name runs past the rdata (though not past the buffer).
  std::vector<uint8_t> overrun = {0, 10, 4, 'm', 'a', 'i', 'l', 0};
  EXPECT_FALSE(parse_rdata(RRType::kMX, span_of(overrun), 0, 6));
  EXPECT_TRUE(parse_rdata(RRType::kMX, span_of(overrun), 0, 8));
  // Trailing bytes after the name.
  std::vector<uint8_t> trailing = {0, 10, 1, 'm', 0, 'x'};
  EXPECT_FALSE(parse_rdata(RRType::kMX, span_of(trailing), 0, 6));
  // Pointer out of the message.
  std::vector<uint8_t> wild = {0, 10, 0xc0, 0x3f};
  EXPECT_FALSE(parse_rdata(RRType::kMX, span_of(wild), 0, 4));
  // Pointer into the rdata itself (forwards of itself is impossible; to itself refused).
  std::vector<uint8_t> self = {0, 10, 0xc0, 0x02};
  EXPECT_FALSE(parse_rdata(RRType::kMX, span_of(self), 0, 4));
}

TEST(ParseRdata, MxAndPtrDecompressAgainstTheMessage) {
  size_t rdata = 0;
  auto packet = mx_reply(&rdata);
  auto m = parse_message(span_of(packet));
  ASSERT_TRUE(m);
  const auto& rr = m->answers[0];
  EXPECT_EQ(rr.rdata_offset, rdata);
  // The same bytes parsed standalone lose their context: the pointer leads nowhere.
  std::vector<uint8_t> alone(packet.begin() + static_cast<long>(rr.rdata_offset),
                             packet.begin() + static_cast<long>(rr.rdata_offset + rr.rdata_length));
  EXPECT_FALSE(parse_rdata(RRType::kMX, span_of(alone), 0, alone.size()));

  MessageBuilder b;
  b.header(1, 0x8180, 1, 1, 0, 0);
  size_t q = b.size();
  b.question("1.2.0.192.in-addr.arpa", 12);
  size_t host = b.name("example.test");  // pretend: some earlier name in the message
  b.pointer(q).rr_fixed(12, 60);
  size_t at = b.size();
  b.name_with_pointer("host", host);
  b.end_rr();
  auto ptr = parse_rdata(RRType::kPTR, span_of(b.bytes()), at, b.size() - at);
  ASSERT_TRUE(ptr) << ptr.error();
  EXPECT_EQ(ptr->text, "host.example.test");
}

TEST(ParseRdata, Txt) {
  MessageBuilder b;
  b.character_string("v=spf1 ").character_string("").character_string("-all");
  auto t = parse_rdata(RRType::kTXT, span_of(b.bytes()), 0, b.size());
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->text, "v=spf1 -all");
  ASSERT_EQ(t->strings.size(), 3u);
  EXPECT_EQ(t->strings[1], "");

  // 255-octet strings, the most one can hold, and binary bytes kept as they are.
  MessageBuilder big;
  std::string s255(255, 'k');
  big.character_string(s255).character_string(s255).character_string(std::string("\0\x01\xff", 3));
  auto t2 = parse_rdata(RRType::kTXT, span_of(big.bytes()), 0, big.size());
  ASSERT_TRUE(t2);
  EXPECT_EQ(t2->text.size(), 513u);
  EXPECT_EQ(t2->strings[2], std::string("\0\x01\xff", 3));

  // A single empty string is a valid TXT; no string at all is not.
  std::vector<uint8_t> empty_string = {0};
  auto t3 = parse_rdata(RRType::kTXT, span_of(empty_string), 0, 1);
  ASSERT_TRUE(t3);
  EXPECT_EQ(t3->text, "");
  EXPECT_FALSE(parse_rdata(RRType::kTXT, span_of(empty_string), 0, 0));

  // A length octet promising more than the rdata holds.
  std::vector<uint8_t> overrun = {5, 'a', 'b', 'c'};
  EXPECT_FALSE(parse_rdata(RRType::kTXT, span_of(overrun), 0, 4));
  std::vector<uint8_t> overrun_in_buffer = {3, 'a', 'b', 'c', 'd'};
  EXPECT_FALSE(parse_rdata(RRType::kTXT, span_of(overrun_in_buffer), 0, 3));
}

TEST(ParseRdata, CnameAndSoaMalformed) {
  std::vector<uint8_t> cname = {1, 'a', 0};
  EXPECT_TRUE(parse_cname(span_of(cname), 0, 3));
  EXPECT_FALSE(parse_cname(span_of(cname), 0, 2));
  std::vector<uint8_t> soa_short = {0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(parse_soa_minimum(span_of(soa_short), 0, soa_short.size()));
}

TEST(NamesEqual, CaseInsensitiveAscii) {
  EXPECT_TRUE(names_equal("Mail.Example.TEST", "mail.example.test"));
  EXPECT_FALSE(names_equal("mail.example.test", "mail.example.tes"));
  EXPECT_FALSE(names_equal("a", "b"));
}

// Whatever the bytes, the parsers return; run under the sanitizers this also checks no read
// goes out of bounds.
void parse_everything(Bytes bytes) {
  auto m = parse_message(bytes);
  if (m) {
    for (const auto& rr : m->answers) {
      for (RRType t : {RRType::kA, RRType::kAAAA, RRType::kMX, RRType::kTXT, RRType::kPTR})
        (void)parse_rdata(t, bytes, rr.rdata_offset, rr.rdata_length);
      (void)parse_cname(bytes, rr.rdata_offset, rr.rdata_length);
      (void)parse_soa_minimum(bytes, rr.rdata_offset, rr.rdata_length);
    }
  }
  for (size_t off = 0; off < bytes.size(); off += 7) (void)read_name(bytes, off);
}

TEST(WireRobustness, RandomBuffers) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> buf(rng() % 300);
    for (auto& byte : buf) byte = static_cast<uint8_t>(rng());
    if (buf.size() >= 12 && (i & 1)) {  // plausible header counts, so the sections are read
      buf[4] = 0;
      buf[5] = 1;
      buf[6] = 0;
      buf[7] = static_cast<uint8_t>(rng() % 4);
    }
    parse_everything(Bytes(buf.data(), buf.size()));
  }
}

TEST(WireRobustness, MutatedValidReply) {
  const auto packet = mx_reply();
  for (size_t i = 0; i < packet.size(); ++i) {
    for (uint8_t value : {0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff}) {
      auto mutated = packet;
      mutated[i] = value;
      parse_everything(span_of(mutated));
    }
  }
}

}  // namespace
}  // namespace mailgate::dns::wire
