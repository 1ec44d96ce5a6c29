// Tests gateway/obs/metrics.* and obs/prometheus.*: sharded counters add up across threads,
// histogram buckets, per-plugin blocks, and the exposition text.
#include "obs/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "obs/prometheus.h"

namespace mailgate::obs {
namespace {

TEST(Counter, SumsShardsOfManyThreads) {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&c] {
      for (int i = 0; i < 10000; ++i) c.inc();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 80000);
  c.add(-5);
  EXPECT_EQ(c.value(), 79995);
}

TEST(Histogram, PutsObservationsInTheirBucket) {
  Histogram h;
  h.observe_seconds(0.00001);  // <= 50 µs
  h.observe_seconds(0.00005);  // == bound: same bucket (le)
  h.observe_seconds(0.003);    // <= 5 ms
  h.observe_seconds(100);      // +Inf
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.buckets[0], 2u);
  EXPECT_EQ(s.buckets[6], 1u);
  EXPECT_EQ(s.buckets[Histogram::kBuckets - 1], 1u);
  EXPECT_NEAR(s.sum_seconds, 100.00306, 1e-6);
}

TEST(PluginMetrics, OneBlockPerNameAndStablePointers) {
  PluginMetrics* a = plugin_metrics("metrics_test_a");
  PluginMetrics* b = plugin_metrics("metrics_test_b");
  EXPECT_NE(a, b);
  EXPECT_EQ(a, plugin_metrics("metrics_test_a"));
  count_plugin_call(a, MG_REJECT, false, 2.0);
  count_plugin_call(a, MG_CONTINUE, true, 0.5);
  count_plugin_call(a, MG_FAILED, true, 0.5);         // never an effective action: not counted
  count_plugin_call(nullptr, MG_REJECT, false, 1.0);  // no block: ignored
  EXPECT_EQ(a->actions[MG_REJECT].value(), 1);
  EXPECT_EQ(a->actions[MG_CONTINUE].value(), 1);
  EXPECT_EQ(a->failures.value(), 2);
  EXPECT_EQ(a->latency.snapshot().count, 3u);
}

TEST(Outcome, FromTheLogStatus) {
  EXPECT_EQ(outcome_from("accepted"), Outcome::kAccepted);
  EXPECT_EQ(outcome_from("tempfail"), Outcome::kTempfail);
  EXPECT_EQ(outcome_from("discarded"), Outcome::kDiscarded);
  EXPECT_EQ(outcome_from("aborted"), Outcome::kAborted);
  EXPECT_EQ(refusal_stage_from("EHLO"), RefusalStage::kHelo);
  EXPECT_EQ(refusal_stage_from("RCPT"), RefusalStage::kRcpt);
}

// The value of the exposition line that starts with `series` + " ", or -1.
double sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

TEST(Prometheus, ExposesCountersHistogramsAndPlugins) {
  int64_t before = metrics().transactions[static_cast<size_t>(Outcome::kAccepted)].value();
  count_transaction("accepted", 0.004);
  count_reply(250);
  count_reply(554);
  count_plugin_call(plugin_metrics("prom\"quote"), MG_ACCEPT, false, 1.0);
  std::string text = prometheus_text();
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("# TYPE mailgate_transactions_total counter\n"), std::string::npos);
  EXPECT_EQ(sample(text, "mailgate_transactions_total{outcome=\"accepted\"}"), before + 1);
  EXPECT_GE(sample(text, "mailgate_replies_total{class=\"5xx\"}"), 1);
  EXPECT_GE(sample(text, "mailgate_transaction_seconds_bucket{le=\"0.005\"}"), 1);
  EXPECT_GE(sample(text, "mailgate_transaction_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_GE(sample(text, "mailgate_transaction_seconds_count"), 1);
  // Label values are escaped.
  EXPECT_EQ(
      sample(text, "mailgate_plugin_verdicts_total{plugin=\"prom\\\"quote\",action=\"accept\"}"),
      1);
  EXPECT_NE(
      text.find("mailgate_plugin_call_seconds_bucket{plugin=\"prom\\\"quote\",le=\"0.001\"} 1\n"),
      std::string::npos);
  EXPECT_NE(text.find("mailgate_build_info{version=\""), std::string::npos);
  // Every non-comment line is "name{labels} value" or "name value".
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(line.rfind("mailgate_", 0) == 0) << line;
    EXPECT_NE(line.rfind(' '), std::string::npos) << line;
  }
}

TEST(Prometheus, EscapesLabelValues) { EXPECT_EQ(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd"); }

}  // namespace
}  // namespace mailgate::obs
