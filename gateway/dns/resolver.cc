// dns/resolver.cc — libunbound behind the Resolver API. See resolver.h.
//
// One query's life:
//   caller thread   start(): registers the Query (pending_), ub_resolve_async(), then posts
//                   arm() to the resolver's thread.
//   resolver thread arm() puts the query's deadline in deadlines_; then exactly one of:
//                   - ub_fd() readable -> ub_process() -> on_answer(): make_result(), finish();
//                   - the deadline passes -> expire(): ub_cancel(), finish(kTempfail);
//                   - cancel() -> expire() the same way, "cancelled".
//                   finish() hands the Result to the query's Completion, which posts it to the
//                   caller's executor (async) or wakes the blocked caller (sync).
// Everything that decides a query's fate runs on the resolver's single thread, so the
// first of answer/deadline/cancel wins without further locking. pending_ (shared with
// callers) holds each Query until libunbound can no longer call back with its address:
// the callback ran, or ub_cancel() succeeded (after which libunbound drops the answer).
// A single-threaded io_context also means no readiness edge on ub_fd() is lost: the wait is
// re-armed before the reactor looks at the descriptor again.
#include "dns/resolver.h"

#include "dns/answer_cache.h"

#include <pthread.h>
#include <unbound.h>
#include <unistd.h>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "dns/answer.h"
#include "dns/local_zones.h"
#include "dns/names.h"
#include "log/log.h"

namespace mailgate::dns {
namespace {

using Clock = std::chrono::steady_clock;

struct UbCtxDeleter {
  void operator()(ub_ctx* ctx) const { ub_ctx_delete(ctx); }
};
using UbCtx = std::unique_ptr<ub_ctx, UbCtxDeleter>;

struct UbResultDeleter {
  void operator()(ub_result* result) const { ub_resolve_free(result); }
};
using UbResult = std::unique_ptr<ub_result, UbResultDeleter>;

Result failure(Status status, std::string message) {
  Result r;
  r.status = status;
  r.error = std::move(message);
  return r;
}

std::string ub_error(int rc) { return std::string(ub_strerror(rc)); }

Expected<std::string, std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected(std::string("cannot open ") + what + " " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Sets one libunbound option; the error names it.
std::optional<std::string> set_option(ub_ctx* ctx, std::string name, const std::string& value) {
  if (name.back() != ':') name += ':';
  int rc = ub_ctx_set_option(ctx, name.c_str(), value.c_str());
  if (rc != 0) return "libunbound option '" + name + " " + value + "': " + ub_error(rc);
  return std::nullopt;
}

// Result: the ub_ctx ready for queries, or why not.
Expected<UbCtx, std::string> make_context(const ResolverConfig& config,
                                          const std::vector<Forwarder>& upstreams,
                                          const std::vector<LocalZoneEntry>& zones) {
  UbCtx ctx(ub_ctx_create());
  if (!ctx) return unexpected(std::string("cannot create the libunbound context"));
  // Asynchronous queries in a thread, not a forked process: the cache is then shared with
  // the process, and nothing forks a multi-threaded daemon.
  if (int rc = ub_ctx_async(ctx.get(), 1); rc != 0)
    return unexpected("libunbound: cannot use a thread: " + ub_error(rc));

  const UpstreamMode mode = upstream_mode(config);
  std::vector<std::pair<std::string, std::string>> options = {
      {"module-config", config.dnssec ? "validator iterator" : "iterator"},
      // Forwarders on loopback (a local unbound, the test servers) are normal here.
      {"do-not-query-localhost", "no"},
  };
  if (mode == UpstreamMode::kForwarders || mode == UpstreamMode::kSystem) {
    // The site's resolver decides about private reverse zones (10.in-addr.arpa, ...): pass
    // them upstream instead of answering NXDOMAIN from libunbound's built-in AS112 zones.
    options.emplace_back("unblock-lan-zones", "yes");
    options.emplace_back("insecure-lan-zones", "yes");
  }
  if (mode == UpstreamMode::kLocalOnly) {
    // Nothing leaves the process: what the local zones do not answer is REFUSED.
    options.emplace_back("local-zone", ". refuse");
  }
  if (config.msg_cache_size)
    options.emplace_back("msg-cache-size", std::to_string(config.msg_cache_size));
  if (config.rrset_cache_size)
    options.emplace_back("rrset-cache-size", std::to_string(config.rrset_cache_size));
  if (config.retries) options.emplace_back("outbound-msg-retry", std::to_string(*config.retries));
  for (const auto& option : config.unbound_options) options.push_back(option);
  for (const auto& [name, value] : options)
    if (auto error = set_option(ctx.get(), name, value)) return unexpected(*error);

  for (const Forwarder& f : upstreams) {
    if (int rc = ub_ctx_set_fwd(ctx.get(), f.to_string().c_str()); rc != 0)
      return unexpected("forwarder '" + f.to_string() + "': " + ub_error(rc));
  }
  if (config.dnssec) {
    if (::access(config.trust_anchor_file.c_str(), R_OK) != 0)
      return unexpected("cannot read the DNSSEC trust anchor file " + config.trust_anchor_file);
    if (int rc = ub_ctx_add_ta_file(ctx.get(), config.trust_anchor_file.c_str()); rc != 0)
      return unexpected("trust anchor file " + config.trust_anchor_file + ": " + ub_error(rc));
  }

  // The ub_ctx_zone_*/data_* calls finalize the configuration first, then check each zone
  // and record on its own, so an error can name its line. Zones go first, as in unbound.
  // Removing a zone that does not exist is how the configuration is finalized (and its
  // errors found) even without local zones.
  if (int rc = ub_ctx_zone_remove(ctx.get(), "finalize.mailgate.invalid."); rc != 0)
    return unexpected("libunbound rejected the configuration (" + ub_error(rc) +
                      "; its log line above says why)");
  if (mode == UpstreamMode::kForwarders || mode == UpstreamMode::kSystem) {
    // "test." (RFC 6761) goes to the forwarders too: the site's resolver answers NXDOMAIN
    // for it anyway, and test setups serve their example.test zones from a loopback server.
    // (A "test. nodefault" option does not do this in libunbound; removing the zone does.)
    if (int rc = ub_ctx_zone_remove(ctx.get(), "test."); rc != 0)
      return unexpected("libunbound: cannot pass test. upstream: " + ub_error(rc));
  }
  for (const LocalZoneEntry& z : zones) {
    if (z.kind != LocalZoneEntry::Kind::kZone) continue;
    int rc = z.type == "nodefault" ? ub_ctx_zone_remove(ctx.get(), z.name.c_str())
                                   : ub_ctx_zone_add(ctx.get(), z.name.c_str(), z.type.c_str());
    if (rc != 0)
      return unexpected(z.where + ": bad local-zone \"" + z.name + "\" " + z.type + ": " +
                        (rc == UB_SYNTAX ? std::string("bad name or zone type") : ub_error(rc)));
  }
  for (const LocalZoneEntry& z : zones) {
    if (z.kind != LocalZoneEntry::Kind::kData) continue;
    if (ub_ctx_data_add(ctx.get(), z.data.c_str()) != 0)
      return unexpected(z.where + ": libunbound cannot parse local-data \"" + z.data + "\"");
  }
  return ctx;
}

int latency_bucket(Clock::duration d) {
  using namespace std::chrono_literals;
  if (d < 1ms) return 0;
  if (d < 10ms) return 1;
  if (d < 100ms) return 2;
  if (d < 1s) return 3;
  return 4;
}

// Wakes a thread blocked in Resolver::resolve().
struct SyncWaiter {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result> result;
};

class SyncCompletion final : public detail::Completion {
 public:
  explicit SyncCompletion(std::shared_ptr<SyncWaiter> waiter) : waiter_(std::move(waiter)) {}
  void complete(Result result) override {
    {
      std::lock_guard lock(waiter_->mu);
      waiter_->result = std::move(result);
    }
    waiter_->cv.notify_one();
  }

 private:
  std::shared_ptr<SyncWaiter> waiter_;
};

}  // namespace

class Resolver::Impl {
 public:
  Impl(ResolverConfig config, UbCtx ctx) : config_(std::move(config)), ctx_(std::move(ctx)) {}
  ~Impl() { shutdown(); }

  void start_thread();
  void shutdown();
  uint64_t start(std::string name, RRType type, bool sync,
                 std::unique_ptr<detail::Completion> completion);
  void cancel(uint64_t id);
  ResolverMetrics metrics() const;
  const ResolverConfig& config() const { return config_; }
  // Final answers of blocking queries, reused on the caller's thread until their TTL ends.
  AnswerCache& answers() { return answers_; }
  void count_cached(const Result& result);  // a blocking query answered from answers()

 private:
  enum class End { kAnswered, kTimedOut, kCancelled, kShutDown };

  struct Query {
    Impl* owner = nullptr;
    uint64_t id = 0;
    RRType type = RRType::kA;
    Clock::time_point started;
    Clock::time_point deadline;
    std::atomic<int> async_id{0};  // set by the caller thread after ub_resolve_async()
    std::unique_ptr<detail::Completion> completion;
    // Resolver thread only:
    bool done = false;
    bool armed = false;
    std::multimap<Clock::time_point, std::shared_ptr<Query>>::iterator deadline_it;
  };

  static void on_answer(void* arg, int err, ub_result* result);
  void handle_answer(Query* query, int err, ub_result* result);
  void arm(const std::shared_ptr<Query>& query);
  void set_timer();
  void on_timer();
  void expire(const std::shared_ptr<Query>& query, End end);
  void finish(Query& query, Result result, End end);
  void count(const Result& result, End end, Clock::duration took);
  void watch_fd();
  void forget(uint64_t id);

  const ResolverConfig config_;
  UbCtx ctx_;

  // The resolver's thread and what only it touches. io_ is declared first so the timer and
  // the descriptor are destroyed before it.
  asio::io_context io_{1};
  asio::posix::stream_descriptor fd_{io_};
  asio::steady_timer timer_{io_};
  std::multimap<Clock::time_point, std::shared_ptr<Query>> deadlines_;
  std::thread thread_;
  bool fd_broken_ = false;

  std::mutex mu_;  // guards pending_, next_id_, stopped_
  std::unordered_map<uint64_t, std::shared_ptr<Query>> pending_;
  uint64_t next_id_ = 0;
  bool stopped_ = false;

  struct Counters {
    std::atomic<uint64_t> sync_queries{0}, async_queries{0}, in_flight{0};
    std::atomic<uint64_t> ok{0}, nxdomain{0}, nodata{0}, tempfail{0}, error{0};
    std::atomic<uint64_t> timeouts{0}, cancelled{0};
    std::array<std::atomic<uint64_t>, 5> latency{};
    std::atomic<uint64_t> cache_hits{0};
  };
  Counters counters_;
  AnswerCache answers_;
};

void Resolver::Impl::start_thread() {
  fd_.assign(ub_fd(ctx_.get()));
  watch_fd();
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        MG_LOG_ERROR("dns: resolver thread: {}", e.what());
      }
    }
  });
  pthread_setname_np(thread_.native_handle(), "mg-dns");
}

void Resolver::Impl::shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // The descriptor belongs to libunbound: take it out of asio without closing it.
  if (fd_.is_open()) fd_.release();
  for (auto& [deadline, query] : deadlines_) query->armed = false;
  deadlines_.clear();
  // Stops libunbound's thread; answers it still had are dropped without callbacks.
  ctx_.reset();
  std::unordered_map<uint64_t, std::shared_ptr<Query>> left;
  {
    std::lock_guard lock(mu_);
    left.swap(pending_);
  }
  for (auto& [id, query] : left)
    if (!query->done) finish(*query, failure(Status::kError, "resolver shut down"), End::kShutDown);
}

uint64_t Resolver::Impl::start(std::string name, RRType type, bool sync,
                               std::unique_ptr<detail::Completion> completion) {
  (sync ? counters_.sync_queries : counters_.async_queries).fetch_add(1, std::memory_order_relaxed);
  auto query = std::make_shared<Query>();
  query->owner = this;
  query->type = type;
  query->started = Clock::now();
  query->deadline = query->started + config_.timeout;
  query->completion = std::move(completion);
  counters_.in_flight.fetch_add(1, std::memory_order_relaxed);

  if (auto why = check_query_name(name)) {
    finish(*query, failure(Status::kError, "bad name: " + *why), End::kAnswered);
    return 0;
  }
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      query->id = ++next_id_;
      pending_.emplace(query->id, query);
    }
  }
  if (query->id == 0) {
    finish(*query, failure(Status::kError, "resolver shut down"), End::kShutDown);
    return 0;
  }
  int async_id = 0;
  int rc = ub_resolve_async(ctx_.get(), name.c_str(), static_cast<int>(type), /*IN*/ 1, query.get(),
                            &Impl::on_answer, &async_id);
  if (rc != 0) {
    // libunbound will not call back for this query.
    forget(query->id);
    finish(*query, failure(Status::kTempfail, "libunbound: " + ub_error(rc)), End::kAnswered);
    return 0;
  }
  query->async_id.store(async_id);
  asio::post(io_, [this, query] { arm(query); });
  return query->id;
}

void Resolver::Impl::cancel(uint64_t id) {
  asio::post(io_, [this, id] {
    std::shared_ptr<Query> query;
    {
      std::lock_guard lock(mu_);
      auto it = pending_.find(id);
      if (it != pending_.end()) query = it->second;
    }
    if (query) expire(query, End::kCancelled);
  });
}

void Resolver::Impl::forget(uint64_t id) {
  std::lock_guard lock(mu_);
  pending_.erase(id);
}

void Resolver::Impl::on_answer(void* arg, int err, ub_result* result) {
  auto* query = static_cast<Query*>(arg);
  query->owner->handle_answer(query, err, result);
}

void Resolver::Impl::handle_answer(Query* raw, int err, ub_result* result) {
  UbResult owned(result);
  std::shared_ptr<Query> query;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(raw->id);
    if (it == pending_.end()) return;
    query = std::move(it->second);
    pending_.erase(it);
  }
  if (query->done) return;
  finish(*query, make_result(err, owned.get(), query->type), End::kAnswered);
}

void Resolver::Impl::arm(const std::shared_ptr<Query>& query) {
  if (query->done) return;  // answered before the deadline was even set
  query->deadline_it = deadlines_.emplace(query->deadline, query);
  query->armed = true;
  if (query->deadline_it == deadlines_.begin()) set_timer();
}

void Resolver::Impl::set_timer() {
  if (deadlines_.empty()) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(deadlines_.begin()->first);
  timer_.async_wait([this](std::error_code ec) {
    if (ec != asio::error::operation_aborted) on_timer();
  });
}

void Resolver::Impl::on_timer() {
  const auto now = Clock::now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    std::shared_ptr<Query> query = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    query->armed = false;
    expire(query, End::kTimedOut);
  }
  set_timer();
}

void Resolver::Impl::expire(const std::shared_ptr<Query>& query, End end) {
  if (query->done) return;
  // Success means libunbound will never call back for it; otherwise the answer is on its way
  // and on_answer() will find the query done and drop it.
  if (ub_cancel(ctx_.get(), query->async_id.load()) == UB_NOERROR) forget(query->id);
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - query->started);
  finish(
      *query,
      failure(Status::kTempfail, end == End::kCancelled
                                     ? std::string("cancelled")
                                     : "timed out after " + std::to_string(waited.count()) + " ms"),
      end);
}

void Resolver::Impl::finish(Query& query, Result result, End end) {
  query.done = true;
  if (query.armed) {
    deadlines_.erase(query.deadline_it);
    query.armed = false;
  }
  count(result, end, Clock::now() - query.started);
  auto completion = std::move(query.completion);
  if (completion) completion->complete(std::move(result));
}

void Resolver::Impl::count(const Result& result, End end, Clock::duration took) {
  constexpr auto relaxed = std::memory_order_relaxed;
  counters_.in_flight.fetch_sub(1, relaxed);
  switch (result.status) {
    case Status::kOk:
      counters_.ok.fetch_add(1, relaxed);
      break;
    case Status::kNxDomain:
      counters_.nxdomain.fetch_add(1, relaxed);
      break;
    case Status::kNoData:
      counters_.nodata.fetch_add(1, relaxed);
      break;
    case Status::kTempfail:
      counters_.tempfail.fetch_add(1, relaxed);
      break;
    case Status::kError:
      counters_.error.fetch_add(1, relaxed);
      break;
  }
  if (end == End::kTimedOut) counters_.timeouts.fetch_add(1, relaxed);
  if (end == End::kCancelled) counters_.cancelled.fetch_add(1, relaxed);
  counters_.latency[static_cast<size_t>(latency_bucket(took))].fetch_add(1, relaxed);
}

void Resolver::Impl::watch_fd() {
  fd_.async_wait(asio::posix::descriptor_base::wait_read, [this](std::error_code ec) {
    if (ec) return;
    int rc = ub_process(ctx_.get());
    if (rc != 0) {
      // UB_PIPE: libunbound's thread is gone. Queries will time out; do not spin on a
      // descriptor that stays readable at EOF.
      if (!fd_broken_) MG_LOG_ERROR("dns: libunbound stopped answering: {}", ub_error(rc));
      fd_broken_ = true;
      return;
    }
    watch_fd();
  });
}

void Resolver::Impl::count_cached(const Result& result) {
  constexpr auto relaxed = std::memory_order_relaxed;
  counters_.cache_hits.fetch_add(1, relaxed);
  counters_.sync_queries.fetch_add(1, relaxed);
  switch (result.status) {
    case Status::kOk: counters_.ok.fetch_add(1, relaxed); break;
    case Status::kNxDomain: counters_.nxdomain.fetch_add(1, relaxed); break;
    case Status::kNoData: counters_.nodata.fetch_add(1, relaxed); break;
    case Status::kTempfail: counters_.tempfail.fetch_add(1, relaxed); break;
    case Status::kError: counters_.error.fetch_add(1, relaxed); break;
  }
  counters_.latency[0].fetch_add(1, relaxed);
}

ResolverMetrics Resolver::Impl::metrics() const {
  constexpr auto relaxed = std::memory_order_relaxed;
  ResolverMetrics m;
  m.sync_queries = counters_.sync_queries.load(relaxed);
  m.async_queries = counters_.async_queries.load(relaxed);
  m.queries = m.sync_queries + m.async_queries;
  m.in_flight = counters_.in_flight.load(relaxed);
  m.ok = counters_.ok.load(relaxed);
  m.nxdomain = counters_.nxdomain.load(relaxed);
  m.nodata = counters_.nodata.load(relaxed);
  m.tempfail = counters_.tempfail.load(relaxed);
  m.error = counters_.error.load(relaxed);
  m.timeouts = counters_.timeouts.load(relaxed);
  m.cancelled = counters_.cancelled.load(relaxed);
  for (size_t i = 0; i < m.latency.size(); ++i) m.latency[i] = counters_.latency[i].load(relaxed);
  m.cache_hits = counters_.cache_hits.load(relaxed);
  return m;
}

// --- Resolver ---------------------------------------------------------------------------

Expected<std::unique_ptr<Resolver>, std::string> Resolver::create(ResolverConfig config) {
  if (auto why = check(config)) return unexpected("dns: " + *why);

  const UpstreamMode mode = upstream_mode(config);
  std::vector<Forwarder> upstreams;
  if (mode == UpstreamMode::kForwarders) {
    upstreams = config.forwarders;
  } else if (mode == UpstreamMode::kSystem) {
    auto text = read_file(config.resolv_conf, "resolv.conf");
    if (!text) return unexpected("dns: " + text.error());
    auto servers = parse_resolv_conf(*text);
    if (!servers) return unexpected("dns: " + config.resolv_conf + ": " + servers.error());
    upstreams = std::move(*servers);
  }

  std::vector<LocalZoneEntry> zones;
  if (!config.local_zones_file.empty()) {
    auto entries = load_local_zones_file(config.local_zones_file);
    if (!entries) return unexpected("dns: " + entries.error());
    zones = std::move(*entries);
  }
  if (!config.local_zones_text.empty()) {
    auto entries = parse_local_zones(config.local_zones_text, "local zones");
    if (!entries) return unexpected("dns: " + entries.error());
    zones.insert(zones.end(), entries->begin(), entries->end());
  }

  auto ctx = make_context(config, upstreams, zones);
  if (!ctx) return unexpected("dns: " + ctx.error());

  std::string where;
  for (const Forwarder& f : upstreams) where += (where.empty() ? " " : ", ") + f.to_string();
  MG_LOG_INFO("dns: {}{}; timeout {} ms; DNSSEC {}; {} local zone entries", to_string(mode), where,
              config.timeout.count(), config.dnssec ? "on" : "off", zones.size());

  auto impl = std::make_shared<Impl>(std::move(config), std::move(*ctx));
  impl->start_thread();
  return std::unique_ptr<Resolver>(new Resolver(std::move(impl)));
}

Resolver::Resolver(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Resolver::~Resolver() { impl_->shutdown(); }

Result Resolver::resolve(std::string_view name, RRType type) {
  // The Resolver may be destroyed by another thread while this call waits (shutdown answers
  // the wait with an error): hold the implementation, never touch `this` after the wait.
  const std::shared_ptr<Impl> impl = impl_;
  if (std::optional<Result> cached = impl->answers().get(name, type, Clock::now())) {
    impl->count_cached(*cached);
    return std::move(*cached);
  }
  auto waiter = std::make_shared<SyncWaiter>();
  impl->start(std::string(name), type, /*sync=*/true, std::make_unique<SyncCompletion>(waiter));
  std::unique_lock lock(waiter->mu);
  // The resolver thread ends every query by its deadline; the margin only guards against
  // that thread being stuck.
  const auto limit = impl->config().timeout + std::chrono::seconds(5);
  if (!waiter->cv.wait_for(lock, limit, [&] { return waiter->result.has_value(); }))
    return failure(Status::kTempfail, "resolver thread did not answer");
  Result result = std::move(*waiter->result);
  impl->answers().put(name, type, result, Clock::now());
  return result;
}

std::optional<Result> Resolver::cached(std::string_view name, RRType type) {
  std::optional<Result> cached = impl_->answers().get(name, type, Clock::now());
  if (cached) impl_->count_cached(*cached);
  return cached;
}

uint64_t Resolver::start(std::string name, RRType type, bool sync,
                         std::unique_ptr<detail::Completion> completion) {
  return impl_->start(std::move(name), type, sync, std::move(completion));
}

void Resolver::cancel(const std::weak_ptr<Impl>& impl, uint64_t id) {
  if (auto locked = impl.lock()) locked->cancel(id);
}

ResolverMetrics Resolver::metrics() const { return impl_->metrics(); }

const ResolverConfig& Resolver::config() const { return impl_->config(); }

}  // namespace mailgate::dns
