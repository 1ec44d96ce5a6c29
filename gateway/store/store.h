// store/store.h — the one interface behind the host's counter, rate-limit and record services
// (mg_host.counter_add, rate_limit, kv_get, kv_set): MemoryStore (memory_store.h, the default)
// and RedisStore (redis_store.h, shared by several gateways) implement it.
// Owns: the meaning of the three kinds of state, which are separate namespaces (one key can be
// a counter, a rate limit and a record at once without clashing):
//   counter  a sum within a fixed window that starts at the first add after the last one ended
//   rate     a GCRA state (gcra.h): `rate` per `period`, bursts up to `burst`
//   record   a short string with a time to live (greylisting triplets)
// Every call takes its "now" from the store's Clock, so tests move time exactly.
// Threading: every method from any thread at once. Methods may block up to the backend's
// timeout (Redis); they never block longer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::store {

struct RateSpec {
  uint32_t rate = 0;       // events (or cost units) per period; > 0
  uint32_t period_ms = 0;  // > 0
  uint32_t burst = 0;      // how many may come at once; 0 = `rate`
};

struct RateDecision {
  bool allowed = false;
  uint32_t retry_after_ms = 0;  // when limited: how long until the same cost would pass
};

enum class SetResult {
  kStored,       // the record was written
  kExists,       // only_if_absent and a live record was there: nothing written
  kUnavailable,  // the backend could not be reached
};

class Store {
 public:
  virtual ~Store() = default;

  // Adds `delta` to counter `key` in its current window of `window_ms` (0 = no expiry) and
  // returns the new sum; nullopt when unavailable.
  virtual std::optional<int64_t> counter_add(std::string_view key, int64_t delta,
                                             uint32_t window_ms) = 0;

  // One GCRA step for `key`: may `cost` units pass now? With dry_run the state is not changed
  // (check several limits, then spend on each only when all allow). nullopt when unavailable.
  virtual std::optional<RateDecision> rate(std::string_view key, const RateSpec& spec,
                                           uint32_t cost, bool dry_run) = 0;

  // The live record at `key`: outer nullopt when unavailable, inner nullopt when absent.
  virtual std::optional<std::optional<std::string>> get(std::string_view key) = 0;
  // Writes `value` at `key` for `ttl_ms` (0 = no expiry); with only_if_absent, only when no
  // live record is there.
  virtual SetResult set(std::string_view key, std::string_view value, uint32_t ttl_ms,
                        bool only_if_absent) = 0;

  // "memory" or "HOST:PORT" of the Redis server, for logs.
  virtual std::string describe() const = 0;

  // Whether a call can wait on I/O (Redis). Plugins flagged MG_PLUGIN_BLOCKS_ONLY_IN_STORE run
  // on the I/O threads when it cannot.
  virtual bool may_block() const { return true; }
};

}  // namespace mailgate::store
