// obs/service.cc — see service.h.
#include "obs/service.h"

#include <asio/executor_work_guard.hpp>
#include <asio/steady_timer.hpp>
#include <pthread.h>

#include <thread>

#include "log/log.h"
#include "obs/assets.h"
#include "obs/prometheus.h"
#include "obs/status_json.h"
#include "obs/trace_writer.h"

namespace mailgate::obs {

HttpResponse route(const HttpRequest& request, const std::string& status_json) {
  if (request.path == "/metrics") {
    HttpResponse r;
    r.content_type = std::string(kPrometheusContentType);
    r.body = prometheus_text();
    return r;
  }
  if (request.path == "/api/status") {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = status_json;
    return r;
  }
  if (const Asset* a = find_asset(request.path)) {
    HttpResponse r;
    r.content_type = std::string(a->content_type);
    r.body = std::string(a->body);
    return r;
  }
  return HttpResponse::text(404, "not found: try /metrics, / or /api/status\n");
}

struct Service::Impl {
  asio::io_context ctx{1};
  std::unique_ptr<HttpServer> http;
  StatusHistory history;
  asio::steady_timer sampler{ctx};
  std::unique_ptr<TraceWriter> trace;
  std::thread thread;

  void schedule_sample() {
    sampler.expires_after(std::chrono::seconds(1));
    sampler.async_wait([this](const std::error_code& ec) {
      if (ec) return;
      history.sample();
      schedule_sample();
    });
  }
};

Service::Service() : impl_(std::make_unique<Impl>()) {}

Expected<std::unique_ptr<Service>, std::string> Service::start(const ObsConfig& config) {
  std::unique_ptr<Service> s(new Service());
  Impl& impl = *s->impl_;
  if (!config.trace.db_path.empty()) {
    auto writer = TraceWriter::start(config.trace);
    if (!writer) return unexpected(writer.error());
    impl.trace = std::move(*writer);
    set_trace_writer(impl.trace.get());
    MG_LOG_INFO("trace: writing transactions to {} (retention {} h, at most {} rows)",
                config.trace.db_path, config.trace.retention.count(), config.trace.max_rows);
  }
  if (config.metrics_listen) {
    Impl* raw = &impl;
    impl.http = std::make_unique<HttpServer>(impl.ctx, [raw](const HttpRequest& req) {
      return route(req, req.path == "/api/status" ? raw->history.json() : std::string());
    });
    std::string error = impl.http->listen(*config.metrics_listen, "metrics_listen");
    if (!error.empty()) {
      set_trace_writer(nullptr);
      return unexpected(error);
    }
    auto ep = impl.http->local_endpoint();
    std::string where =
        ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    MG_LOG_INFO("metrics: serving http://{}:{}/ (/metrics, /api/status)", where, ep.port());
    impl.http->start();
    impl.history.sample();
    impl.schedule_sample();
    impl.thread = std::thread([raw] {
      for (;;) {
        try {
          raw->ctx.run();
          return;
        } catch (const std::exception& e) {
          MG_LOG_ERROR("metrics thread: unexpected error: {}", e.what());
        }
      }
    });
    pthread_setname_np(impl.thread.native_handle(), "mg-obs");
  }
  return s;
}

Service::~Service() {
  if (impl_->thread.joinable()) {
    asio::post(impl_->ctx, [impl = impl_.get()] {
      impl->sampler.cancel();
      impl->http->stop();
      impl->ctx.stop();
    });
    impl_->thread.join();
  }
  set_trace_writer(nullptr);
  impl_->trace.reset();  // writes what is still queued
}

}  // namespace mailgate::obs
