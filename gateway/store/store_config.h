// store/store_config.h — which Store the gateway uses and what plugins do when it fails.
// Owns: StoreConfig (from the --redis* flags, store_flags.h) and make_store().
// Threading: start-up only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "store/clock.h"
#include "store/memory_store.h"
#include "store/redis_store.h"

namespace mailgate::store {

struct StoreConfig {
  std::optional<RedisOptions> redis;  // nullopt: the in-memory store
  // What plugins are asked to do when the store is unavailable (mg_host.store_fail_mode):
  // false = tempfail (the default), true = open.
  bool fail_open = false;
  size_t memory_max_entries = MemoryStore::kDefaultMaxEntries;
};

// The configured store. With Redis, tries one PING and logs the outcome: the gateway starts
// either way (until Redis answers, the fail mode applies).
std::unique_ptr<Store> make_store(const StoreConfig& config, const Clock& clock);

}  // namespace mailgate::store
