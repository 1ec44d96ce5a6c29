// net/socket_watchdog.h — the deadline of a connection's current read or write.
// Owns: one asio timer per connection and the state its handler shares with it. When an
// armed deadline passes, the socket's pending operations are cancelled and timed_out() is
// set; the caller sees its operation end with operation_aborted and asks timed_out().
// The timer is lazy: arming with a deadline no earlier than the one already pending only
// records it, and disarming only clears a flag, so a read or write costs no timer insert,
// cancel or extra completion handler. The timer fires at most once per configured timeout
// while the connection is busy and re-arms itself for the latest deadline if that has not
// passed yet.
// Must not touch: the socket beyond cancel(); the socket outlives this object (declare the
// watchdog after the socket it watches).
// Thread-safety: the owner's io_context thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <system_error>

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

namespace mailgate::net {

class SocketWatchdog {
 public:
  using Clock = std::chrono::steady_clock;

  explicit SocketWatchdog(asio::ip::tcp::socket& socket);
  ~SocketWatchdog();
  SocketWatchdog(const SocketWatchdog&) = delete;
  SocketWatchdog& operator=(const SocketWatchdog&) = delete;

  // The operation about to start must end by `deadline`; clears timed_out().
  void arm(Clock::time_point deadline);
  void arm_after(std::chrono::milliseconds timeout) { arm(Clock::now() + timeout); }
  // The operation ended: no deadline until the next arm().
  void disarm();
  // The last armed deadline passed before disarm() (its operation was cancelled).
  bool timed_out() const { return state_->timed_out; }
  // The connection is closing: the pending timer is cancelled for good.
  void stop();

 private:
  // Shared with the pending timer handler, which may run after this object is gone: it acts
  // only while `alive`, and only for the wait it was started for (`wait`).
  struct State {
    asio::ip::tcp::socket* socket = nullptr;
    asio::steady_timer* timer = nullptr;
    Clock::time_point deadline{};
    Clock::time_point expiry{};  // of the pending wait, when `pending`
    uint64_t wait = 0;           // number of the latest wait started
    bool armed = false;
    bool pending = false;
    bool timed_out = false;
    bool alive = true;
  };
  static void start_wait(const std::shared_ptr<State>& state, Clock::time_point expiry);
  static void on_expiry(const std::shared_ptr<State>& state, uint64_t wait,
                        const std::error_code& ec);

  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace mailgate::net
