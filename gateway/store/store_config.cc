// store/store_config.cc — see store_config.h.
#include "store/store_config.h"

#include "log/log.h"

namespace mailgate::store {

std::unique_ptr<Store> make_store(const StoreConfig& config, const Clock& clock) {
  if (!config.redis) {
    MG_LOG_INFO("counter store: in memory (at most {} entries)", config.memory_max_entries);
    return std::make_unique<MemoryStore>(clock, config.memory_max_entries);
  }
  auto redis = std::make_unique<RedisStore>(*config.redis, clock);
  if (auto error = redis->ping()) {
    MG_LOG_WARNING(
        "counter store: redis {} does not answer yet ({}); store fail mode {} applies "
        "until it does",
        redis->describe(), *error, config.fail_open ? "open" : "tempfail");
  } else {
    MG_LOG_INFO("counter store: redis {} (pool {}, timeout {} ms, fail mode {})", redis->describe(),
                config.redis->pool_size, config.redis->timeout.count(),
                config.fail_open ? "open" : "tempfail");
  }
  return redis;
}

}  // namespace mailgate::store
