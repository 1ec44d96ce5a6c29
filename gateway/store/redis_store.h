// store/redis_store.h — the Store shared by several gateways: Redis through hiredis.
// Owns: a pool of blocking hiredis connections (at most `pool_size`, opened on demand),
// the scripts of redis_scripts.h (EVALSHA, EVAL when the server answers NOSCRIPT), and the
// unavailability rule: a connect, read or write that fails or takes longer than `timeout`
// makes the call answer unavailable, drops that connection, and marks the server down for
// `retry_after` — calls in that time answer unavailable at once instead of each waiting the
// timeout — after which the next call reconnects by itself. A stopped (SIGSTOP) or dead server
// therefore costs a session at most one timeout, never a hang.
// Threading: every method from any thread; a call holds one pooled connection for its command.
// Must not touch: keys outside the "mg:" prefix.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/clock.h"
#include "store/store.h"

struct redisContext;

namespace mailgate::store {

struct RedisOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::chrono::milliseconds timeout{100};      // connect, and each read or write
  std::chrono::milliseconds retry_after{500};  // how long a failure marks the server down
  size_t pool_size = 8;
};

class RedisStore final : public Store {
 public:
  explicit RedisStore(RedisOptions options, const Clock& clock = SystemClock::instance());
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  std::optional<int64_t> counter_add(std::string_view key, int64_t delta,
                                     uint32_t window_ms) override;
  std::optional<RateDecision> rate(std::string_view key, const RateSpec& spec, uint32_t cost,
                                   bool dry_run) override;
  std::optional<std::optional<std::string>> get(std::string_view key) override;
  SetResult set(std::string_view key, std::string_view value, uint32_t ttl_ms,
                bool only_if_absent) override;
  std::string describe() const override;

  // Tries one PING now (start-up check); the error text when it fails.
  std::optional<std::string> ping();

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using Context = std::unique_ptr<redisContext, ContextDeleter>;
  class Script;
  class Lease;

  // A connection from the pool (or a new one); nullptr when unavailable.
  Context acquire();
  // Back to the pool when `healthy`, else closed (and the server marked down).
  void release(Context c, bool healthy);

  RedisOptions options_;
  const Clock& clock_;
  std::unique_ptr<Script> counter_script_, rate_script_, get_script_, set_script_;

  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<Context> idle_;
  size_t open_ = 0;  // idle + leased + being opened
  std::chrono::steady_clock::time_point down_until_{};
};

}  // namespace mailgate::store
