// config/obs_flags.cc — the --metrics_listen and --trace_* flags. See obs_flags.h.
#include "config/obs_flags.h"

#include <gflags/gflags.h>

#include "config/endpoint.h"

DEFINE_string(metrics_listen, "",
              "ADDR:PORT of the HTTP listener for /metrics (Prometheus), the status page (/) and "
              "/api/status; empty = off; port 0 = the OS picks one (logged)");
DEFINE_string(trace_db, "",
              "SQLite file of the transaction trace (created when missing; WAL); empty = no "
              "trace. Query it with `mailgatectl trace`");
DEFINE_uint32(trace_retention_hours, 168, "Trace rows older than this many hours are deleted");
DEFINE_uint64(trace_max_rows, 1000000,
              "Most transactions kept in the trace; the oldest beyond it are deleted");
DEFINE_uint32(trace_queue, 10000,
              "Trace records waiting for the writer thread; when full, new records are dropped "
              "(and counted), sessions never wait");

namespace mailgate::config {
namespace {

std::string flag_error(const char* flag, const std::string& message) {
  return std::string("--") + flag + ": " + message;
}

}  // namespace

Expected<obs::ObsConfig, std::string> obs_config_from_flags() {
  obs::ObsConfig c;
  if (!FLAGS_metrics_listen.empty()) {
    auto hp = parse_host_port(FLAGS_metrics_listen, /*allow_zero=*/true);
    if (!hp) return unexpected(flag_error("metrics_listen", hp.error()));
    std::error_code ec;
    asio::ip::address addr = asio::ip::make_address(hp->host, ec);
    if (ec)
      return unexpected(flag_error("metrics_listen", "'" + hp->host +
                                                         "' is not an IP address (the listener "
                                                         "binds one address, e.g. 127.0.0.1)"));
    c.metrics_listen = asio::ip::tcp::endpoint(addr, hp->port);
  }
  c.trace.db_path = FLAGS_trace_db;
  if (FLAGS_trace_retention_hours == 0 || FLAGS_trace_retention_hours > 24 * 3660)
    return unexpected(flag_error("trace_retention_hours", "must be from 1 to 87840 (ten years)"));
  c.trace.retention = std::chrono::hours(FLAGS_trace_retention_hours);
  if (FLAGS_trace_max_rows < 100 || FLAGS_trace_max_rows > 1000000000ULL)
    return unexpected(flag_error("trace_max_rows", "must be from 100 to 1000000000"));
  c.trace.max_rows = static_cast<int64_t>(FLAGS_trace_max_rows);
  if (FLAGS_trace_queue < 10 || FLAGS_trace_queue > 10000000)
    return unexpected(flag_error("trace_queue", "must be from 10 to 10000000"));
  c.trace.queue_capacity = FLAGS_trace_queue;
  return c;
}

}  // namespace mailgate::config
