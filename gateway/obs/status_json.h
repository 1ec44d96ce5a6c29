// obs/status_json.h — the figures behind the status page (GET /api/status), as JSON.
// Owns: the per-second history of a few totals (sampled by the metrics service's timer) and
// the JSON document: totals, per-second series, plugin verdicts, recent refusals, DNS, trace.
// Threading: sample() and json() run on the metrics service's one thread; no lock needed.
// Must not touch: the counters (read only).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace mailgate::obs {

class StatusHistory {
 public:
  static constexpr size_t kSamples = 300;  // five minutes at one sample per second

  // Takes one sample of the totals now.
  void sample();
  // The whole /api/status document.
  std::string json() const;

 private:
  struct Sample {
    int64_t time_ms = 0;
    int64_t connections = 0;
    int64_t accepted = 0;
    int64_t refused = 0;  // transactions rejected, tempfailed + commands refused by plugins
    int64_t other = 0;    // discarded, aborted
  };
  std::deque<Sample> samples_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace mailgate::obs
