// tests/unit/dns/answer_test.cc — tests gateway/dns/answer.cc: ub_result to Result, with
// hand-made ub_result structs and answer packets: statuses from rcodes and flags, CNAME
// chains, negative TTLs from the SOA, the fallback to libunbound's own rdata, and malformed
// answers.
#include "dns/answer.h"

#include <gtest/gtest.h>
#include <unbound.h>

#include <string>
#include <vector>

#include "dns/wire.h"
#include "message_builder.h"

namespace mailgate::dns {
namespace {

using testing::MessageBuilder;

// A ub_result that points into buffers owned by the test.
struct FakeResult {
  ub_result r{};
  std::vector<uint8_t> packet;
  std::string qname = "example.test.";
  std::vector<std::string> rdata;
  std::vector<char*> data;
  std::vector<int> len;

  ub_result* get() {
    r.qname = qname.data();
    r.answer_packet = packet.empty() ? nullptr : packet.data();
    r.answer_len = static_cast<int>(packet.size());
    data.clear();
    len.clear();
    for (auto& d : rdata) {
      data.push_back(d.data());
      len.push_back(static_cast<int>(d.size()));
    }
    data.push_back(nullptr);
    r.data = data.data();
    r.len = len.data();
    return &r;
  }
};

std::vector<uint8_t> mx_packet() {
  MessageBuilder b;
  b.header(7, 0x8180, 1, 3, 0, 0);
  size_t q = b.size();
  b.question("example.test", 15);
  const char* hosts[] = {"mx2", "mx1", "mx3"};
  uint16_t prefs[] = {20, 10, 30};
  for (int i = 0; i < 3; ++i) {
    b.pointer(q).rr_fixed(15, 300 - static_cast<uint32_t>(i));
    b.put16(prefs[i]);
    b.name_with_pointer(hosts[i], q);
    b.end_rr();
  }
  return b.bytes();
}

std::vector<uint8_t> negative_packet(int rcode, bool with_soa) {
  MessageBuilder b;
  b.header(7, static_cast<uint16_t>(0x8180 | rcode), 1, 0, with_soa ? 1 : 0, 0);
  size_t q = b.size();
  b.question("nope.example.test", 1);
  if (with_soa) {
    b.name("example.test");
    b.rr_fixed(wire::kTypeSoa, 3600);
    b.name_with_pointer("ns", q + 5);  // "example.test" inside the question name
    b.name_with_pointer("hostmaster", q + 5);
    b.put32(1).put32(3600).put32(600).put32(86400).put32(120);
    b.end_rr();
  }
  return b.bytes();
}

TEST(MakeResult, MxRecordsInAnswerOrder) {
  FakeResult f;
  f.packet = mx_packet();
  f.r.havedata = 1;
  f.r.ttl = 298;
  Result r = make_result(0, f.get(), RRType::kMX);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].text, "mx2.example.test");
  EXPECT_EQ(r.records[0].preference, 20);
  EXPECT_EQ(r.records[1].text, "mx1.example.test");
  EXPECT_EQ(r.records[1].preference, 10);
  EXPECT_EQ(r.records[2].ttl, 298u);
  EXPECT_EQ(r.ttl, 298u);
  EXPECT_EQ(r.canonical_name, "example.test");
  EXPECT_FALSE(r.secure);
}

TEST(MakeResult, FollowsCnameChainAndIgnoresOtherOwners) {
  MessageBuilder b;
  b.header(7, 0x8180, 1, 5, 0, 0);
  size_t q = b.size();
  b.question("alias.example.test", 1);
  b.pointer(q).rr_fixed(wire::kTypeCname, 60);
  size_t mid = b.size();
  b.name_with_pointer("middle", q + 6);  // "example.test" inside "alias.example.test"
  b.end_rr();
  b.pointer(mid).rr_fixed(wire::kTypeCname, 60);
  size_t target = b.size();
  b.name_with_pointer("host", q + 6);
  b.end_rr();
  b.pointer(target).rr_fixed(1, 50).put8(192).put8(0).put8(2).put8(1).end_rr();
  b.pointer(target).rr_fixed(1, 40).put8(192).put8(0).put8(2).put8(2).end_rr();
  b.name("stray.example.test");
  b.rr_fixed(1, 10).put8(203).put8(0).put8(113).put8(9).end_rr();
  FakeResult f;
  f.qname = "alias.example.test.";
  f.packet = b.bytes();
  f.r.havedata = 1;
  Result r = make_result(0, f.get(), RRType::kA);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].text, "192.0.2.1");
  EXPECT_EQ(r.records[1].text, "192.0.2.2");
  EXPECT_EQ(r.ttl, 40u);
  EXPECT_EQ(r.canonical_name, "host.example.test");
}

TEST(MakeResult, NxDomainTakesNegativeTtlFromSoa) {
  FakeResult f;
  f.packet = negative_packet(3, true);
  f.r.rcode = 3;
  f.r.nxdomain = 1;
  Result r = make_result(0, f.get(), RRType::kA);
  EXPECT_EQ(r.status, Status::kNxDomain);
  EXPECT_EQ(r.ttl, 120u);  // min(SOA TTL 3600, MINIMUM 120)
  EXPECT_TRUE(r.records.empty());
}

TEST(MakeResult, NoDataWithoutSoaHasZeroTtl) {
  FakeResult f;
  f.packet = negative_packet(0, false);
  Result r = make_result(0, f.get(), RRType::kMX);
  EXPECT_EQ(r.status, Status::kNoData);
  EXPECT_EQ(r.ttl, 0u);
}

TEST(MakeResult, RcodesAndFailures) {
  FakeResult servfail;
  servfail.r.rcode = 2;
  EXPECT_EQ(make_result(0, servfail.get(), RRType::kA).status, Status::kTempfail);

  FakeResult refused;
  refused.r.rcode = 5;
  Result r = make_result(0, refused.get(), RRType::kA);
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, "REFUSED");

  Result no_result = make_result(UB_NOMEM, nullptr, RRType::kA);
  EXPECT_EQ(no_result.status, Status::kTempfail);
  EXPECT_NE(no_result.error.find("out of memory"), std::string::npos);
  EXPECT_EQ(make_result(UB_SYNTAX, nullptr, RRType::kA).status, Status::kError);
  EXPECT_EQ(make_result(0, nullptr, RRType::kA).status, Status::kTempfail);
}

TEST(MakeResult, BogusIsTempfail) {
  FakeResult f;
  f.r.rcode = 2;
  f.r.bogus = 1;
  std::string why = "signature expired";
  f.r.why_bogus = why.data();
  Result r = make_result(0, f.get(), RRType::kA);
  EXPECT_EQ(r.status, Status::kTempfail);
  EXPECT_NE(r.error.find("signature expired"), std::string::npos);
}

TEST(MakeResult, SecureFlagIsPassedOn) {
  FakeResult f;
  f.packet = mx_packet();
  f.r.havedata = 1;
  f.r.secure = 1;
  EXPECT_TRUE(make_result(0, f.get(), RRType::kMX).secure);
}

TEST(MakeResult, FallsBackToLibunboundRdataWhenThePacketIsUnusable) {
  FakeResult f;
  f.packet = {1, 2, 3};  // not a DNS message
  f.rdata = {
      std::string("\x00\x0a\x04mail\x07"
                  "example\x04test\x00",
                  21)};
  f.r.havedata = 1;
  f.r.ttl = 77;
  std::string canon = "example.test.";
  f.r.canonname = canon.data();
  Result r = make_result(0, f.get(), RRType::kMX);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].text, "mail.example.test");
  EXPECT_EQ(r.records[0].preference, 10);
  EXPECT_EQ(r.ttl, 77u);
  EXPECT_EQ(r.canonical_name, "example.test");
}

TEST(MakeResult, MalformedRecordsAreSkippedOrAnError) {
  // One good and one bad A record: the good one is kept.
  MessageBuilder b;
  b.header(7, 0x8180, 1, 2, 0, 0);
  size_t q = b.size();
  b.question("a.example.test", 1);
  b.pointer(q).rr_fixed(1, 60).put8(192).put8(0).put8(2).end_rr();  // 3 octets
  b.pointer(q).rr_fixed(1, 60).put8(192).put8(0).put8(2).put8(7).end_rr();
  FakeResult f;
  f.packet = b.bytes();
  f.r.havedata = 1;
  Result r = make_result(0, f.get(), RRType::kA);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].text, "192.0.2.7");

  // Only bad records, and nothing to fall back on: an error saying why.
  MessageBuilder bad;
  bad.header(7, 0x8180, 1, 1, 0, 0);
  q = bad.size();
  bad.question("a.example.test", 1);
  bad.pointer(q).rr_fixed(1, 60).put8(1).end_rr();
  FakeResult g;
  g.packet = bad.bytes();
  g.r.havedata = 1;
  Result e = make_result(0, g.get(), RRType::kA);
  EXPECT_EQ(e.status, Status::kError);
  EXPECT_NE(e.error.find("malformed answer"), std::string::npos) << e.error;
}

}  // namespace
}  // namespace mailgate::dns
