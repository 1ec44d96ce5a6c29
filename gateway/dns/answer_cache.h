// dns/answer_cache.h — answers the resolver gave recently, kept until their TTL runs out, so a
// blocking query from a plugin that libunbound would answer from its own cache is answered on
// the calling thread (a map lookup) instead of through the resolver's thread and libunbound's
// (two pipe hops, four thread switches: most of what SPF and DMARC cost per message).
// Owns: copies of final answers (ok, nxdomain, nodata) with their expiry; never tempfail or
// error answers, never answers with a TTL of 0. TTLs in a returned answer are what is left.
// Bounded: at most `capacity` entries; when full, expired entries go, then everything.
// Must not touch: libunbound, the resolver's thread.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "dns/result.h"

namespace mailgate::dns {

class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AnswerCache(size_t capacity = 16384) : capacity_(capacity) {}

  // The answer for (name, type) when one is cached and alive at `now`.
  std::optional<Result> get(std::string_view name, RRType type, Clock::time_point now);
  // Keeps `result` until now + its TTL when it is a final answer with a TTL.
  void put(std::string_view name, RRType type, const Result& result, Clock::time_point now);
  size_t size() const;

 private:
  struct Entry {
    Result result;
    Clock::time_point stored;
    Clock::time_point expires;
  };
  static std::string key(std::string_view name, RRType type);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace mailgate::dns
