// obs/status_json.cc — see status_json.h.
#include "obs/status_json.h"

#include <nlohmann/json.hpp>

#include "obs/metrics.h"
#include "obs/recent_refusals.h"
#include "obs/sources.h"

#ifndef MAILGATE_VERSION
#define MAILGATE_VERSION "unknown"
#endif

namespace mailgate::obs {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t tx(Outcome o) { return metrics().transactions[static_cast<size_t>(o)].value(); }

int64_t refusals_total() {
  int64_t n = 0;
  for (const Counter& c : metrics().refusals) n += c.value();
  return n;
}

}  // namespace

void StatusHistory::sample() {
  Sample s;
  s.time_ms = now_ms();
  s.connections = metrics().connections_total.value();
  s.accepted = tx(Outcome::kAccepted);
  s.refused = tx(Outcome::kRejected) + tx(Outcome::kTempfail) + refusals_total();
  s.other = tx(Outcome::kDiscarded) + tx(Outcome::kAborted);
  samples_.push_back(s);
  while (samples_.size() > kSamples + 1) samples_.pop_front();
}

std::string StatusHistory::json() const {
  using nlohmann::json;
  const Metrics& m = metrics();
  json doc;
  doc["version"] = MAILGATE_VERSION;
  doc["time_ms"] = now_ms();
  doc["uptime_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();

  json transactions = json::object();
  int64_t all = 0;
  for (size_t i = 0; i < m.transactions.size(); ++i) {
    int64_t n = m.transactions[i].value();
    transactions[outcome_name(static_cast<Outcome>(i))] = n;
    all += n;
  }
  json replies = json::object();
  for (size_t c = 2; c < m.replies.size(); ++c)
    replies[std::to_string(c) + "xx"] = m.replies[c].value();
  json refusals_by_stage = json::object();
  for (size_t i = 0; i < m.refusals.size(); ++i)
    refusals_by_stage[refusal_stage_name(static_cast<RefusalStage>(i))] = m.refusals[i].value();
  Histogram::Snapshot txs = m.transaction_seconds.snapshot();
  doc["totals"] = {
      {"connections_open", m.connections_open.value()},
      {"connections", m.connections_total.value()},
      {"connections_refused",
       m.connections_refused_total.value() + m.connections_refused_client.value()},
      {"transactions", all},
      {"transactions_by_outcome", transactions},
      {"transaction_mean_ms", txs.count == 0 ? 0.0 : txs.sum_seconds * 1000.0 / txs.count},
      {"replies", replies},
      {"refusals_by_stage", refusals_by_stage},
      {"spool_bytes", m.spool_bytes.value()},
      {"backend_errors",
       [&] {
         int64_t n = 0;
         for (const Counter& c : m.backend_errors) n += c.value();
         return n;
       }()},
  };

  // Per-second rates between consecutive samples.
  json t = json::array(), accepted = json::array(), refused = json::array(),
       connections = json::array(), other = json::array();
  for (size_t i = 1; i < samples_.size(); ++i) {
    const Sample& a = samples_[i - 1];
    const Sample& b = samples_[i];
    double secs = (b.time_ms - a.time_ms) / 1000.0;
    if (secs <= 0) continue;
    t.push_back(b.time_ms);
    accepted.push_back((b.accepted - a.accepted) / secs);
    refused.push_back((b.refused - a.refused) / secs);
    other.push_back((b.other - a.other) / secs);
    connections.push_back((b.connections - a.connections) / secs);
  }
  doc["series"] = {{"time_ms", t},
                   {"accepted", accepted},
                   {"refused", refused},
                   {"other", other},
                   {"connections", connections}};

  static constexpr const char* kActionNames[kActions] = {"continue", "accept", "tempfail", "reject",
                                                         "discard"};
  json plugins = json::array();
  for (const PluginMetrics* p : all_plugin_metrics()) {
    json row;
    row["name"] = p->name;
    int64_t calls = 0;
    for (size_t a = 0; a < kActions; ++a) {
      int64_t n = p->actions[a].value();
      row[kActionNames[a]] = n;
      calls += n;
    }
    row["calls"] = calls;
    row["failures"] = p->failures.value();
    Histogram::Snapshot s = p->latency.snapshot();
    row["mean_ms"] = s.count == 0 ? 0.0 : s.sum_seconds * 1000.0 / s.count;
    plugins.push_back(std::move(row));
  }
  doc["plugins"] = std::move(plugins);

  json recent = json::array();
  for (const Refusal& r : recent_refusals().list()) {
    recent.push_back({{"time_ms", r.time_ms},
                      {"session", r.session},
                      {"client", r.client},
                      {"stage", r.stage},
                      {"reply", r.reply},
                      {"plugin", r.plugin},
                      {"detail", r.detail}});
  }
  doc["refusals"] = std::move(recent);

  if (std::optional<dns::ResolverMetrics> d = dns_metrics()) {
    uint64_t completed = 0;
    for (uint64_t n : d->latency) completed += n;
    doc["dns"] = {
        {"queries", d->queries},
        {"in_flight", d->in_flight},
        {"cache_hit_ratio", completed == 0 ? 0.0 : static_cast<double>(d->latency[0]) / completed}};
  }
  doc["trace"] = {{"queued", m.trace_queued.value()},
                  {"written", m.trace_written.value()},
                  {"dropped", m.trace_dropped.value()},
                  {"errors", m.trace_write_errors.value()}};
  // Client-supplied text (addresses, HELO names) may hold any byte: never throw on it.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace mailgate::obs
