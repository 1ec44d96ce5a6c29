// net/auth_throttle.h — failed AUTH attempts per client address, for the submission
// listeners: once a client has failed `max_failures` times within `window`, further AUTH
// commands from it are refused (421 4.7.0) until the oldest failure leaves the window.
// Owns: the failure times per address (in memory, this process only; a cluster of gateways
// throttles per gateway). Bounded: at most kMaxTracked addresses, expired ones pruned first.
// Must not touch: SMTP replies (smtp/session.cc decides what to say) or the backend.
// Thread-safety: every method locks; shared by all I/O threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mailgate::net {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxTracked = 100'000;

  AuthThrottle(size_t max_failures, std::chrono::milliseconds window)
      : max_failures_(max_failures), window_(window) {}

  // Takes new limits (SIGHUP); recorded failures are kept.
  void set_limits(size_t max_failures, std::chrono::milliseconds window);
  // True when `addr` may not try again now. max_failures 0 disables the throttle.
  bool blocked(const std::string& addr, Clock::time_point now = Clock::now());
  // Records a failed attempt by `addr`.
  void failed(const std::string& addr, Clock::time_point now = Clock::now());
  size_t tracked() const;

 private:
  void prune(std::deque<Clock::time_point>& times, Clock::time_point now) const;

  mutable std::mutex mu_;
  size_t max_failures_;
  std::chrono::milliseconds window_;
  std::unordered_map<std::string, std::deque<Clock::time_point>> failures_;
};

}  // namespace mailgate::net
