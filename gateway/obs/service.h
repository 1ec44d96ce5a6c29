// obs/service.h — the observability service of the daemon: the HTTP listener (GET /metrics,
// GET / and its assets, GET /api/status), the once-a-second sampler behind the page's
// throughput chart, and the trace writer.
// Owns: one thread ("mg-obs") with its own io_context (so a slow scrape never touches an SMTP
// I/O thread), the HttpServer, the StatusHistory and the TraceWriter (registered process-wide
// for sessions while the service lives).
// Must not touch: SMTP sessions (they reach the service only through obs/metrics.h and
// obs/session_trace.h).
#pragma once

#include <memory>
#include <string>

#include "obs/http_server.h"
#include "obs/obs_config.h"
#include "util/expected.h"

namespace mailgate::obs {

// The HTTP routes, shared by the service and the tests.
HttpResponse route(const HttpRequest& request, const std::string& status_json);

class Service {
 public:
  // Opens the trace database and binds the listener (errors name --trace_db or
  // --metrics_listen), then starts the thread. With neither configured, does nothing.
  static Expected<std::unique_ptr<Service>, std::string> start(const ObsConfig& config);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

 private:
  Service();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailgate::obs
