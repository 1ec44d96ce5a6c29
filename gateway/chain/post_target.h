// chain/post_target.h — a way back to an I/O thread that may already be gone.
// Owns: an executor and whether it may still be posted to. A plugin call that outlives its
// session (abandoned after a timeout) finishes on a worker thread later, possibly after the
// io_context it came from has been destroyed; posting there would be a use-after-free. The
// owner of the io_context calls close() before destroying it; post() after that is a no-op.
// Threading: post() from any thread; close() from any thread, once the owner is done.
#pragma once

#include <mutex>
#include <optional>
#include <utility>

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

namespace mailgate::chain {

class PostTarget {
 public:
  explicit PostTarget(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  // Posts `f` to the executor unless close() was called. Returns whether it was posted.
  template <typename F>
  bool post(F&& f) {
    std::lock_guard lock(mu_);
    if (!executor_) return false;
    asio::post(*executor_, std::forward<F>(f));
    return true;
  }

  // After this returns, no post() is in progress and none will reach the executor.
  void close() {
    std::lock_guard lock(mu_);
    executor_.reset();
  }

 private:
  std::mutex mu_;
  std::optional<asio::any_io_executor> executor_;
};

}  // namespace mailgate::chain
