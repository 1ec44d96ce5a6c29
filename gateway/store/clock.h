// store/clock.h — where the counter stores and the plugins' time comes from.
// Owns: the Clock interface (milliseconds since the Unix epoch), the system clock the daemon
// uses, and ManualClock, which tests move by hand so rate limits are checked exactly, without
// sleeping. Wall-clock time (not steady) because several gateways sharing one Redis compare
// their "now" with each other's stored times.
// Must not touch: anything else; no threads of its own. Threading: now_ms() from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace mailgate::store {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since 1970-01-01 UTC.
  virtual int64_t now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
  // The process-wide instance.
  static const SystemClock& instance();
};

// A clock that only moves when told to. Starts at `start_ms` (default: 2026-01-01 00:00 UTC).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'767'225'600'000) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(std::memory_order_relaxed); }
  void advance_ms(int64_t ms) { now_.fetch_add(ms, std::memory_order_relaxed); }
  void set_ms(int64_t ms) { now_.store(ms, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace mailgate::store
