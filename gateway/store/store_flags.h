// store/store_flags.h — the counter store's command-line flags (--redis, --redis_timeout_ms,
// --redis_fail_mode, --redis_pool_size, --store_max_entries) and the StoreConfig they make.
// config_from_flags() validates them and names the flag at fault in its error.
// Owns: those flags. Must not touch: other modules' flags. Threading: start-up only.
#pragma once

#include <string>

#include "store/store_config.h"
#include "util/expected.h"

namespace mailgate::store {

Expected<StoreConfig, std::string> config_from_flags();

}  // namespace mailgate::store
