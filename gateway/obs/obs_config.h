// obs/obs_config.h — what the observability service is asked to do: the metrics listener and
// the transaction trace. Built from the --metrics_listen and --trace_* flags by
// config/obs_flags.cc (every error names its flag).
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace mailgate::obs {

struct TraceConfig {
  std::string db_path;                // empty: no trace
  std::chrono::hours retention{168};  // rows older than this are deleted
  int64_t max_rows = 1000000;         // beyond this the oldest rows are deleted
  size_t queue_capacity = 10000;      // records waiting for the writer; more are dropped
  size_t batch = 500;                 // most records per INSERT transaction
  std::chrono::milliseconds flush_interval{250};    // a partial batch waits at most this long
  std::chrono::milliseconds prune_interval{30000};  // how often retention runs
};

struct ObsConfig {
  std::optional<asio::ip::tcp::endpoint> metrics_listen;  // nullopt: no HTTP listener
  TraceConfig trace;
};

}  // namespace mailgate::obs
