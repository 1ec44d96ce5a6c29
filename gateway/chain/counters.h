// chain/counters.h — the counters behind mg_host.counter_add: a key's sum within a window.
// Owns: the in-process store (sharded hash maps, fixed windows, expired entries evicted as
// they are met and by a bounded sweep). A shared store (Redis) implements the same interface.
// Threading: thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mailgate::chain {

class CounterStore {
 public:
  virtual ~CounterStore() = default;
  // Adds `delta` to `key` in its current window of `window_ms` (0 = no expiry); returns the
  // new value in *value. Returns false when the store is unavailable.
  virtual bool add(std::string_view key, int64_t delta, uint32_t window_ms, int64_t* value) = 0;
};

class MemoryCounterStore final : public CounterStore {
 public:
  using Clock = std::chrono::steady_clock;
  explicit MemoryCounterStore(size_t max_entries = 1'000'000);
  bool add(std::string_view key, int64_t delta, uint32_t window_ms, int64_t* value) override;
  size_t size() const;

 private:
  struct Entry {
    int64_t value = 0;
    Clock::time_point expires;  // time_point::max() when no window
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> map;
  };
  static constexpr size_t kShards = 16;
  size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mailgate::chain
