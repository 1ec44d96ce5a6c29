// net/connection_limiter.h — counts open client connections, in total and per client
// address, and refuses those over the limits before any plugin or greeting.
// Owns: the counters. A Ticket is held by a session for its whole life and gives its slot
// back when destroyed.
// Thread-safety: acquire() and Ticket destruction may happen on any thread (mutex inside).
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

#include <asio/ip/address.hpp>

namespace mailgate::net {

class ConnectionLimiter {
 public:
  enum class Verdict {
    kAccepted,   // within both limits; the ticket holds the slot
    kTotal,      // the gateway is at max_connections
    kPerClient,  // this client address is at max_connections_per_ip
  };

  class Ticket {
   public:
    Ticket() = default;
    Ticket(ConnectionLimiter* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Ticket(Ticket&& other) noexcept : owner_(other.owner_), key_(std::move(other.key_)) {
      other.owner_ = nullptr;
    }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { release(); }
    void release();

   private:
    ConnectionLimiter* owner_ = nullptr;
    std::string key_;
  };

  ConnectionLimiter(size_t max_total, size_t max_per_client);
  void set_limits(size_t max_total, size_t max_per_client);

  // On kAccepted, *ticket holds the slot.
  Verdict acquire(const asio::ip::address& client, Ticket* ticket);
  size_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  void release(const std::string& key);

  std::mutex mu_;
  size_t max_total_;
  size_t max_per_client_;
  std::atomic<size_t> total_{0};
  std::unordered_map<std::string, size_t> per_client_;
};

}  // namespace mailgate::net
