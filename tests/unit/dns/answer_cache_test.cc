// answer_cache_test.cc — dns::AnswerCache: what it keeps (final answers with a TTL), for how
// long, with the TTL that is left, names compared case-insensitively, and its bound; and the
// resolver answering a repeated blocking query from it (metrics.cache_hits).
#include "dns/answer_cache.h"

#include <gtest/gtest.h>

#include "dns/resolver.h"

namespace mailgate::dns {
namespace {

using namespace std::chrono_literals;
using Clock = AnswerCache::Clock;

Result answer(Status status, uint32_t ttl, std::string text = "192.0.2.1") {
  Result r;
  r.status = status;
  r.ttl = ttl;
  if (status == Status::kOk) r.records.push_back(Record{text, 0, ttl, {}});
  return r;
}

TEST(AnswerCache, KeepsAnAnswerUntilItsTtlWithTheTtlLeft) {
  AnswerCache cache;
  const auto t0 = Clock::now();
  cache.put("a.example.test", RRType::kA, answer(Status::kOk, 300), t0);
  auto hit = cache.get("a.example.test", RRType::kA, t0 + 100s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->ttl, 200u);
  ASSERT_EQ(hit->records.size(), 1u);
  EXPECT_EQ(hit->records[0].ttl, 200u);
  EXPECT_EQ(hit->records[0].text, "192.0.2.1");
  EXPECT_FALSE(cache.get("a.example.test", RRType::kA, t0 + 300s));
  EXPECT_EQ(cache.size(), 0u);  // the expired entry went with the lookup
}

TEST(AnswerCache, NamesAreCaseInsensitiveWithOrWithoutTheFinalDotAndTypesApart) {
  AnswerCache cache;
  const auto t0 = Clock::now();
  cache.put("Mail.Example.TEST.", RRType::kTXT, answer(Status::kNoData, 60), t0);
  EXPECT_TRUE(cache.get("mail.example.test", RRType::kTXT, t0));
  EXPECT_FALSE(cache.get("mail.example.test", RRType::kA, t0));
}

TEST(AnswerCache, OnlyFinalAnswersWithATtl) {
  AnswerCache cache;
  const auto t0 = Clock::now();
  cache.put("n.example.test", RRType::kA, answer(Status::kNxDomain, 60), t0);
  cache.put("t.example.test", RRType::kA, answer(Status::kTempfail, 60), t0);
  cache.put("e.example.test", RRType::kA, answer(Status::kError, 60), t0);
  cache.put("z.example.test", RRType::kA, answer(Status::kOk, 0), t0);
  EXPECT_TRUE(cache.get("n.example.test", RRType::kA, t0));
  EXPECT_FALSE(cache.get("t.example.test", RRType::kA, t0));
  EXPECT_FALSE(cache.get("e.example.test", RRType::kA, t0));
  EXPECT_FALSE(cache.get("z.example.test", RRType::kA, t0));
}

TEST(AnswerCache, BoundedExpiredFirst) {
  AnswerCache cache(3);
  const auto t0 = Clock::now();
  cache.put("short.test", RRType::kA, answer(Status::kOk, 1), t0);
  cache.put("b.test", RRType::kA, answer(Status::kOk, 300), t0);
  cache.put("c.test", RRType::kA, answer(Status::kOk, 300), t0);
  cache.put("d.test", RRType::kA, answer(Status::kOk, 300), t0 + 2s);  // short.test expired
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_TRUE(cache.get("b.test", RRType::kA, t0 + 2s));
  EXPECT_TRUE(cache.get("d.test", RRType::kA, t0 + 2s));
  cache.put("e.test", RRType::kA, answer(Status::kOk, 300), t0 + 2s);  // none expired: cleared
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_TRUE(cache.get("e.test", RRType::kA, t0 + 2s));
}

TEST(ResolverAnswerCache, RepeatedBlockingQueryIsAnsweredFromTheCache) {
  ResolverConfig c;
  c.use_system_resolver = false;
  c.local_zones_text =
      "local-zone: \"example.test.\" static\n"
      "local-data: \"example.test. 3600 IN SOA ns.example.test. h.example.test. 1 3600 600 "
      "86400 120\"\n"
      "local-data: \"a.example.test. 300 IN A 192.0.2.1\"\n";
  c.timeout = 3s;
  auto made = Resolver::create(std::move(c));
  ASSERT_TRUE(made) << made.error();
  Resolver& r = **made;
  Result first = r.resolve("a.example.test", RRType::kA);
  ASSERT_EQ(first.status, Status::kOk) << first.error;
  EXPECT_EQ(r.metrics().cache_hits, 0u);
  Result second = r.resolve("A.example.test", RRType::kA);
  ASSERT_EQ(second.status, Status::kOk);
  ASSERT_EQ(second.records.size(), 1u);
  EXPECT_EQ(second.records[0].text, "192.0.2.1");
  EXPECT_LE(second.ttl, first.ttl);
  Result nx = r.resolve("nope.example.test", RRType::kA);
  EXPECT_EQ(nx.status, Status::kNxDomain);
  EXPECT_EQ(r.resolve("nope.example.test", RRType::kA).status, Status::kNxDomain);
  ResolverMetrics m = r.metrics();
  EXPECT_EQ(m.cache_hits, 2u);
  EXPECT_EQ(m.sync_queries, 4u);  // hits count as queries answered
  EXPECT_EQ(m.ok, 2u);
  EXPECT_EQ(m.nxdomain, 2u);
}

}  // namespace
}  // namespace mailgate::dns
