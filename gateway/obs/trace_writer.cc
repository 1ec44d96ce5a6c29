// obs/trace_writer.cc — see trace_writer.h.
#include "obs/trace_writer.h"

#include <pthread.h>

#include <atomic>
#include <chrono>

#include "log/log.h"
#include "obs/metrics.h"

namespace mailgate::obs {
namespace {

std::atomic<TraceWriter*> g_writer{nullptr};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TraceWriter* trace_writer() { return g_writer.load(std::memory_order_acquire); }
void set_trace_writer(TraceWriter* writer) { g_writer.store(writer, std::memory_order_release); }

Expected<std::unique_ptr<TraceWriter>, std::string> TraceWriter::start(TraceConfig config) {
  auto store = TraceStore::open(config.db_path, TraceStore::Mode::kWriter);
  if (!store) return unexpected("--trace_db: " + store.error());
  std::unique_ptr<TraceWriter> w(new TraceWriter(std::move(config), std::move(*store)));
  w->thread_ = std::thread([raw = w.get()] { raw->run(); });
  pthread_setname_np(w->thread_.native_handle(), "mg-trace");
  return w;
}

TraceWriter::TraceWriter(TraceConfig config, TraceStore store)
    : config_(std::move(config)), store_(std::move(store)) {}

TraceWriter::~TraceWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TraceWriter::submit(TraceRecord record) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= config_.queue_capacity) {
      metrics().trace_dropped.inc();
      return;
    }
    queue_.push_back(std::move(record));
    ++submitted_;
  }
  metrics().trace_queued.inc();
  wake_.notify_one();
}

void TraceWriter::flush() {
  std::unique_lock lock(mu_);
  uint64_t target = submitted_;
  flush_wanted_ = true;
  wake_.notify_one();
  drained_.wait(lock, [&] { return done_ >= target || stop_; });
}

void TraceWriter::write_batch(std::vector<TraceRecord>& batch) {
  auto ok = store_.insert(batch);
  if (ok) {
    metrics().trace_written.add(static_cast<int64_t>(batch.size()));
  } else {
    metrics().trace_write_errors.inc();
    MG_LOG_ERROR("trace: {} records lost: {}", batch.size(), ok.error());
  }
}

void TraceWriter::run() {
  auto last_prune = std::chrono::steady_clock::now() - config_.prune_interval;
  std::vector<TraceRecord> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      // A partial batch waits up to flush_interval for company; a full one goes at once.
      wake_.wait_for(lock, config_.flush_interval,
                     [&] { return stop_ || flush_wanted_ || queue_.size() >= config_.batch; });
      if (queue_.empty() && stop_) break;
      flush_wanted_ = false;
      while (!queue_.empty() && batch.size() < config_.batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) {
      write_batch(batch);
      {
        std::lock_guard lock(mu_);
        done_ += batch.size();
      }
      batch.clear();
      drained_.notify_all();
    }
    auto now = std::chrono::steady_clock::now();
    if (now - last_prune >= config_.prune_interval) {
      last_prune = now;
      auto deleted = store_.prune(now_ms(), config_.retention, config_.max_rows);
      if (!deleted) {
        MG_LOG_WARNING("trace: retention: {}", deleted.error());
      } else if (*deleted > 0) {
        MG_LOG_INFO("trace: retention deleted {} transactions", *deleted);
      }
    }
  }
  drained_.notify_all();
}

}  // namespace mailgate::obs
