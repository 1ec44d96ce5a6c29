// store/memory_store.h — the in-process Store: the default when no --redis is given.
// Owns: sharded hash maps (one mutex each) holding counters, GCRA states and records, each
// with an expiry on the injected Clock. Memory is bounded: at most `max_entries` keys in all;
// expired entries are dropped when met, by a small incremental sweep on every insert, and when
// a shard is full the sweep runs harder and, failing that, an arbitrary live entry is evicted
// (bounded memory wins over one counter's exactness; an evicted limit restarts from zero).
// Threading: every method from any thread; a call locks one shard.
// Must not touch: the network; it never fails (never returns unavailable).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/clock.h"
#include "store/store.h"

namespace mailgate::store {

class MemoryStore final : public Store {
 public:
  static constexpr size_t kDefaultMaxEntries = 1'000'000;
  explicit MemoryStore(const Clock& clock = SystemClock::instance(),
                       size_t max_entries = kDefaultMaxEntries);

  std::optional<int64_t> counter_add(std::string_view key, int64_t delta,
                                     uint32_t window_ms) override;
  std::optional<RateDecision> rate(std::string_view key, const RateSpec& spec, uint32_t cost,
                                   bool dry_run) override;
  std::optional<std::optional<std::string>> get(std::string_view key) override;
  SetResult set(std::string_view key, std::string_view value, uint32_t ttl_ms,
                bool only_if_absent) override;
  std::string describe() const override { return "memory"; }
  bool may_block() const override { return false; }

  // Keys held now (live or not yet swept).
  size_t size() const;
  // Entries evicted while live because a shard was full (since start).
  uint64_t evictions() const;

 private:
  static constexpr int64_t kNever = INT64_MAX;
  struct Entry {
    int64_t number = 0;  // counter: the sum; rate: the TAT in microseconds
    int64_t expires_ms = kNever;
    std::string text;  // record: the value
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> map;
    size_t sweep_bucket = 0;  // where the incremental sweep resumes
    uint64_t evictions = 0;
  };
  static constexpr size_t kShards = 32;

  Shard& shard_for(const std::string& key);
  // Finds the live entry, erasing an expired one; end() when none.
  std::unordered_map<std::string, Entry>::iterator find_live(Shard& s, const std::string& key,
                                                             int64_t now);
  // Makes room for one more entry in `s` (called with s.mu held, before an insert).
  void make_room(Shard& s, int64_t now);
  // Erases expired entries in up to `buckets` buckets from the sweep cursor.
  static void sweep(Shard& s, int64_t now, size_t buckets);

  const Clock& clock_;
  size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mailgate::store
