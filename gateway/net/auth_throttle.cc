// net/auth_throttle.cc — see auth_throttle.h.
#include "net/auth_throttle.h"

namespace mailgate::net {

void AuthThrottle::set_limits(size_t max_failures, std::chrono::milliseconds window) {
  std::lock_guard lock(mu_);
  max_failures_ = max_failures;
  window_ = window;
}

void AuthThrottle::prune(std::deque<Clock::time_point>& times, Clock::time_point now) const {
  while (!times.empty() && now - times.front() >= window_) times.pop_front();
  while (times.size() > max_failures_ && !times.empty()) times.pop_front();
}

bool AuthThrottle::blocked(const std::string& addr, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (max_failures_ == 0) return false;
  auto it = failures_.find(addr);
  if (it == failures_.end()) return false;
  prune(it->second, now);
  if (it->second.empty()) {
    failures_.erase(it);
    return false;
  }
  return it->second.size() >= max_failures_;
}

void AuthThrottle::failed(const std::string& addr, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (max_failures_ == 0) return;
  if (failures_.size() >= kMaxTracked && failures_.find(addr) == failures_.end()) {
    for (auto it = failures_.begin(); it != failures_.end();) {
      prune(it->second, now);
      it = it->second.empty() ? failures_.erase(it) : std::next(it);
    }
    if (failures_.size() >= kMaxTracked) failures_.erase(failures_.begin());
  }
  auto& times = failures_[addr];
  times.push_back(now);
  prune(times, now);
}

size_t AuthThrottle::tracked() const {
  std::lock_guard lock(mu_);
  return failures_.size();
}

}  // namespace mailgate::net
