// net/connection_limiter.cc — see connection_limiter.h.
#include "net/connection_limiter.h"

namespace mailgate::net {
namespace {

// Map key: the address's bytes (IPv4-mapped IPv6 counts as the IPv4 address).
std::string key_of(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    auto b = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_bytes();
    return std::string(b.begin(), b.end());
  }
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return std::string(b.begin(), b.end());
  }
  auto b = a.to_v6().to_bytes();
  return std::string(b.begin(), b.end());
}

}  // namespace

ConnectionLimiter::Ticket& ConnectionLimiter::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    key_ = std::move(other.key_);
    other.owner_ = nullptr;
  }
  return *this;
}

void ConnectionLimiter::Ticket::release() {
  if (owner_ != nullptr) owner_->release(key_);
  owner_ = nullptr;
}

ConnectionLimiter::ConnectionLimiter(size_t max_total, size_t max_per_client)
    : max_total_(max_total), max_per_client_(max_per_client) {}

void ConnectionLimiter::set_limits(size_t max_total, size_t max_per_client) {
  std::lock_guard lock(mu_);
  max_total_ = max_total;
  max_per_client_ = max_per_client;
}

ConnectionLimiter::Verdict ConnectionLimiter::acquire(const asio::ip::address& client,
                                                      Ticket* ticket) {
  std::string key = key_of(client);
  std::lock_guard lock(mu_);
  if (total_.load(std::memory_order_relaxed) >= max_total_) return Verdict::kTotal;
  size_t& count = per_client_[key];
  if (count >= max_per_client_) {
    if (count == 0) per_client_.erase(key);
    return Verdict::kPerClient;
  }
  ++count;
  total_.fetch_add(1, std::memory_order_relaxed);
  *ticket = Ticket(this, std::move(key));
  return Verdict::kAccepted;
}

void ConnectionLimiter::release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = per_client_.find(key);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  total_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace mailgate::net
