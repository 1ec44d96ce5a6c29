// store/store_flags.cc — the --redis* flags. See store_flags.h.
#include "store/store_flags.h"

#include <gflags/gflags.h>

#include "config/endpoint.h"

DEFINE_string(redis, "",
              "Redis server HOST:PORT for the counters, rate limits and greylisting records "
              "that several gateways share; empty = keep them in this process's memory");
DEFINE_uint32(redis_timeout_ms, 100,
              "Longest a Redis connect, read or write may take (ms) before the call counts as "
              "failed and the store fail mode applies");
DEFINE_string(redis_fail_mode, "tempfail",
              "What plugins do when Redis is unavailable: 'tempfail' (451 4.3.0, the sender "
              "retries) or 'open' (the limit is not checked); a plugin's own store_fail_mode "
              "setting overrides it");
DEFINE_uint32(redis_pool_size, 8, "Redis connections kept open, at most");
DEFINE_uint64(store_max_entries, 1000000,
              "Keys the in-memory store holds at most (expired ones are swept; when full, live "
              "ones are evicted)");

namespace mailgate::store {

Expected<StoreConfig, std::string> config_from_flags() {
  StoreConfig c;
  if (FLAGS_redis_fail_mode == "open") {
    c.fail_open = true;
  } else if (FLAGS_redis_fail_mode != "tempfail") {
    return unexpected("--redis_fail_mode: must be 'open' or 'tempfail', not '" +
                      FLAGS_redis_fail_mode + "'");
  }
  if (FLAGS_store_max_entries < 1000)
    return unexpected(std::string("--store_max_entries: must be at least 1000"));
  c.memory_max_entries = FLAGS_store_max_entries;
  if (FLAGS_redis.empty()) return c;
  auto hp = config::parse_host_port(FLAGS_redis, /*allow_zero=*/false);
  if (!hp) return unexpected("--redis: " + hp.error());
  if (FLAGS_redis_timeout_ms < 1 || FLAGS_redis_timeout_ms > 60000)
    return unexpected(std::string("--redis_timeout_ms: must be between 1 and 60000"));
  if (FLAGS_redis_pool_size < 1 || FLAGS_redis_pool_size > 1024)
    return unexpected(std::string("--redis_pool_size: must be between 1 and 1024"));
  RedisOptions r;
  r.host = hp->host;
  r.port = hp->port;
  r.timeout = std::chrono::milliseconds(FLAGS_redis_timeout_ms);
  r.pool_size = FLAGS_redis_pool_size;
  c.redis = r;
  return c;
}

}  // namespace mailgate::store
