// tests/unit/dns/resolver_server_test.cc — tests gateway/dns/resolver.cc against a real DNS
// server on loopback (unbound, started by dns_server_fixture.h with test zones): answers
// through a forwarder, the cache (answers, also negative ones, survive the server being
// killed), SERVFAIL and REFUSED upstream as tempfail, and failover between forwarders.
// Skipped when unbound(8) is not installed. No query goes anywhere but 127.0.0.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "dns/names.h"
#include "dns/resolver.h"
#include "dns_server_fixture.h"

namespace mailgate::dns {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Most names are under "dnstest.example."; example.test checks that the resolver passes
// "test." (which libunbound would answer itself) to its forwarders, and the reverse data in
// 10.in-addr.arpa and 2.0.192.in-addr.arpa that private and documentation reverse zones
// (AS112 and RFC 5737 defaults of libunbound) go upstream too.
const char* const kServerZones = R"(
local-zone: "dnstest.example." static
local-data: "dnstest.example. 3600 IN SOA ns.dnstest.example. hostmaster.dnstest.example. 1 3600 600 86400 60"
local-data: "dnstest.example. 300 IN MX 10 mx1.dnstest.example."
local-data: "dnstest.example. 300 IN MX 20 mx2.dnstest.example."
local-data: "a.dnstest.example. 300 IN A 192.0.2.10"
local-data: "a.dnstest.example. 300 IN AAAA 2001:db8::10"
local-data: 'txt.dnstest.example. 300 IN TXT "v=spf1 a" " -all"'
local-data: "short.dnstest.example. 1 IN A 192.0.2.11"
local-zone: "10.in-addr.arpa." static
local-data-ptr: "10.1.2.3 host.dnstest.example."
local-zone: "refused.dnstest.example." refuse
local-zone: "example.test." static
local-data: "example.test. 300 IN MX 10 mail.example.test."
local-zone: "2.0.192.in-addr.arpa." static
local-data-ptr: "192.0.2.25 mail.example.test."
)";

std::vector<std::string> texts(const Result& r) {
  std::vector<std::string> out;
  for (const Record& rec : r.records) out.push_back(rec.text);
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<Resolver> make(ResolverConfig config) {
  auto r = Resolver::create(std::move(config));
  if (!r) {
    ADD_FAILURE() << r.error();
    return nullptr;
  }
  return std::move(*r);
}

ResolverConfig forwarding_to(const std::vector<std::string>& forwarders,
                             std::chrono::milliseconds timeout) {
  ResolverConfig c;
  for (const auto& f : forwarders) c.forwarders.push_back(*parse_forwarder(f));
  c.timeout = timeout;
  return c;
}

class UnboundServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::UnboundServer::available()) GTEST_SKIP() << "unbound(8) is not installed";
    server_.start(kServerZones);
    resolver_ = make(forwarding_to({server_.forwarder()}, 1000ms));
    ASSERT_NE(resolver_, nullptr);
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "unbound log:\n" << server_.log();
  }
  testing::UnboundServer server_;
  std::unique_ptr<Resolver> resolver_;
};

TEST_F(UnboundServerTest, AnswersThroughTheForwarder) {
  Result a = resolver_->resolve("a.dnstest.example", RRType::kA);
  ASSERT_EQ(a.status, Status::kOk) << a.error;
  EXPECT_EQ(texts(a), (std::vector<std::string>{"192.0.2.10"}));
  EXPECT_LE(a.ttl, 300u);

  Result aaaa = resolver_->resolve("a.dnstest.example", RRType::kAAAA);
  ASSERT_EQ(aaaa.status, Status::kOk) << aaaa.error;
  EXPECT_EQ(texts(aaaa), (std::vector<std::string>{"2001:db8::10"}));

  Result mx = resolver_->resolve("dnstest.example", RRType::kMX);
  ASSERT_EQ(mx.status, Status::kOk) << mx.error;
  ASSERT_EQ(mx.records.size(), 2u);
  for (const Record& r : mx.records)
    EXPECT_EQ(r.text, r.preference == 10 ? "mx1.dnstest.example" : "mx2.dnstest.example");

  Result txt = resolver_->resolve("txt.dnstest.example", RRType::kTXT);
  ASSERT_EQ(txt.status, Status::kOk) << txt.error;
  ASSERT_EQ(txt.records.size(), 1u);
  EXPECT_EQ(txt.records[0].text, "v=spf1 a -all");
  EXPECT_EQ(txt.records[0].strings, (std::vector<std::string>{"v=spf1 a", " -all"}));

  Result ptr = resolver_->resolve(*ptr_name("10.1.2.3"), RRType::kPTR);
  ASSERT_EQ(ptr.status, Status::kOk) << ptr.error;
  EXPECT_EQ(texts(ptr), (std::vector<std::string>{"host.dnstest.example"}));

  Result nx = resolver_->resolve("nope.dnstest.example", RRType::kA);
  EXPECT_EQ(nx.status, Status::kNxDomain);
  EXPECT_GT(nx.ttl, 0u);
  EXPECT_LE(nx.ttl, 60u);

  EXPECT_EQ(resolver_->resolve("txt.dnstest.example", RRType::kMX).status, Status::kNoData);
}

TEST_F(UnboundServerTest, SpecialZonesGoToTheForwarder) {
  Result mx = resolver_->resolve("example.test", RRType::kMX);
  ASSERT_EQ(mx.status, Status::kOk) << mx.error;
  EXPECT_EQ(texts(mx), (std::vector<std::string>{"mail.example.test"}));
  Result ptr = resolver_->resolve(*ptr_name("192.0.2.25"), RRType::kPTR);
  ASSERT_EQ(ptr.status, Status::kOk) << ptr.error;
  EXPECT_EQ(texts(ptr), (std::vector<std::string>{"mail.example.test"}));
  // localhost stays libunbound's own.
  Result local = resolver_->resolve("localhost", RRType::kA);
  ASSERT_EQ(local.status, Status::kOk) << local.error;
  EXPECT_EQ(texts(local), (std::vector<std::string>{"127.0.0.1"}));
}

TEST_F(UnboundServerTest, AsyncThroughTheForwarder) {
  asio::io_context io;
  auto done = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<std::vector<Result>> {
        std::vector<Result> out;
        out.push_back(co_await resolver_->async_resolve("dnstest.example", RRType::kMX));
        out.push_back(co_await resolver_->async_resolve("a.dnstest.example", RRType::kA));
        out.push_back(co_await resolver_->async_resolve("nope.dnstest.example", RRType::kTXT));
        co_return out;
      },
      asio::use_future);
  io.run();
  auto results = done.get();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].status, Status::kOk) << results[0].error;
  EXPECT_EQ(results[0].records.size(), 2u);
  EXPECT_EQ(texts(results[1]), (std::vector<std::string>{"192.0.2.10"}));
  EXPECT_EQ(results[2].status, Status::kNxDomain);
}

TEST_F(UnboundServerTest, CacheAnswersAfterTheServerIsGone) {
  ASSERT_EQ(resolver_->resolve("a.dnstest.example", RRType::kA).status, Status::kOk);
  ASSERT_EQ(resolver_->resolve("dnstest.example", RRType::kMX).status, Status::kOk);
  ASSERT_EQ(resolver_->resolve("nope.dnstest.example", RRType::kA).status, Status::kNxDomain);
  ASSERT_EQ(resolver_->resolve("short.dnstest.example", RRType::kA).status, Status::kOk);

  server_.kill_now();
  ASSERT_FALSE(testing::probe(server_.port(), "a.dnstest.example", 1, 200ms)) << "still answering";

  const auto start = Clock::now();
  Result a = resolver_->resolve("a.dnstest.example", RRType::kA);
  Result mx = resolver_->resolve("dnstest.example", RRType::kMX);
  Result nx = resolver_->resolve("nope.dnstest.example", RRType::kA);
  EXPECT_LT(Clock::now() - start, 500ms);  // no round trip, let alone a timeout
  ASSERT_EQ(a.status, Status::kOk) << a.error;
  EXPECT_EQ(texts(a), (std::vector<std::string>{"192.0.2.10"}));
  EXPECT_EQ(mx.status, Status::kOk) << mx.error;
  EXPECT_EQ(mx.records.size(), 2u);
  EXPECT_EQ(nx.status, Status::kNxDomain);  // negative answers are cached too

  // Past its TTL of 1 s the short-lived record is gone from the cache, and so is the server.
  // (libunbound counts TTLs in whole seconds and keeps a record through its last second.)
  std::this_thread::sleep_for(2100ms);
  Result expired = resolver_->resolve("short.dnstest.example", RRType::kA);
  EXPECT_EQ(expired.status, Status::kTempfail) << to_string(expired.status) << " " << expired.error;
  // A name never asked: the server is gone, so no answer.
  Result never = resolver_->resolve("never.dnstest.example", RRType::kA);
  EXPECT_EQ(never.status, Status::kTempfail);
  ResolverMetrics m = resolver_->metrics();
  EXPECT_EQ(m.queries, 9u);
  EXPECT_GE(m.latency[0] + m.latency[1], 3u);  // the cached answers
}

TEST_F(UnboundServerTest, RefusedUpstreamIsTempfail) {
  // libunbound turns an upstream REFUSED into SERVFAIL: the answer may come elsewhere later.
  Result r = resolver_->resolve("x.refused.dnstest.example", RRType::kA);
  EXPECT_EQ(r.status, Status::kTempfail);
  EXPECT_EQ(r.error, "SERVFAIL");
}

TEST_F(UnboundServerTest, FailsOverFromASilentForwarder) {
  testing::SilentServer silent;
  auto resolver = make(forwarding_to({silent.forwarder(), server_.forwarder()}, 4000ms));
  ASSERT_NE(resolver, nullptr);
  for (const char* name : {"a.dnstest.example", "dnstest.example"}) {
    Result r = resolver->resolve(name, name[0] == 'a' ? RRType::kA : RRType::kMX);
    EXPECT_EQ(r.status, Status::kOk) << name << ": " << r.error;
  }
}

TEST_F(UnboundServerTest, DnssecBogusIsTempfail) {
  // A trust anchor for dnstest.example., which the server serves unsigned: the validator
  // must call its answers bogus. Names outside the anchor stay insecure and answer.
  testing::TempDir dir("mailgate-dns-ta");
  const std::string anchor = dir.file("ta.key");
  std::ofstream(anchor) << "dnstest.example. 3600 IN DS 12345 13 2 "
                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
  ResolverConfig c = forwarding_to({server_.forwarder()}, 2000ms);
  c.dnssec = true;
  c.trust_anchor_file = anchor;
  auto resolver = make(c);
  ASSERT_NE(resolver, nullptr);
  Result bogus = resolver->resolve("a.dnstest.example", RRType::kA);
  EXPECT_EQ(bogus.status, Status::kTempfail);
  EXPECT_EQ(bogus.error.rfind("DNSSEC validation failed", 0), 0u) << bogus.error;
  EXPECT_FALSE(bogus.secure);
  Result insecure = resolver->resolve("example.test", RRType::kMX);
  EXPECT_EQ(insecure.status, Status::kOk) << insecure.error;
  EXPECT_FALSE(insecure.secure);
}

TEST(UpstreamServfail, IsTempfailBeforeTheTimeout) {
  testing::FakeDnsServer servfail(2);
  ResolverConfig c = forwarding_to({servfail.forwarder()}, 5000ms);
  c.retries = 1;
  auto resolver = make(c);
  ASSERT_NE(resolver, nullptr);
  const auto start = Clock::now();
  Result r = resolver->resolve("a.servfail.example", RRType::kA);
  EXPECT_EQ(r.status, Status::kTempfail);
  EXPECT_EQ(r.error, "SERVFAIL");
  EXPECT_LT(Clock::now() - start, 4s);
  EXPECT_GE(servfail.queries(), 1);
  EXPECT_EQ(resolver->metrics().timeouts, 0u);
}

TEST(UpstreamSilent, AsyncTempfailWithinTheTimeout) {
  testing::SilentServer silent;
  auto resolver = make(forwarding_to({silent.forwarder()}, 250ms));
  ASSERT_NE(resolver, nullptr);
  asio::io_context io;
  const auto start = Clock::now();
  auto f = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<Result> {
        co_return co_await resolver->async_resolve("a.silent.example", RRType::kMX);
      },
      asio::use_future);
  io.run();
  Result r = f.get();
  EXPECT_EQ(r.status, Status::kTempfail);
  EXPECT_NE(r.error.find("timed out"), std::string::npos);
  EXPECT_GE(Clock::now() - start, 240ms);
  EXPECT_LT(Clock::now() - start, 2s);
}

}  // namespace
}  // namespace mailgate::dns
