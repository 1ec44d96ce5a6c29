// obs/metrics.h — the gateway's metrics: counters, gauges and fixed-bucket histograms, and the
// one registry (`metrics()`) every module's hook increments.
// Owns: metric storage and the names of every metric family; per-plugin metric blocks
// (created once per plugin name, never freed, so a chain entry may keep a pointer).
// Hot path: an increment is one relaxed atomic add on a cache line chosen per thread (16
// shards), no lock, no allocation. Reading (exposition, the status page) sums the shards.
// Must not touch: sockets, SMTP semantics. Hooks in other modules are one line each and only
// call the inline functions below.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mailgate/plugin.h"

namespace mailgate::obs {

inline constexpr size_t kShards = 16;

namespace detail {
// This thread's shard: threads take shards round robin on first use.
size_t shard_index();
}  // namespace detail

// A count that only goes up (or, used as a gauge, up and down), split over cache lines.
class Counter {
 public:
  void add(int64_t n = 1) {
    shards_[detail::shard_index()].v.fetch_add(n, std::memory_order_relaxed);
  }
  void inc() { add(1); }
  void dec() { add(-1); }
  int64_t value() const {
    int64_t sum = 0;
    for (const Shard& s : shards_) sum += s.v.load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) Shard {
    std::atomic<int64_t> v{0};
  };
  std::array<Shard, kShards> shards_{};
};

// Upper bounds (seconds) shared by every latency histogram: 50 µs .. 30 s, then +Inf.
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5, 30};

// A latency histogram with kLatencyBuckets; the sum is kept in nanoseconds.
class Histogram {
 public:
  static constexpr size_t kBuckets = kLatencyBuckets.size() + 1;  // last = +Inf
  void observe_seconds(double seconds) {
    size_t b = 0;
    while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
    Shard& s = shards_[detail::shard_index()];
    s.buckets[b].fetch_add(1, std::memory_order_relaxed);
    s.sum_ns.fetch_add(static_cast<int64_t>(seconds * 1e9), std::memory_order_relaxed);
  }
  template <class Rep, class Period>
  void observe(std::chrono::duration<Rep, Period> d) {
    observe_seconds(std::chrono::duration<double>(d).count());
  }
  struct Snapshot {
    std::array<uint64_t, kBuckets> buckets{};  // not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const;

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, kBuckets> buckets{};
    std::atomic<int64_t> sum_ns{0};
  };
  std::array<Shard, kShards> shards_{};
};

// Transaction outcomes as the session logs them (status=...).
enum class Outcome { kAccepted, kRejected, kTempfail, kDiscarded, kAborted, kCount };
const char* outcome_name(Outcome o);
Outcome outcome_from(std::string_view status);

// How a backend step failed (relay::Failure::Kind, same order).
enum class BackendError { kUnavailable, kTimeout, kLost, kProtocol, kLocal, kCount };
const char* backend_error_name(BackendError e);

// Stages where the gateway refused a command on a plugin's verdict (log_refusal).
enum class RefusalStage { kConnect, kHelo, kMail, kRcpt, kData, kOther, kCount };
const char* refusal_stage_name(RefusalStage s);
RefusalStage refusal_stage_from(std::string_view what);

inline constexpr size_t kActions = 5;  // MG_CONTINUE .. MG_DISCARD

// One plugin's counters, shared by every chain that has a plugin of that name.
struct PluginMetrics {
  std::string name;
  std::array<Counter, kActions> actions;  // calls by the action that took effect
  Counter failures;                       // errors, exceptions, timeouts (fail mode applied)
  Counter inline_retries;  // tries on the I/O thread sent on to the worker pool (DNS not cached)
  Histogram latency;
};

// Every metric the gateway keeps.
struct Metrics {
  // Connections (server/, smtp/session).
  Counter connections_open;
  Counter connections_total;           // accepted past the limiter
  Counter connections_refused_total;   // refused by --max_connections
  Counter connections_refused_client;  // refused by --max_connections_per_ip
  // Transactions and replies (smtp/session, smtp/client_stream).
  std::array<Counter, static_cast<size_t>(Outcome::kCount)> transactions;
  Histogram transaction_seconds;
  std::array<Counter, 6> replies;  // by code class: index = code / 100 (0, 1 unused)
  std::array<Counter, static_cast<size_t>(RefusalStage::kCount)> refusals;
  // Backend (relay/).
  Counter backend_connects;
  Counter backend_connect_errors;
  Histogram backend_connect_seconds;
  std::array<Counter, static_cast<size_t>(BackendError::kCount)> backend_errors;
  Histogram backend_reply_seconds;
  // Spool (spool/).
  Counter spool_bytes;  // written into spools, memory and file
  Counter spool_files;  // messages that went over the memory bound into a file
  // Trace writer (obs/trace_writer).
  Counter trace_queued;
  Counter trace_dropped;
  Counter trace_written;
  Counter trace_write_errors;
};

extern Metrics g_metrics;
inline Metrics& metrics() { return g_metrics; }

// The block for plugin `name`, created on first use (takes a lock: call it when a chain is
// built, not per call). Never null, never freed.
PluginMetrics* plugin_metrics(std::string_view name);
// Every plugin block so far, in name order.
std::vector<const PluginMetrics*> all_plugin_metrics();

// --- one-line hooks --------------------------------------------------------------------
inline void count_reply(int code) {
  if (code >= 100 && code < 600) g_metrics.replies[static_cast<size_t>(code / 100)].inc();
}
inline void count_transaction(std::string_view status, double seconds) {
  g_metrics.transactions[static_cast<size_t>(outcome_from(status))].inc();
  g_metrics.transaction_seconds.observe_seconds(seconds);
}
inline void count_plugin_call(PluginMetrics* m, mg_action action, bool failed,
                              double milliseconds) {
  if (m == nullptr) return;
  if (action >= 0 && static_cast<size_t>(action) < kActions)
    m->actions[static_cast<size_t>(action)].inc();
  if (failed) m->failures.inc();
  m->latency.observe_seconds(milliseconds / 1000.0);
}
// Counts one SMTP session from construction to destruction (connections_open/_total).
struct OpenConnection {
  OpenConnection() {
    g_metrics.connections_total.inc();
    g_metrics.connections_open.inc();
  }
  ~OpenConnection() { g_metrics.connections_open.dec(); }
  OpenConnection(const OpenConnection&) = delete;
  OpenConnection& operator=(const OpenConnection&) = delete;
};
inline void count_backend_open(bool ok, std::chrono::steady_clock::duration took) {
  g_metrics.backend_connects.inc();
  if (ok) {
    g_metrics.backend_connect_seconds.observe(took);
  } else {
    g_metrics.backend_connect_errors.inc();
  }
}
inline void count_backend_error(int kind) {
  if (kind >= 0 && kind < static_cast<int>(BackendError::kCount))
    g_metrics.backend_errors[static_cast<size_t>(kind)].inc();
}

}  // namespace mailgate::obs
