// net/socket_watchdog.cc — see socket_watchdog.h.
#include "net/socket_watchdog.h"

namespace mailgate::net {

SocketWatchdog::SocketWatchdog(asio::ip::tcp::socket& socket)
    : timer_(socket.get_executor()), state_(std::make_shared<State>()) {
  state_->socket = &socket;
  state_->timer = &timer_;
}

SocketWatchdog::~SocketWatchdog() { stop(); }

void SocketWatchdog::arm(Clock::time_point deadline) {
  State& s = *state_;
  s.timed_out = false;
  s.armed = true;
  s.deadline = deadline;
  // A pending wait that expires no later than the deadline re-arms itself when it fires.
  if (!s.pending || s.expiry > deadline) start_wait(state_, deadline);
}

void SocketWatchdog::disarm() { state_->armed = false; }

void SocketWatchdog::stop() {
  State& s = *state_;
  if (!s.alive) return;
  s.alive = false;
  s.armed = false;
  if (s.pending) timer_.cancel();
  s.pending = false;
}

void SocketWatchdog::start_wait(const std::shared_ptr<State>& state, Clock::time_point expiry) {
  State& s = *state;
  const uint64_t wait = ++s.wait;
  s.expiry = expiry;
  s.pending = true;
  s.timer->expires_at(expiry);  // a superseded wait completes as aborted and is ignored
  s.timer->async_wait(
      [state, wait](const std::error_code& ec) { on_expiry(state, wait, ec); });
}

void SocketWatchdog::on_expiry(const std::shared_ptr<State>& state, uint64_t wait,
                               const std::error_code& ec) {
  State& s = *state;
  if (!s.alive || wait != s.wait) return;
  s.pending = false;
  if (ec || !s.armed) return;
  if (Clock::now() < s.deadline) {  // re-armed for later since this wait started
    start_wait(state, s.deadline);
    return;
  }
  s.timed_out = true;
  std::error_code ignored;
  s.socket->cancel(ignored);
}

}  // namespace mailgate::net
