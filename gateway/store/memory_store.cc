// store/memory_store.cc — see memory_store.h.
#include "store/memory_store.h"

#include <algorithm>
#include <functional>

#include "store/gcra.h"

namespace mailgate::store {
namespace {

// Kinds are separate namespaces: the first byte of the internal key.
std::string internal_key(char kind, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(kind);
  k.append(key);
  return k;
}

int64_t expiry(int64_t now, uint32_t ttl_ms) { return ttl_ms == 0 ? INT64_MAX : now + ttl_ms; }

}  // namespace

MemoryStore::MemoryStore(const Clock& clock, size_t max_entries)
    : clock_(clock), max_per_shard_(std::max<size_t>(1, max_entries / kShards)) {}

MemoryStore::Shard& MemoryStore::shard_for(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShards];
}

void MemoryStore::sweep(Shard& s, int64_t now, size_t buckets) {
  const size_t count = s.map.bucket_count();
  if (count == 0) return;
  for (size_t i = 0; i < buckets; ++i) {
    const size_t b = s.sweep_bucket++ % count;
    for (auto it = s.map.begin(b); it != s.map.end(b);) {
      if (it->second.expires_ms <= now) {
        const std::string dead = it->first;
        ++it;  // local iterators stay valid for the other elements of the bucket
        s.map.erase(dead);
      } else {
        ++it;
      }
    }
  }
}

void MemoryStore::make_room(Shard& s, int64_t now) {
  sweep(s, now, 2);  // steady background tidying, a little per insert
  if (s.map.size() < max_per_shard_) return;
  sweep(s, now, 64);
  if (s.map.size() < max_per_shard_) return;
  s.map.erase(s.map.begin());
  ++s.evictions;
}

std::unordered_map<std::string, MemoryStore::Entry>::iterator MemoryStore::find_live(
    Shard& s, const std::string& key, int64_t now) {
  auto it = s.map.find(key);
  if (it != s.map.end() && it->second.expires_ms <= now) {
    s.map.erase(it);
    return s.map.end();
  }
  return it;
}

std::optional<int64_t> MemoryStore::counter_add(std::string_view key, int64_t delta,
                                                uint32_t window_ms) {
  const std::string k = internal_key('c', key);
  Shard& s = shard_for(k);
  const int64_t now = clock_.now_ms();
  std::lock_guard lock(s.mu);
  auto it = find_live(s, k, now);
  if (it == s.map.end()) {
    make_room(s, now);
    it = s.map.emplace(k, Entry{0, expiry(now, window_ms), {}}).first;
  }
  it->second.number += delta;
  return it->second.number;
}

std::optional<RateDecision> MemoryStore::rate(std::string_view key, const RateSpec& spec,
                                              uint32_t cost, bool dry_run) {
  auto p = gcra::params(spec, cost);
  if (!p) return RateDecision{false, 0};
  const std::string k = internal_key('r', key);
  Shard& s = shard_for(k);
  const int64_t now = clock_.now_ms();
  std::lock_guard lock(s.mu);
  auto it = find_live(s, k, now);
  std::optional<int64_t> tat;
  if (it != s.map.end()) tat = it->second.number;
  gcra::Step step = gcra::step(now * 1000, tat, *p);
  if (step.decision.allowed && !dry_run) {
    if (it == s.map.end()) {
      make_room(s, now);
      it = s.map.emplace(k, Entry{}).first;
    }
    it->second.number = step.new_tat_us;
    // The state means nothing once the TAT is in the past: drop it then.
    it->second.expires_ms = (step.new_tat_us + 999) / 1000;
  }
  return step.decision;
}

std::optional<std::optional<std::string>> MemoryStore::get(std::string_view key) {
  const std::string k = internal_key('k', key);
  Shard& s = shard_for(k);
  const int64_t now = clock_.now_ms();
  std::lock_guard lock(s.mu);
  auto it = find_live(s, k, now);
  if (it == s.map.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second.text);
}

SetResult MemoryStore::set(std::string_view key, std::string_view value, uint32_t ttl_ms,
                           bool only_if_absent) {
  const std::string k = internal_key('k', key);
  Shard& s = shard_for(k);
  const int64_t now = clock_.now_ms();
  std::lock_guard lock(s.mu);
  auto it = find_live(s, k, now);
  if (it != s.map.end() && only_if_absent) return SetResult::kExists;
  if (it == s.map.end()) {
    make_room(s, now);
    it = s.map.emplace(k, Entry{}).first;
  }
  it->second.text.assign(value);
  it->second.expires_ms = expiry(now, ttl_ms);
  return SetResult::kStored;
}

size_t MemoryStore::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

uint64_t MemoryStore::evictions() const {
  uint64_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.evictions;
  }
  return n;
}

}  // namespace mailgate::store
