// tests/unit/dns/resolver_test.cc — tests gateway/dns/resolver.cc without a DNS server:
// answers from local zones (A, AAAA, MX, TXT with several and long strings, PTR, NXDOMAIN,
// NODATA) through the blocking and the asynchronous API; completion on the caller's
// executor; concurrency; metrics; configuration errors. Timeouts, cancellation and shutdown
// use in-process sockets that never answer (dns_server_fixture.h). Nothing here sends a
// query off the machine: resolvers run in local-only mode or forward to loopback sockets.
#include "dns/resolver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "dns/names.h"
#include "dns_server_fixture.h"

namespace mailgate::dns {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kLong1(255, 'a');
const std::string kLong2(255, 'b');

std::string zones() {
  return "local-zone: \"example.test.\" static\n"
         "local-data: \"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. "
         "1 3600 600 86400 120\"\n"
         "local-data: \"example.test. 300 IN MX 20 mx2.example.test.\"\n"
         "local-data: \"example.test. 300 IN MX 10 mx1.example.test.\"\n"
         "local-data: \"example.test. 300 IN MX 10 mx1b.example.test.\"\n"
         "local-data: \"example.test. 300 IN MX 30 backup.other.test.\"\n"
         "local-data: \"a.example.test. 300 IN A 192.0.2.1\"\n"
         "local-data: \"a.example.test. 300 IN A 192.0.2.2\"\n"
         "local-data: \"a.example.test. 300 IN AAAA 2001:db8::1\"\n"
         "local-data: 'txt.example.test. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24\" \" -all\"'\n"
         "local-data: 'txt.example.test. 300 IN TXT \"second record\"'\n"
         "local-data: 'long.example.test. 300 IN TXT \"" +
         kLong1 + "\" \"" + kLong2 +
         "\" \"ccc\"'\n"
         "local-zone: \"2.0.192.in-addr.arpa.\" static\n"
         "local-data-ptr: \"192.0.2.1 a.example.test.\"\n"
         "local-zone: \"8.b.d.0.1.0.0.2.ip6.arpa.\" static\n"
         "local-data-ptr: \"2001:db8::1 a.example.test.\"\n";
}

ResolverConfig local_config() {
  ResolverConfig c;
  c.use_system_resolver = false;  // local zones only: nothing leaves the process
  c.local_zones_text = zones();
  c.timeout = 3s;
  return c;
}

std::unique_ptr<Resolver> make(ResolverConfig config) {
  auto r = Resolver::create(std::move(config));
  if (!r) {
    ADD_FAILURE() << r.error();
    return nullptr;
  }
  return std::move(*r);
}

std::vector<std::string> texts(const Result& r) {
  std::vector<std::string> out;
  for (const Record& rec : r.records) out.push_back(rec.text);
  std::sort(out.begin(), out.end());
  return out;
}

class LocalResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    resolver_ = make(local_config());
    ASSERT_NE(resolver_, nullptr);
  }
  std::unique_ptr<Resolver> resolver_;
};

TEST_F(LocalResolverTest, A) {
  Result r = resolver_->resolve("a.example.test", RRType::kA);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(texts(r), (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_GT(r.ttl, 0u);
  EXPECT_LE(r.ttl, 300u);
  EXPECT_FALSE(r.secure);
  EXPECT_EQ(r.canonical_name, "a.example.test");
  EXPECT_TRUE(r.error.empty());
}

TEST_F(LocalResolverTest, NamesAreCaseInsensitiveAndMayEndInADot) {
  EXPECT_EQ(resolver_->resolve("A.Example.TEST", RRType::kA).status, Status::kOk);
  EXPECT_EQ(resolver_->resolve("a.example.test.", RRType::kA).status, Status::kOk);
}

TEST_F(LocalResolverTest, Aaaa) {
  Result r = resolver_->resolve("a.example.test", RRType::kAAAA);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(texts(r), (std::vector<std::string>{"2001:db8::1"}));
}

TEST_F(LocalResolverTest, MxWithSeveralPreferences) {
  Result r = resolver_->resolve("example.test", RRType::kMX);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  std::vector<std::pair<uint16_t, std::string>> mx;
  for (const Record& rec : r.records) mx.emplace_back(rec.preference, rec.text);
  std::sort(mx.begin(), mx.end());
  EXPECT_EQ(mx, (std::vector<std::pair<uint16_t, std::string>>{{10, "mx1.example.test"},
                                                               {10, "mx1b.example.test"},
                                                               {20, "mx2.example.test"},
                                                               {30, "backup.other.test"}}));
}

TEST_F(LocalResolverTest, TxtKeepsStringsAndRecordsApart) {
  Result r = resolver_->resolve("txt.example.test", RRType::kTXT);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(texts(r), (std::vector<std::string>{"second record", "v=spf1 ip4:192.0.2.0/24 -all"}));
  for (const Record& rec : r.records) {
    if (rec.text == "second record") {
      EXPECT_EQ(rec.strings, (std::vector<std::string>{"second record"}));
    } else {
      EXPECT_EQ(rec.strings, (std::vector<std::string>{"v=spf1 ip4:192.0.2.0/24", " -all"}));
    }
  }
}

TEST_F(LocalResolverTest, LongTxtSplitIntoStrings) {
  Result r = resolver_->resolve("long.example.test", RRType::kTXT);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  ASSERT_EQ(r.records.size(), 1u);
  const Record& rec = r.records[0];
  EXPECT_EQ(rec.strings, (std::vector<std::string>{kLong1, kLong2, "ccc"}));
  EXPECT_EQ(rec.text, kLong1 + kLong2 + "ccc");
  EXPECT_EQ(rec.text.size(), 513u);
}

TEST_F(LocalResolverTest, Ptr) {
  auto v4 = ptr_name("192.0.2.1");
  ASSERT_TRUE(v4);
  Result r = resolver_->resolve(*v4, RRType::kPTR);
  ASSERT_EQ(r.status, Status::kOk) << r.error;
  EXPECT_EQ(texts(r), (std::vector<std::string>{"a.example.test"}));

  auto v6 = ptr_name("2001:db8::1");
  ASSERT_TRUE(v6);
  Result r6 = resolver_->resolve(*v6, RRType::kPTR);
  ASSERT_EQ(r6.status, Status::kOk) << r6.error;
  EXPECT_EQ(texts(r6), (std::vector<std::string>{"a.example.test"}));

  EXPECT_EQ(resolver_->resolve(*ptr_name("192.0.2.99"), RRType::kPTR).status, Status::kNxDomain);
}

TEST_F(LocalResolverTest, NxDomainWithNegativeTtl) {
  Result r = resolver_->resolve("nope.example.test", RRType::kA);
  EXPECT_EQ(r.status, Status::kNxDomain);
  EXPECT_TRUE(r.records.empty());
  EXPECT_GT(r.ttl, 0u);
  EXPECT_LE(r.ttl, 120u);  // the SOA's MINIMUM
}

TEST_F(LocalResolverTest, NoData) {
  Result r = resolver_->resolve("a.example.test", RRType::kMX);
  EXPECT_EQ(r.status, Status::kNoData);
  EXPECT_TRUE(r.records.empty());
  EXPECT_LE(r.ttl, 120u);
  EXPECT_EQ(resolver_->resolve("txt.example.test", RRType::kA).status, Status::kNoData);
}

TEST_F(LocalResolverTest, OutsideTheLocalZonesIsRefusedNotSentAnywhere) {
  Result r = resolver_->resolve("www.example.com", RRType::kA);
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error, "REFUSED");
}

TEST_F(LocalResolverTest, BadNamesEndAtOnce) {
  for (const char* bad : {"", "a..example.test", "a b.example.test"}) {
    Result r = resolver_->resolve(bad, RRType::kA);
    EXPECT_EQ(r.status, Status::kError) << bad;
    EXPECT_EQ(r.error.rfind("bad name", 0), 0u) << r.error;
  }
}

TEST_F(LocalResolverTest, AsyncCompletesOnTheCoroutinesThread) {
  asio::io_context io;
  const auto io_thread = std::this_thread::get_id();
  std::vector<Result> results;
  bool same_thread = true;
  auto done = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (RRType t : {RRType::kA, RRType::kAAAA, RRType::kMX, RRType::kTXT}) {
          const char* name = t == RRType::kMX    ? "example.test"
                             : t == RRType::kTXT ? "txt.example.test"
                                                 : "a.example.test";
          results.push_back(co_await resolver_->async_resolve(name, t));
          same_thread = same_thread && std::this_thread::get_id() == io_thread;
        }
        results.push_back(co_await resolver_->async_resolve("nope.example.test", RRType::kA));
      },
      asio::use_future);
  io.run();
  done.get();
  EXPECT_TRUE(same_thread);
  ASSERT_EQ(results.size(), 5u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(results[i].status, Status::kOk) << i << results[i].error;
  EXPECT_EQ(texts(results[0]), (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_EQ(results[2].records.size(), 4u);
  EXPECT_EQ(results[4].status, Status::kNxDomain);
}

TEST_F(LocalResolverTest, AsyncCallbackRunsOnItsBoundExecutor) {
  asio::io_context io;
  auto strand = asio::make_strand(io);
  std::atomic<bool> on_strand{false};
  Result got;
  resolver_->async_resolve("a.example.test", RRType::kA, asio::bind_executor(strand, [&](Result r) {
                             on_strand = strand.running_in_this_thread();
                             got = std::move(r);
                           }));
  // The work guard of the pending operation keeps run() going until the handler ran.
  io.run();
  EXPECT_TRUE(on_strand);
  EXPECT_EQ(got.status, Status::kOk);
}

TEST_F(LocalResolverTest, AsyncBadNameStillCompletesThroughTheExecutor) {
  asio::io_context io;
  bool called = false;
  resolver_->async_resolve("a..b", RRType::kA, asio::bind_executor(io, [&](Result r) {
                             called = true;
                             EXPECT_EQ(r.status, Status::kError);
                           }));
  EXPECT_FALSE(called);  // never inline in the initiating call
  io.run();
  EXPECT_TRUE(called);
}

TEST_F(LocalResolverTest, AsyncWithFuture) {
  std::future<Result> f =
      resolver_->async_resolve("a.example.test", RRType::kAAAA, asio::use_future);
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get().status, Status::kOk);
}

TEST_F(LocalResolverTest, ConcurrentSyncAndAsync) {
  constexpr int kThreads = 8, kPerThread = 200, kAsync = 1000;
  std::atomic<int> ok{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        RRType type = (i + t) % 2 ? RRType::kA : RRType::kMX;
        Result r = resolver_->resolve(type == RRType::kA ? "a.example.test" : "example.test", type);
        if (r.status == Status::kOk && r.records.size() == (type == RRType::kA ? 2u : 4u)) ++ok;
      }
    });
  }
  asio::io_context io;
  std::atomic<int> async_ok{0};
  for (int i = 0; i < kAsync; ++i) {
    resolver_->async_resolve("txt.example.test", RRType::kTXT,
                             asio::bind_executor(io, [&](Result r) {
                               if (r.status == Status::kOk && r.records.size() == 2) ++async_ok;
                             }));
  }
  std::vector<std::thread> io_threads;
  for (int i = 0; i < 4; ++i) io_threads.emplace_back([&] { io.run(); });
  for (auto& w : workers) w.join();
  for (auto& t : io_threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(async_ok.load(), kAsync);

  ResolverMetrics m = resolver_->metrics();
  EXPECT_EQ(m.sync_queries, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(m.async_queries, uint64_t{kAsync});
  EXPECT_EQ(m.queries, m.sync_queries + m.async_queries);
  EXPECT_EQ(m.ok, m.queries);
  EXPECT_EQ(m.in_flight, 0u);
  uint64_t by_latency = 0;
  for (uint64_t n : m.latency) by_latency += n;
  EXPECT_EQ(by_latency, m.queries);
}

TEST_F(LocalResolverTest, MetricsCountStatuses) {
  resolver_->resolve("a.example.test", RRType::kA);
  resolver_->resolve("nope.example.test", RRType::kA);
  resolver_->resolve("a.example.test", RRType::kMX);
  resolver_->resolve("www.example.com", RRType::kA);
  resolver_->resolve("a..b", RRType::kA);
  ResolverMetrics m = resolver_->metrics();
  EXPECT_EQ(m.queries, 5u);
  EXPECT_EQ(m.ok, 1u);
  EXPECT_EQ(m.nxdomain, 1u);
  EXPECT_EQ(m.nodata, 1u);
  EXPECT_EQ(m.error, 2u);
  EXPECT_EQ(m.tempfail, 0u);
  EXPECT_EQ(m.in_flight, 0u);
}

TEST(ResolverConfigErrors, NameTheBadItem) {
  auto expect_error = [](ResolverConfig c, const std::string& part) {
    auto r = Resolver::create(std::move(c));
    ASSERT_FALSE(r) << "expected an error containing: " << part;
    EXPECT_NE(r.error().find(part), std::string::npos) << r.error();
  };
  ResolverConfig c = local_config();
  c.local_zones_text = "local-zone: \"ok.test.\" static\nlocal-data: \"x.ok.test. IN MX ten x.\"\n";
  expect_error(c, "local zones:2: libunbound cannot parse local-data \"x.ok.test. IN MX ten x.\"");

  c = local_config();
  c.local_zones_text = "local-zone: \"ok.test.\" nonsense\n";
  expect_error(c, "local zones:1: bad local-zone \"ok.test.\" nonsense");

  c = local_config();
  c.local_zones_file = "/nonexistent/zones.conf";
  expect_error(c, "/nonexistent/zones.conf");

  c = local_config();
  c.unbound_options = {{"no-such-option", "1"}};
  expect_error(c, "libunbound option 'no-such-option: 1'");

  c = local_config();
  c.dnssec = true;
  c.trust_anchor_file = "/nonexistent/root.key";
  expect_error(c, "/nonexistent/root.key");

  c = local_config();
  c.use_system_resolver = true;
  c.resolv_conf = "/nonexistent/resolv.conf";
  expect_error(c, "cannot open resolv.conf /nonexistent/resolv.conf");

  c = local_config();
  c.timeout = 0ms;
  expect_error(c, "timeout");
}

TEST(ResolverModes, LocalZonesFileAndTextTogether) {
  testing::TempDir dir("mailgate-dns-zones");
  const std::string path = dir.file("zones.conf");
  std::ofstream(path) << "local-zone: \"file.test.\" static\n"
                         "local-data: \"f.file.test. 60 IN A 198.51.100.7\"\n";
  ResolverConfig c = local_config();
  c.local_zones_file = path;
  auto resolver = make(c);
  ASSERT_NE(resolver, nullptr);
  EXPECT_EQ(texts(resolver->resolve("f.file.test", RRType::kA)),
            (std::vector<std::string>{"198.51.100.7"}));
  EXPECT_EQ(resolver->resolve("a.example.test", RRType::kA).status, Status::kOk);
}

TEST(ResolverModes, SystemResolverReadsTheGivenResolvConf) {
  // A resolv.conf of our own (never the machine's): local zones answer before any upstream
  // would be asked, so no query leaves the process.
  testing::TempDir dir("mailgate-dns-resolvconf");
  const std::string path = dir.file("resolv.conf");
  std::ofstream(path) << "nameserver 127.0.0.1\n";
  ResolverConfig c = local_config();
  c.use_system_resolver = true;
  c.resolv_conf = path;
  auto resolver = make(c);
  ASSERT_NE(resolver, nullptr);
  EXPECT_EQ(resolver->resolve("a.example.test", RRType::kA).status, Status::kOk);
}

TEST(ResolverModes, CacheAndRetryOptionsAreAccepted) {
  ResolverConfig c = local_config();
  c.msg_cache_size = 1 << 20;
  c.rrset_cache_size = 2 << 20;
  c.retries = 1;
  c.unbound_options = {{"cache-max-ttl:", "600"}, {"prefetch", "yes"}};
  auto resolver = make(c);
  ASSERT_NE(resolver, nullptr);
  EXPECT_EQ(resolver->resolve("a.example.test", RRType::kA).status, Status::kOk);
}

// --- deadlines, cancellation, shutdown: a forwarder that never answers -----------------

ResolverConfig silent_config(const testing::SilentServer& silent,
                             std::chrono::milliseconds timeout) {
  ResolverConfig c;
  c.forwarders = {*parse_forwarder(silent.forwarder())};
  c.timeout = timeout;
  return c;
}

TEST(ResolverDeadline, SyncQueryEndsAtTheTimeout) {
  testing::SilentServer silent;
  auto resolver = make(silent_config(silent, 300ms));
  ASSERT_NE(resolver, nullptr);
  const auto start = Clock::now();
  Result r = resolver->resolve("mx.silent.example", RRType::kMX);
  const auto took = Clock::now() - start;
  EXPECT_EQ(r.status, Status::kTempfail);
  EXPECT_NE(r.error.find("timed out"), std::string::npos) << r.error;
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(resolver->metrics().timeouts, 1u);
}

TEST(ResolverDeadline, ManyAsyncQueriesAllEndAtTheirTimeout) {
  testing::SilentServer silent;
  auto resolver = make(silent_config(silent, 400ms));
  ASSERT_NE(resolver, nullptr);
  asio::io_context io;
  std::atomic<int> tempfails{0};
  const auto start = Clock::now();
  for (int i = 0; i < 100; ++i) {
    resolver->async_resolve("n" + std::to_string(i) + ".silent.example", RRType::kA,
                            asio::bind_executor(io, [&](Result r) {
                              if (r.status == Status::kTempfail) ++tempfails;
                            }));
  }
  io.run();
  const auto took = Clock::now() - start;
  EXPECT_EQ(tempfails.load(), 100);
  EXPECT_GE(took, 390ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(resolver->metrics().timeouts, 100u);
  EXPECT_EQ(resolver->metrics().in_flight, 0u);
}

TEST(ResolverDeadline, CancelledByTheCallersOwnDeadline) {
  using namespace asio::experimental::awaitable_operators;
  testing::SilentServer silent;
  auto resolver = make(silent_config(silent, 5s));
  ASSERT_NE(resolver, nullptr);
  asio::io_context io;
  const auto start = Clock::now();
  auto done = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<size_t> {
        asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
        auto winner = co_await (resolver->async_resolve("x.silent.example", RRType::kA) ||
                                timer.async_wait(asio::use_awaitable));
        co_return winner.index();
      },
      asio::use_future);
  io.run();
  const auto took = Clock::now() - start;
  EXPECT_EQ(done.get(), 1u);  // the timer won
  EXPECT_LT(took, 2s);        // and the query did not hold the coroutine until its 5 s
  ResolverMetrics m = resolver->metrics();
  EXPECT_EQ(m.cancelled, 1u);
  EXPECT_EQ(m.in_flight, 0u);
}

TEST(ResolverShutdown, InFlightQueriesCompleteWithAnError) {
  testing::SilentServer silent;
  auto resolver = make(silent_config(silent, 10s));
  ASSERT_NE(resolver, nullptr);
  asio::io_context io;
  std::vector<Result> results;
  for (int i = 0; i < 3; ++i)
    resolver->async_resolve(
        "s.silent.example", RRType::kTXT,
        asio::bind_executor(io, [&](Result r) { results.push_back(std::move(r)); }));
  Resolver* raw = resolver.get();
  std::thread blocked([raw] {
    Result r = raw->resolve("t.silent.example", RRType::kA);
    EXPECT_EQ(r.status, Status::kError);
    EXPECT_EQ(r.error, "resolver shut down");
  });
  // Every query started (the blocked call included) before the resolver goes away.
  for (int i = 0; i < 500 && resolver->metrics().in_flight < 4; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(resolver->metrics().in_flight, 4u);
  const auto start = Clock::now();
  resolver.reset();
  blocked.join();
  io.run();
  EXPECT_LT(Clock::now() - start, 3s);
  ASSERT_EQ(results.size(), 3u);
  for (const Result& r : results) {
    EXPECT_EQ(r.status, Status::kError);
    EXPECT_EQ(r.error, "resolver shut down");
  }
}

}  // namespace
}  // namespace mailgate::dns
