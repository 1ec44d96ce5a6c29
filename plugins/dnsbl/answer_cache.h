// plugins/dnsbl/answer_cache.h — the dnsbl plugin's own cache of list answers, by query name
// ("10.2.0.192.zen.example.org"), bounded in time (each entry expires at the time given) and in
// size (least recently used entries go first). The host's resolver caches too; this one saves
// the trip through the worker pool and keeps answers across policy-independent sessions.
// Owns: the entries. Threading: every member locks; safe from sessions and workers at once.
// Must not touch: the host, DNS, clocks (callers pass the time: the gateway's now_ms()).
#pragma once

#include <mailgate/plugin.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace mailgate::dnsbl {

struct CachedAnswer {
  mg_dns_status status = MG_DNS_NXDOMAIN;  // OK, NXDOMAIN or NODATA (failures are not cached)
  std::vector<std::string> addresses;      // the A records, for OK
};

class AnswerCache {
 public:
  explicit AnswerCache(std::size_t max_entries) : max_entries_(max_entries) {}

  // The live answer for `name` at time now_ms (and marks it recently used); nullopt otherwise.
  std::optional<CachedAnswer> get(const std::string& name, std::uint64_t now_ms);
  // Keeps `answer` until expires_ms (replacing an older one); evicts the least recently used
  // entry when full. A cache of size 0 keeps nothing.
  void put(const std::string& name, CachedAnswer answer, std::uint64_t expires_ms);
  std::size_t size() const;

 private:
  struct Entry {
    std::string name;
    CachedAnswer answer;
    std::uint64_t expires_ms;
  };
  const std::size_t max_entries_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace mailgate::dnsbl
