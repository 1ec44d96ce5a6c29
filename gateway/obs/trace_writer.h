// obs/trace_writer.h — hands trace records from sessions to one writer thread, which stores
// them in batches and applies retention.
// Owns: the bounded queue (a session never waits: when the queue is full the record is
// dropped and counted in mailgate_trace_records_dropped_total), the writer thread, its
// TraceStore, and the process-wide pointer sessions use to find the writer.
// Threading: submit() from any thread (a short mutex, no I/O); the store is used only by the
// writer thread.
// Must not touch: what goes into a record (obs/session_trace.cc builds them).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "obs/obs_config.h"
#include "obs/trace_record.h"
#include "obs/trace_store.h"
#include "util/expected.h"

namespace mailgate::obs {

class TraceWriter {
 public:
  // Opens (creates) the database, then starts the thread. Errors name --trace_db.
  static Expected<std::unique_ptr<TraceWriter>, std::string> start(TraceConfig config);
  // Writes what is queued, then stops the thread.
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Queues a record; drops it (and counts the drop) when the queue is full.
  void submit(TraceRecord record);
  // Waits until everything submitted so far is written (or failed). For tests and shutdown.
  void flush();

 private:
  TraceWriter(TraceConfig config, TraceStore store);
  void run();
  void write_batch(std::vector<TraceRecord>& batch);

  TraceConfig config_;
  TraceStore store_;
  std::mutex mu_;
  std::condition_variable wake_;     // the writer: records arrived, or stop
  std::condition_variable drained_;  // flush(): a batch was written
  std::deque<TraceRecord> queue_;
  uint64_t submitted_ = 0;  // accepted into the queue
  uint64_t done_ = 0;       // written or failed
  bool stop_ = false;
  bool flush_wanted_ = false;  // flush(): write a partial batch now
  std::thread thread_;
};

// The running writer, or null when the trace is off. Set by the metrics service.
TraceWriter* trace_writer();
void set_trace_writer(TraceWriter* writer);

}  // namespace mailgate::obs
