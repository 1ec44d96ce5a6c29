// obs/metrics.cc — see metrics.h.
#include "obs/metrics.h"

#include <map>
#include <memory>
#include <mutex>

namespace mailgate::obs {

Metrics g_metrics;

namespace detail {

size_t shard_index() {
  static std::atomic<size_t> next{0};
  thread_local const size_t index = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return index;
}

}  // namespace detail

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot out;
  int64_t sum_ns = 0;
  for (const Shard& s : shards_) {
    for (size_t b = 0; b < kBuckets; ++b)
      out.buckets[b] += s.buckets[b].load(std::memory_order_relaxed);
    sum_ns += s.sum_ns.load(std::memory_order_relaxed);
  }
  for (uint64_t n : out.buckets) out.count += n;
  out.sum_seconds = static_cast<double>(sum_ns) / 1e9;
  return out;
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kAccepted:
      return "accepted";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kTempfail:
      return "tempfail";
    case Outcome::kDiscarded:
      return "discarded";
    case Outcome::kAborted:
      return "aborted";
    case Outcome::kCount:
      break;
  }
  return "?";
}

Outcome outcome_from(std::string_view status) {
  if (status == "accepted") return Outcome::kAccepted;
  if (status == "rejected") return Outcome::kRejected;
  if (status == "tempfail") return Outcome::kTempfail;
  if (status == "discarded") return Outcome::kDiscarded;
  return Outcome::kAborted;
}

const char* backend_error_name(BackendError e) {
  switch (e) {
    case BackendError::kUnavailable:
      return "unavailable";
    case BackendError::kTimeout:
      return "timeout";
    case BackendError::kLost:
      return "lost";
    case BackendError::kProtocol:
      return "protocol";
    case BackendError::kLocal:
      return "local";
    case BackendError::kCount:
      break;
  }
  return "?";
}

const char* refusal_stage_name(RefusalStage s) {
  switch (s) {
    case RefusalStage::kConnect:
      return "connect";
    case RefusalStage::kHelo:
      return "helo";
    case RefusalStage::kMail:
      return "mail";
    case RefusalStage::kRcpt:
      return "rcpt";
    case RefusalStage::kData:
      return "data";
    case RefusalStage::kOther:
      return "other";
    case RefusalStage::kCount:
      break;
  }
  return "?";
}

RefusalStage refusal_stage_from(std::string_view what) {
  if (what == "CONNECT") return RefusalStage::kConnect;
  if (what == "HELO" || what == "EHLO") return RefusalStage::kHelo;
  if (what == "MAIL") return RefusalStage::kMail;
  if (what == "RCPT") return RefusalStage::kRcpt;
  if (what == "DATA") return RefusalStage::kData;
  return RefusalStage::kOther;
}

namespace {

struct PluginRegistry {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<PluginMetrics>, std::less<>> by_name;
};

PluginRegistry& plugin_registry() {
  static PluginRegistry* registry = new PluginRegistry();  // never destroyed: chains may
  return *registry;                                        // outlive static destruction
}

}  // namespace

PluginMetrics* plugin_metrics(std::string_view name) {
  PluginRegistry& r = plugin_registry();
  std::lock_guard lock(r.mu);
  auto it = r.by_name.find(name);
  if (it != r.by_name.end()) return it->second.get();
  auto m = std::make_unique<PluginMetrics>();
  m->name = std::string(name);
  PluginMetrics* raw = m.get();
  r.by_name.emplace(std::string(name), std::move(m));
  return raw;
}

std::vector<const PluginMetrics*> all_plugin_metrics() {
  PluginRegistry& r = plugin_registry();
  std::lock_guard lock(r.mu);
  std::vector<const PluginMetrics*> out;
  out.reserve(r.by_name.size());
  for (const auto& [name, m] : r.by_name) out.push_back(m.get());
  return out;
}

}  // namespace mailgate::obs
