// chain/counters.cc — see counters.h.
#include "chain/counters.h"

#include <functional>

namespace mailgate::chain {

MemoryCounterStore::MemoryCounterStore(size_t max_entries)
    : max_per_shard_(std::max<size_t>(1, max_entries / kShards)) {}

bool MemoryCounterStore::add(std::string_view key, int64_t delta, uint32_t window_ms,
                             int64_t* value) {
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % kShards];
  auto now = Clock::now();
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(std::string(key));
  if (it == shard.map.end()) {
    if (shard.map.size() >= max_per_shard_) {
      // Full: drop expired entries; if none, drop an arbitrary one (bounded memory wins).
      for (auto e = shard.map.begin(); e != shard.map.end();) {
        e = e->second.expires <= now ? shard.map.erase(e) : std::next(e);
      }
      if (shard.map.size() >= max_per_shard_) shard.map.erase(shard.map.begin());
    }
    it = shard.map.emplace(std::string(key), Entry{}).first;
    it->second.expires = window_ms == 0 ? Clock::time_point::max()
                                        : now + std::chrono::milliseconds(window_ms);
  } else if (it->second.expires <= now) {
    it->second.value = 0;
    it->second.expires = window_ms == 0 ? Clock::time_point::max()
                                        : now + std::chrono::milliseconds(window_ms);
  }
  it->second.value += delta;
  *value = it->second.value;
  return true;
}

size_t MemoryCounterStore::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

}  // namespace mailgate::chain
