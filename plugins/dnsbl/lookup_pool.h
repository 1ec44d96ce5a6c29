// plugins/dnsbl/lookup_pool.h — asking many lists at once through the host's blocking resolver.
// The host's dns_query blocks up to the gateway's --dns_timeout_ms, so the plugin runs its own
// small, fixed pool of threads: a session hands a Batch of queries to the pool, goes on, and
// later waits for the Batch; each query has its own deadline (its zone's timeout_ms from when
// it was started), and a query not answered by then counts as timed out — the session never
// waits past the latest deadline of its batch, whatever the DNS server does.
// Owns: the worker threads (joined at destruction: a query in the host's resolver finishes
// first), the queue, the answer cache, and each zone's health: a zone that failed (timeout,
// SERVFAIL, late answer) `dead_after` times in a row is not asked for `dead_retry_ms`, and at
// most `max_per_zone` queries of one zone are outstanding, so a dead zone cannot take every
// thread. Workers call dns_query with a NULL session (they outlive the callbacks) and log
// through the host without a session, naming the plugin.
// Threading: start() and Batch::wait() from any session thread; everything is locked.
// Must not touch: sessions (no mg_session pointer ever reaches a worker), symbols, policy.
#pragma once

#include <mailgate/plugin.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "answer_cache.h"
#include "zones.h"

namespace mailgate::dnsbl {

using SteadyClock = std::chrono::steady_clock;

// One question: is `name` (already reversed/normalised, without the zone) listed in `zone`?
struct Request {
  Zone zone;
  std::string name;     // "10.2.0.192" or "example.com"
  std::string subject;  // what it stands for, for details and logs: "client 192.0.2.10"
};

struct Outcome {
  enum class State {
    kPending,   // still in the queue or the resolver
    kAnswered,  // `status` and `addresses` hold the answer (maybe from the cache)
    kTimedOut,  // no answer within the zone's timeout
    kSkipped,   // not asked: `why` says why (zone suspended, queue full, name too long)
  };
  Request request;
  std::string query;  // "10.2.0.192.zen.example.org"
  State state = State::kPending;
  mg_dns_status status = MG_DNS_ERROR;
  std::vector<std::string> addresses;
  bool cached = false;
  std::string why;
};

// Queries started together. Shared by the session that waits and the workers that answer.
class Batch {
 public:
  // Waits until every query is answered or past its deadline (those are marked timed out)
  // and returns the outcomes in the order of the requests. Callable more than once.
  std::vector<Outcome> wait();

 private:
  friend class LookupPool;
  struct Item {
    Outcome outcome;
    SteadyClock::time_point deadline;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> items_;
};

struct PoolOptions {
  unsigned threads = 8;
  std::size_t max_queue = 512;        // queued queries beyond this are skipped
  std::size_t max_per_zone = 4;       // outstanding queries of one zone beyond this: skipped
  std::size_t cache_entries = 10000;  // 0 = no cache
  std::uint32_t cache_max_ttl_ms = 3600 * 1000;
  std::uint32_t cache_negative_ttl_ms = 300 * 1000;  // NXDOMAIN / NODATA
  unsigned dead_after = 3;                           // consecutive failures; 0 = never suspend
  std::uint32_t dead_retry_ms = 60 * 1000;
};

class LookupPool {
 public:
  LookupPool(const mg_host* host, PoolOptions options);
  ~LookupPool();
  LookupPool(const LookupPool&) = delete;
  LookupPool& operator=(const LookupPool&) = delete;

  // Starts every request now: answered at once from the cache, skipped, or queued for a
  // worker with the deadline now + its zone's timeout_ms.
  std::shared_ptr<Batch> start(std::vector<Request> requests);

  const AnswerCache& cache() const { return cache_; }

 private:
  struct Job {
    std::shared_ptr<Batch> batch;
    std::size_t index;
    std::string query;
    std::string zone;
    SteadyClock::time_point deadline;
  };
  struct ZoneHealth {
    unsigned failures = 0;  // consecutive
    SteadyClock::time_point suspended_until{};
    std::size_t outstanding = 0;  // queued or being asked
  };

  void work();
  void run(Job& job);
  // Records the end of a job of `zone`: failed or not; logs a suspension.
  void settle(const std::string& zone, bool failed, const char* what);
  std::uint64_t now_ms() const;
  void log(mg_log_level level, const std::string& message) const;

  const mg_host* host_;
  const PoolOptions options_;
  AnswerCache cache_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::unordered_map<std::string, ZoneHealth> health_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mailgate::dnsbl
