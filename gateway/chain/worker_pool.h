// chain/worker_pool.h — the bounded pool of threads that runs blocking plugin callbacks.
// Owns: its threads and a bounded job queue. A full queue refuses new jobs at once (the
// caller applies the plugin's fail mode) instead of letting sessions pile up behind it.
// Threading: submit() from any thread; jobs run on the pool's threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mailgate::chain {

class WorkerPool {
 public:
  WorkerPool(size_t threads, size_t max_queue);
  ~WorkerPool();  // finishes queued jobs, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; false when the queue is full or the pool is stopping.
  bool submit(std::function<void()> job);
  size_t threads() const { return threads_.size(); }
  size_t queued() const;

 private:
  void loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  size_t max_queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mailgate::chain
