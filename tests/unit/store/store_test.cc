// store_test.cc — the Store contract (gateway/store/store.h), run against both backends: the
// MemoryStore and a RedisStore talking to a private redis-server on loopback. Time comes from a
// ManualClock, so every limit is checked exactly: N pass, N+1 is refused with the right retry
// hint, and after the window the key passes again.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "redis_server_fixture.h"
#include "store/clock.h"
#include "store/memory_store.h"
#include "store/redis_store.h"

namespace mailgate::store {
namespace {

enum class Backend { kMemory, kRedis };

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kMemory) {
      store_ = std::make_unique<MemoryStore>(clock_);
      return;
    }
    ASSERT_TRUE(redis_.start()) << "cannot start redis-server on loopback";
    RedisOptions o;
    o.port = redis_.port();
    o.timeout = std::chrono::milliseconds(500);
    store_ = std::make_unique<RedisStore>(o, clock_);
  }

  ManualClock clock_;
  testing::RedisServer redis_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, FixedWindowCounterRestartsAfterItsWindow) {
  EXPECT_EQ(store_->counter_add("k", 1, 1000), 1);
  EXPECT_EQ(store_->counter_add("k", 2, 1000), 3);
  clock_.advance_ms(999);
  EXPECT_EQ(store_->counter_add("k", 1, 1000), 4);
  clock_.advance_ms(1);
  EXPECT_EQ(store_->counter_add("k", 1, 1000), 1);
  EXPECT_EQ(store_->counter_add("other", 5, 0), 5);
  clock_.advance_ms(86'400'000);
  EXPECT_EQ(store_->counter_add("other", 5, 0), 10);  // no window: never expires
}

TEST_P(StoreContract, RateAllowsTheBurstThenOneEveryInterval) {
  const RateSpec spec{30, 60'000, 0};  // 30 a minute, burst 30
  for (int i = 0; i < 30; ++i) {
    auto d = store_->rate("ip:192.0.2.0/24", spec, 1, false);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->allowed) << "message " << i + 1;
  }
  auto refused = store_->rate("ip:192.0.2.0/24", spec, 1, false);
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->retry_after_ms, 2000u);  // one every 60 s / 30
  clock_.advance_ms(1999);
  EXPECT_FALSE(store_->rate("ip:192.0.2.0/24", spec, 1, false)->allowed);
  EXPECT_EQ(store_->rate("ip:192.0.2.0/24", spec, 1, false)->retry_after_ms, 1u);
  clock_.advance_ms(1);
  EXPECT_TRUE(store_->rate("ip:192.0.2.0/24", spec, 1, false)->allowed);
  EXPECT_FALSE(store_->rate("ip:192.0.2.0/24", spec, 1, false)->allowed);
  // After a whole quiet period the full burst is back.
  clock_.advance_ms(60'000);
  for (int i = 0; i < 30; ++i)
    EXPECT_TRUE(store_->rate("ip:192.0.2.0/24", spec, 1, false)->allowed);
  EXPECT_FALSE(store_->rate("ip:192.0.2.0/24", spec, 1, false)->allowed);
  // Other keys are independent.
  EXPECT_TRUE(store_->rate("ip:198.51.100.0/24", spec, 1, false)->allowed);
}

TEST_P(StoreContract, DryRunDecidesWithoutSpending) {
  const RateSpec spec{2, 1000, 2};
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(store_->rate("d", spec, 1, true)->allowed);
  EXPECT_TRUE(store_->rate("d", spec, 1, false)->allowed);
  EXPECT_TRUE(store_->rate("d", spec, 1, true)->allowed);
  EXPECT_TRUE(store_->rate("d", spec, 1, false)->allowed);
  auto d = store_->rate("d", spec, 1, true);
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->retry_after_ms, 500u);
}

TEST_P(StoreContract, CostAndBurst) {
  const RateSpec bytes{1000, 1000, 5000};  // 1000 bytes a second, bursts of 5000
  EXPECT_TRUE(store_->rate("b", bytes, 3000, false)->allowed);
  auto d = store_->rate("b", bytes, 3000, false);
  EXPECT_FALSE(d->allowed);
  EXPECT_EQ(d->retry_after_ms, 1000u);  // 1000 more bytes of room needed
  EXPECT_TRUE(store_->rate("b", bytes, 2000, false)->allowed);
  // A cost above the burst passes only with a full bucket, and empties it.
  clock_.advance_ms(4999);
  EXPECT_FALSE(store_->rate("b", bytes, 9000, false)->allowed);
  clock_.advance_ms(1);
  EXPECT_TRUE(store_->rate("b", bytes, 9000, false)->allowed);
  EXPECT_FALSE(store_->rate("b", bytes, 1, false)->allowed);
}

TEST_P(StoreContract, RecordsExpireAndOnlyIfAbsentKeepsTheFirst) {
  auto absent = store_->get("t");
  ASSERT_TRUE(absent.has_value());
  EXPECT_FALSE(absent->has_value());
  EXPECT_EQ(store_->set("t", "first:1", 1000, true), SetResult::kStored);
  EXPECT_EQ(store_->set("t", "second", 1000, true), SetResult::kExists);
  EXPECT_EQ(store_->get("t")->value_or(""), "first:1");
  clock_.advance_ms(999);
  EXPECT_EQ(store_->get("t")->value_or(""), "first:1");
  clock_.advance_ms(1);
  EXPECT_FALSE(store_->get("t")->has_value());
  EXPECT_EQ(store_->set("t", "second", 1000, true), SetResult::kStored);
  EXPECT_EQ(store_->set("t", "third", 0, false), SetResult::kStored);
  clock_.advance_ms(10'000'000);
  EXPECT_EQ(store_->get("t")->value_or(""), "third");
  // The three kinds are separate namespaces.
  EXPECT_EQ(store_->counter_add("t", 1, 0), 1);
  EXPECT_EQ(store_->get("t")->value_or(""), "third");
}

TEST_P(StoreContract, ConcurrentCallersNeverOverspend) {
  // Four threads race for one key: exactly the burst passes, whatever the interleaving.
  const RateSpec spec{100, 3'600'000, 100};
  std::atomic<int> allowed{0}, unavailable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 60; ++i) {
        auto d = store_->rate("race", spec, 1, false);
        if (!d)
          ++unavailable;
        else if (d->allowed)
          ++allowed;
        store_->counter_add("race-count", 1, 0);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(unavailable.load(), 0);
  EXPECT_EQ(allowed.load(), 100);
  EXPECT_EQ(store_->counter_add("race-count", 0, 0), 240);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract,
                         ::testing::Values(Backend::kMemory, Backend::kRedis),
                         [](const auto& param_info) {
                           return param_info.param == Backend::kMemory ? "Memory" : "Redis";
                         });

TEST(MemoryStore, StaysWithinItsEntryBoundAndSweepsExpiredEntries) {
  ManualClock clock;
  MemoryStore store(clock, 3200);  // 100 per shard
  for (int i = 0; i < 100'000; ++i) store.counter_add("k" + std::to_string(i), 1, 1000);
  EXPECT_LE(store.size(), 3200u);
  EXPECT_GT(store.evictions(), 0u);
  // Once they expire, new inserts sweep them instead of evicting live ones.
  clock.advance_ms(1000);
  const uint64_t evicted = store.evictions();
  for (int i = 0; i < 2000; ++i) store.set("fresh" + std::to_string(i), "x", 0, false);
  EXPECT_EQ(store.evictions(), evicted);
  for (int i = 0; i < 2000; ++i) EXPECT_TRUE(store.get("fresh" + std::to_string(i))->has_value());
}

TEST(RedisStore, DeadOrStoppedServerAnswersUnavailableWithinTheTimeoutThenRecovers) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.start());
  ManualClock clock;
  RedisOptions o;
  o.port = redis.port();
  o.timeout = std::chrono::milliseconds(200);
  o.retry_after = std::chrono::milliseconds(300);
  o.pool_size = 2;
  RedisStore store(o, clock);
  ASSERT_EQ(store.counter_add("c", 1, 0), 1);

  // Stopped: the pooled connection's read times out.
  redis.pause();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(store.counter_add("c", 1, 0).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  // Marked down: the next call does not wait at all.
  t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(store.rate("r", RateSpec{1, 1000, 1}, 1, false).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  redis.resume();
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  // Reconnected by itself. (The timed-out command may have run once the server resumed: use a
  // fresh key.)
  EXPECT_EQ(store.counter_add("c2", 1, 0), 1);

  // Killed and restarted: unavailable, then a fresh server (empty) is used again.
  redis.kill_now();
  EXPECT_FALSE(store.counter_add("c", 1, 0).has_value());
  EXPECT_EQ(store.set("k", "v", 0, false), SetResult::kUnavailable);
  ASSERT_TRUE(redis.restart());
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  EXPECT_EQ(store.counter_add("c", 1, 0), 1);
}

TEST(RedisStore, ScriptsAreLoadedAgainAfterScriptFlush) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.start());
  ManualClock clock;
  RedisOptions o;
  o.port = redis.port();
  RedisStore store(o, clock);
  EXPECT_EQ(store.counter_add("c", 1, 0), 1);
  // As after a server restart: EVALSHA answers NOSCRIPT, the store falls back to EVAL.
  redisContext* admin = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(admin != nullptr && admin->err == 0);
  freeReplyObject(redisCommand(admin, "SCRIPT FLUSH"));
  auto* exists = static_cast<redisReply*>(redisCommand(admin, "SCRIPT EXISTS %s", "x"));
  ASSERT_NE(exists, nullptr);
  freeReplyObject(exists);
  redisFree(admin);
  EXPECT_EQ(store.counter_add("c", 1, 0), 2);
  EXPECT_EQ(store.counter_add("c", 1, 0), 3);
}

TEST(RedisStore, TwoStoresOnOneServerShareOneLimit) {
  testing::RedisServer redis;
  ASSERT_TRUE(redis.start());
  ManualClock clock;
  RedisOptions o;
  o.port = redis.port();
  RedisStore a(o, clock), b(o, clock);
  const RateSpec spec{4, 60'000, 4};
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    allowed += a.rate("shared", spec, 1, false)->allowed ? 1 : 0;
    allowed += b.rate("shared", spec, 1, false)->allowed ? 1 : 0;
  }
  EXPECT_EQ(allowed, 4);
}

}  // namespace
}  // namespace mailgate::store
