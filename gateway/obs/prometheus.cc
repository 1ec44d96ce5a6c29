// obs/prometheus.cc — see prometheus.h.
#include "obs/prometheus.h"

#include <fmt/format.h>

#include "obs/metrics.h"
#include "obs/sources.h"

#ifndef MAILGATE_VERSION
#define MAILGATE_VERSION "unknown"
#endif

namespace mailgate::obs {
namespace {

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  void sample(std::string_view name, std::string_view labels, double value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  void sample(std::string_view name, std::string_view labels, int64_t value) {
    if (labels.empty()) {
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    } else {
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
    }
  }
  void counter(std::string_view name, std::string_view help, const Counter& c) {
    family(name, "counter", help);
    sample(name, "", c.value());
  }
  // `labels` (may be empty) comes before le="...".
  void histogram(std::string_view name, std::string_view labels, const Histogram& h) {
    Histogram::Snapshot s = h.snapshot();
    std::string sep = labels.empty() ? "" : std::string(labels) + ",";
    uint64_t cumulative = 0;
    for (size_t b = 0; b < Histogram::kBuckets; ++b) {
      cumulative += s.buckets[b];
      std::string le = b < kLatencyBuckets.size() ? fmt::format("{}", kLatencyBuckets[b]) : "+Inf";
      fmt::format_to(std::back_inserter(out_), "{}_bucket{{{}le=\"{}\"}} {}\n", name, sep, le,
                     cumulative);
    }
    std::string braces = labels.empty() ? "" : "{" + std::string(labels) + "}";
    fmt::format_to(std::back_inserter(out_), "{}_sum{} {}\n{}_count{} {}\n", name, braces,
                   s.sum_seconds, name, braces, s.count);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

void dns_section(Writer& w) {
  std::optional<dns::ResolverMetrics> m = dns_metrics();
  if (!m) return;
  w.family("mailgate_dns_queries_total", "counter", "DNS queries started, by caller kind");
  w.sample("mailgate_dns_queries_total", "mode=\"sync\"", static_cast<int64_t>(m->sync_queries));
  w.sample("mailgate_dns_queries_total", "mode=\"async\"", static_cast<int64_t>(m->async_queries));
  w.family("mailgate_dns_answers_total", "counter", "DNS queries completed, by status");
  const std::pair<const char*, uint64_t> statuses[] = {{"ok", m->ok},
                                                       {"nxdomain", m->nxdomain},
                                                       {"nodata", m->nodata},
                                                       {"tempfail", m->tempfail},
                                                       {"error", m->error}};
  for (const auto& [status, n] : statuses)
    w.sample("mailgate_dns_answers_total", fmt::format("status=\"{}\"", status),
             static_cast<int64_t>(n));
  w.family("mailgate_dns_timeouts_total", "counter", "DNS queries that ran past --dns_timeout_ms");
  w.sample("mailgate_dns_timeouts_total", "", static_cast<int64_t>(m->timeouts));
  w.family("mailgate_dns_in_flight", "gauge", "DNS queries waiting for an answer");
  w.sample("mailgate_dns_in_flight", "", static_cast<int64_t>(m->in_flight));
  // The resolver keeps five latency classes; they are exposed as a histogram with those bounds.
  static constexpr const char* kBounds[] = {"0.001", "0.01", "0.1", "1", "+Inf"};
  w.family("mailgate_dns_query_seconds", "histogram", "DNS query latency");
  uint64_t cumulative = 0, completed = 0;
  for (size_t i = 0; i < m->latency.size(); ++i) {
    cumulative += m->latency[i];
    w.sample("mailgate_dns_query_seconds_bucket", fmt::format("le=\"{}\"", kBounds[i]),
             static_cast<int64_t>(cumulative));
  }
  completed = cumulative;
  w.sample("mailgate_dns_query_seconds_count", "", static_cast<int64_t>(completed));
  w.family("mailgate_dns_cache_hits_total", "counter",
           "DNS answers taken as cache hits (answered in under 1 ms; libunbound does not flag "
           "them)");
  w.sample("mailgate_dns_cache_hits_total", "", static_cast<int64_t>(m->latency[0]));
  w.family("mailgate_dns_answer_cache_hits_total", "counter",
           "Blocking DNS queries answered from the resolver's own answer cache (exact; also "
           "counted in mailgate_dns_cache_hits_total)");
  w.sample("mailgate_dns_answer_cache_hits_total", "", static_cast<int64_t>(m->cache_hits));
  w.family("mailgate_dns_cache_hit_ratio", "gauge",
           "mailgate_dns_cache_hits_total / completed DNS queries (0 before any query)");
  w.sample("mailgate_dns_cache_hit_ratio", "",
           completed == 0 ? 0.0 : static_cast<double>(m->latency[0]) / completed);
}

}  // namespace

std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string prometheus_text() {
  const Metrics& m = metrics();
  Writer w;
  w.family("mailgate_build_info", "gauge", "Always 1; the labels name the build");
  w.sample("mailgate_build_info",
           fmt::format("version=\"{}\",compiler=\"{}\"", escape_label(MAILGATE_VERSION),
                       escape_label(__VERSION__)),
           int64_t{1});

  w.family("mailgate_connections_open", "gauge", "SMTP sessions open now");
  w.sample("mailgate_connections_open", "", m.connections_open.value());
  w.counter("mailgate_connections_total", "SMTP connections accepted (past the limits)",
            m.connections_total);
  w.family("mailgate_connections_refused_total", "counter",
           "SMTP connections refused with 421 4.7.0 by a connection limit");
  w.sample("mailgate_connections_refused_total", "limit=\"total\"",
           m.connections_refused_total.value());
  w.sample("mailgate_connections_refused_total", "limit=\"per_client\"",
           m.connections_refused_client.value());

  w.family("mailgate_transactions_total", "counter",
           "Transactions that reached DATA, by outcome (the log line's status=)");
  for (size_t i = 0; i < m.transactions.size(); ++i)
    w.sample("mailgate_transactions_total",
             fmt::format("outcome=\"{}\"", outcome_name(static_cast<Outcome>(i))),
             m.transactions[i].value());
  w.family("mailgate_transaction_seconds", "histogram",
           "Time from MAIL FROM to the final reply of a transaction");
  w.histogram("mailgate_transaction_seconds", "", m.transaction_seconds);
  w.family("mailgate_replies_total", "counter", "Replies sent to SMTP clients, by code class");
  for (size_t c = 2; c < m.replies.size(); ++c)
    w.sample("mailgate_replies_total", fmt::format("class=\"{}xx\"", c), m.replies[c].value());
  w.family("mailgate_refusals_total", "counter",
           "Commands refused on a plugin's verdict, by SMTP stage");
  for (size_t i = 0; i < m.refusals.size(); ++i)
    w.sample("mailgate_refusals_total",
             fmt::format("stage=\"{}\"", refusal_stage_name(static_cast<RefusalStage>(i))),
             m.refusals[i].value());

  std::vector<const PluginMetrics*> plugins = all_plugin_metrics();
  static constexpr const char* kActionNames[kActions] = {"continue", "accept", "tempfail", "reject",
                                                         "discard"};
  w.family("mailgate_plugin_verdicts_total", "counter",
           "Plugin callbacks by the action that took effect (after the fail mode)");
  for (const PluginMetrics* p : plugins) {
    std::string plugin = escape_label(p->name);
    for (size_t a = 0; a < kActions; ++a)
      w.sample("mailgate_plugin_verdicts_total",
               fmt::format("plugin=\"{}\",action=\"{}\"", plugin, kActionNames[a]),
               p->actions[a].value());
  }
  w.family("mailgate_plugin_failures_total", "counter",
           "Plugin callbacks that failed (error, exception, invalid action, timeout, full pool)");
  for (const PluginMetrics* p : plugins)
    w.sample("mailgate_plugin_failures_total", fmt::format("plugin=\"{}\"", escape_label(p->name)),
             p->failures.value());
  w.family("mailgate_plugin_inline_retries_total", "counter",
           "Calls tried on the I/O thread that needed uncached DNS and ran on the worker pool");
  for (const PluginMetrics* p : plugins)
    w.sample("mailgate_plugin_inline_retries_total",
             fmt::format("plugin=\"{}\"", escape_label(p->name)), p->inline_retries.value());
  w.family("mailgate_plugin_call_seconds", "histogram", "Plugin callback latency");
  for (const PluginMetrics* p : plugins)
    w.histogram("mailgate_plugin_call_seconds", fmt::format("plugin=\"{}\"", escape_label(p->name)),
                p->latency);

  w.counter("mailgate_backend_connects_total", "Connections opened to the backend MTA",
            m.backend_connects);
  w.counter("mailgate_backend_connect_errors_total",
            "Backend connections that failed before a usable EHLO", m.backend_connect_errors);
  w.family("mailgate_backend_connect_seconds", "histogram",
           "Time to connect to the backend and read its greeting");
  w.histogram("mailgate_backend_connect_seconds", "", m.backend_connect_seconds);
  w.family("mailgate_backend_errors_total", "counter",
           "Backend steps that ended without a usable reply, by kind");
  for (size_t i = 0; i < m.backend_errors.size(); ++i)
    w.sample("mailgate_backend_errors_total",
             fmt::format("kind=\"{}\"", backend_error_name(static_cast<BackendError>(i))),
             m.backend_errors[i].value());
  w.family("mailgate_backend_reply_seconds", "histogram",
           "Time the backend took to answer a command (end of data included)");
  w.histogram("mailgate_backend_reply_seconds", "", m.backend_reply_seconds);

  dns_section(w);

  w.counter("mailgate_spool_bytes_total", "Message bytes written into spools (memory or file)",
            m.spool_bytes);
  w.counter("mailgate_spool_files_total",
            "Messages that went over --spool_memory_limit into a spool file", m.spool_files);

  w.counter("mailgate_trace_records_queued_total", "Trace records handed to the trace writer",
            m.trace_queued);
  w.counter("mailgate_trace_records_dropped_total",
            "Trace records dropped because the writer's queue was full", m.trace_dropped);
  w.counter("mailgate_trace_records_written_total", "Trace records written to --trace_db",
            m.trace_written);
  w.counter("mailgate_trace_write_errors_total", "Failed trace batch writes", m.trace_write_errors);
  return w.take();
}

}  // namespace mailgate::obs
