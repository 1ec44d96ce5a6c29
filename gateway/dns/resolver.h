// dns/resolver.h — the host's DNS resolver: libunbound with its cache, behind a blocking
// call for plugin worker threads and an asio asynchronous operation for I/O threads.
//
// Owns: one ub_ctx (its cache is shared by every query), libunbound's background thread,
// and one thread of its own ("mg-dns") that watches ub_fd() with an asio stream_descriptor,
// runs ub_process(), enforces each query's deadline (ub_cancel on expiry) and hands results
// back. Results are parsed on that thread; a caller's completion handler never runs there.
//
// Threading: every public member may be called from any thread, concurrently.
//   resolve()        blocks the calling thread until the answer or the deadline. Never call
//                    it on an I/O thread.
//   async_resolve()  never blocks; the handler runs on its associated executor (for
//                    co_await, the coroutine's), never inline in the call, and is invoked
//                    exactly once. Per-operation cancellation is supported (so
//                    `co_await (resolver.async_resolve(...) || timer.async_wait(...))` works):
//                    a cancelled query completes with kTempfail, error "cancelled".
//   Destroying the Resolver completes queries still in flight with kError ("resolver shut
//   down"), blocked resolve() calls included; no call may start concurrently with or after
//   its destruction.
//
// Must not touch: the gateway's io_contexts (it only posts completions to executors it is
// given), sessions, policy. libunbound's global state (its log output) is left alone.
#pragma once

#include <array>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/prefer.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dns/resolver_config.h"
#include "dns/result.h"
#include "util/expected.h"

namespace mailgate::dns {

// Counters since the resolver was created.
struct ResolverMetrics {
  uint64_t queries = 0;  // started: sync_queries + async_queries
  uint64_t sync_queries = 0;
  uint64_t async_queries = 0;
  uint64_t in_flight = 0;
  // Completed queries by status; timeouts and cancellations are also counted in tempfail.
  uint64_t ok = 0, nxdomain = 0, nodata = 0, tempfail = 0, error = 0;
  uint64_t timeouts = 0;
  uint64_t cancelled = 0;
  // Completed queries by latency: < 1 ms, < 10 ms, < 100 ms, < 1 s, >= 1 s. libunbound does
  // not tell which answers came from its cache; answers from the cache and from local zones
  // take tens of microseconds, so the first bucket is the cache-hit count for every upstream
  // that is not on the same machine.
  std::array<uint64_t, 5> latency{};
  // Blocking queries answered from the resolver's own answer cache (dns/answer_cache.h),
  // without a trip through libunbound; also counted in sync_queries, by status and < 1 ms.
  uint64_t cache_hits = 0;
};

namespace detail {
// Receives a query's result exactly once, on the resolver's thread.
class Completion {
 public:
  virtual ~Completion() = default;
  virtual void complete(Result result) = 0;
};

// Delivers the result to an asio completion handler on the handler's associated executor
// (the system executor when it has none), keeping that executor's work count up meanwhile.
// The work is an outstanding_work.tracked copy of the executor, not an executor_work_guard:
// a guard finishes the work first and drops its executor copy after, so with a strand the
// resolver thread would release the strand's state after the caller's io_context could
// already have returned from run() and been destroyed (ThreadSanitizer caught it). A tracked
// strand releases its state first and its io_context's work last.
template <typename Handler>
class HandlerCompletion final : public Completion {
 public:
  explicit HandlerCompletion(Handler handler)
      : work_(asio::prefer(asio::get_associated_executor(handler),
                           asio::execution::outstanding_work.tracked)),
        handler_(std::move(handler)) {}

  void complete(Result result) override {
    asio::post(*work_, [handler = std::move(handler_), result = std::move(result)]() mutable {
      asio::get_associated_cancellation_slot(handler).clear();
      std::move(handler)(std::move(result));
    });
    // Only now: had the handler carried the work, its executor's run() could return and the
    // io_context be destroyed while post() above was still signalling it.
    work_.reset();
  }

 private:
  using Tracked = std::decay_t<decltype(asio::prefer(
      std::declval<asio::associated_executor_t<Handler>>(),
      asio::execution::outstanding_work.tracked))>;
  std::optional<Tracked> work_;
  Handler handler_;
};
}  // namespace detail

class Resolver {
 public:
  // Validates the config, reads resolv.conf and the local zones file as the config says, sets
  // up libunbound and starts the resolver's thread. Errors name the bad item.
  static Expected<std::unique_ptr<Resolver>, std::string> create(ResolverConfig config);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Blocking query, for worker threads. Returns within the configured timeout.
  Result resolve(std::string_view name, RRType type);
  // The answer resolve() would give from the resolver's own answer cache, counted as a cache
  // hit; nullopt when it would have to ask, and then no query starts. Never waits; any thread.
  std::optional<Result> cached(std::string_view name, RRType type);

  // Asynchronous query, for I/O threads. Completion signature: void(Result).
  template <typename CompletionToken>
  auto async_resolve(std::string_view name, RRType type, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Result)>(
        [this](auto handler, std::string qname, RRType qtype) {
          start_async(std::move(qname), qtype, std::move(handler));
        },
        token, std::string(name), type);
  }
  // The same as an awaitable: `Result r = co_await resolver.async_resolve(name, RRType::kMX);`
  asio::awaitable<Result> async_resolve(std::string_view name, RRType type) {
    return async_resolve(name, type, asio::use_awaitable);
  }

  ResolverMetrics metrics() const;
  const ResolverConfig& config() const;

 private:
  class Impl;
  explicit Resolver(std::shared_ptr<Impl> impl);

  // Starts a query whose result goes to `completion`. Returns its id, 0 when it ended at once
  // (bad name, shut down) — the completion has then been called already.
  uint64_t start(std::string name, RRType type, bool sync,
                 std::unique_ptr<detail::Completion> completion);
  // Ends query `id` with "cancelled" if it is still running. Any thread.
  static void cancel(const std::weak_ptr<Impl>& impl, uint64_t id);

  template <typename Handler>
  void start_async(std::string name, RRType type, Handler handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    // The slot is connected before the query starts, so its handler can never miss the
    // query's id; the id is filled in right after.
    std::shared_ptr<std::atomic<uint64_t>> ticket;
    if (slot.is_connected()) {
      ticket = std::make_shared<std::atomic<uint64_t>>(0);
      slot.assign([weak = std::weak_ptr<Impl>(impl_), ticket](asio::cancellation_type what) {
        if (what == asio::cancellation_type::none) return;
        if (uint64_t id = ticket->load()) cancel(weak, id);
      });
    }
    uint64_t id = start(std::move(name), type, /*sync=*/false,
                        std::make_unique<detail::HandlerCompletion<Handler>>(std::move(handler)));
    if (ticket) ticket->store(id);
  }

  std::shared_ptr<Impl> impl_;
};

}  // namespace mailgate::dns
