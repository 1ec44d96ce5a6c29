// plugins/dnsbl/lookup_pool.cc — see lookup_pool.h.
#include "lookup_pool.h"

#include <algorithm>
#include <limits>
#include <optional>

namespace mailgate::dnsbl {

std::vector<Outcome> Batch::wait() {
  std::unique_lock lock(mu_);
  for (;;) {
    const SteadyClock::time_point now = SteadyClock::now();
    std::optional<SteadyClock::time_point> next;
    for (Item& item : items_) {
      if (item.outcome.state != Outcome::State::kPending) continue;
      if (item.deadline <= now) {
        item.outcome.state = Outcome::State::kTimedOut;
      } else if (!next || item.deadline < *next) {
        next = item.deadline;
      }
    }
    if (!next) break;
    cv_.wait_until(lock, *next);
  }
  std::vector<Outcome> out;
  out.reserve(items_.size());
  for (const Item& item : items_) out.push_back(item.outcome);
  return out;
}

LookupPool::LookupPool(const mg_host* host, PoolOptions options)
    : host_(host), options_(options), cache_(options.cache_entries) {
  const unsigned n = std::max(1u, options_.threads);
  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
}

LookupPool::~LookupPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  // Queued jobs were never asked; their batches' waiters time them out.
}

std::shared_ptr<Batch> LookupPool::start(std::vector<Request> requests) {
  auto batch = std::make_shared<Batch>();
  const SteadyClock::time_point now = SteadyClock::now();
  const std::uint64_t wall = now_ms();
  batch->items_.reserve(requests.size());
  for (Request& r : requests) {
    Batch::Item item;
    item.deadline = now + std::chrono::milliseconds(r.zone.timeout_ms);
    item.outcome.query = r.name + "." + r.zone.name;
    item.outcome.request = std::move(r);
    batch->items_.push_back(std::move(item));
  }
  bool queued = false;
  {
    std::lock_guard lock(mu_);
    for (std::size_t i = 0; i < batch->items_.size(); ++i) {
      Batch::Item& item = batch->items_[i];
      Outcome& o = item.outcome;
      if (o.query.size() > 253) {
        o.state = Outcome::State::kSkipped;
        o.why = "the query name is longer than 253 characters";
        continue;
      }
      if (auto hit = cache_.get(o.query, wall)) {
        o.state = Outcome::State::kAnswered;
        o.status = hit->status;
        o.addresses = std::move(hit->addresses);
        o.cached = true;
        continue;
      }
      ZoneHealth& h = health_[o.request.zone.name];
      if (now < h.suspended_until) {
        o.state = Outcome::State::kSkipped;
        o.why = "the zone is suspended after " + std::to_string(options_.dead_after) +
                " failures in a row";
        continue;
      }
      if (h.outstanding >= options_.max_per_zone) {
        o.state = Outcome::State::kSkipped;
        o.why = std::to_string(h.outstanding) + " queries to the zone are outstanding";
        continue;
      }
      if (queue_.size() >= options_.max_queue) {
        o.state = Outcome::State::kSkipped;
        o.why = "the lookup queue is full";
        continue;
      }
      ++h.outstanding;
      queue_.push_back(Job{batch, i, o.query, o.request.zone.name, item.deadline});
      queued = true;
    }
  }
  if (queued) cv_.notify_all();
  return batch;
}

void LookupPool::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    run(job);
  }
}

void LookupPool::run(Job& job) {
  if (SteadyClock::now() >= job.deadline) {
    // Waited in the queue past its zone's timeout: not asked, and not the zone's fault.
    {
      std::lock_guard lock(mu_);
      --health_[job.zone].outstanding;
    }
    std::lock_guard lock(job.batch->mu_);
    Outcome& o = job.batch->items_[job.index].outcome;
    if (o.state == Outcome::State::kPending) {
      o.state = Outcome::State::kSkipped;
      o.why = "it waited for a free thread past the zone's timeout";
    }
    job.batch->cv_.notify_all();
    return;
  }
  mg_dns_result* r = host_->dns_query(nullptr, job.query.c_str(), MG_DNS_A);
  mg_dns_status status = MG_DNS_ERROR;
  std::vector<std::string> addresses;
  std::uint32_t ttl = std::numeric_limits<std::uint32_t>::max();
  if (r != nullptr) {
    status = r->status;
    for (std::size_t i = 0; i < r->count && r->records != nullptr; ++i) {
      addresses.emplace_back(r->records[i].text != nullptr ? r->records[i].text : "");
      ttl = std::min(ttl, r->records[i].ttl);
    }
    host_->dns_free(r);
  }
  const bool late = SteadyClock::now() > job.deadline;
  const bool failed = late || status == MG_DNS_TEMPFAIL || status == MG_DNS_ERROR;
  settle(job.zone, failed,
         late                        ? "no answer within its timeout"
         : status == MG_DNS_TEMPFAIL ? "timeout or SERVFAIL"
                                     : "resolver error");

  if (status == MG_DNS_OK || status == MG_DNS_NXDOMAIN || status == MG_DNS_NODATA) {
    std::uint64_t keep = options_.cache_negative_ttl_ms;
    if (status == MG_DNS_OK)
      keep = std::min<std::uint64_t>(std::uint64_t{ttl} * 1000, options_.cache_max_ttl_ms);
    if (keep > 0) cache_.put(job.query, CachedAnswer{status, addresses}, now_ms() + keep);
  }

  std::lock_guard lock(job.batch->mu_);
  Outcome& o = job.batch->items_[job.index].outcome;
  if (o.state == Outcome::State::kPending) {
    if (late) {
      o.state = Outcome::State::kTimedOut;
    } else {
      o.state = Outcome::State::kAnswered;
      o.status = status;
      o.addresses = std::move(addresses);
    }
  }
  job.batch->cv_.notify_all();
}

void LookupPool::settle(const std::string& zone, bool failed, const char* what) {
  std::string suspended;
  {
    std::lock_guard lock(mu_);
    ZoneHealth& h = health_[zone];
    --h.outstanding;
    if (!failed) {
      h.failures = 0;
      return;
    }
    ++h.failures;
    if (options_.dead_after == 0 || h.failures < options_.dead_after) return;
    h.failures = 0;
    h.suspended_until = SteadyClock::now() + std::chrono::milliseconds(options_.dead_retry_ms);
    suspended = "dnsbl: zone " + zone + " failed " + std::to_string(options_.dead_after) +
                " times in a row (last: " + what + "); not asked for the next " +
                std::to_string(options_.dead_retry_ms) + " ms";
  }
  log(MG_LOG_WARNING, suspended);
}

std::uint64_t LookupPool::now_ms() const {
  if (MG_HOST_HAS(host_, now_ms)) return host_->now_ms();
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void LookupPool::log(mg_log_level level, const std::string& message) const {
  host_->log(nullptr, level, message.c_str());
}

}  // namespace mailgate::dnsbl
