// log/log.h — the gateway's log: one line per event on stderr, with time, level and pid.
// Owns: the global log level and line formatting. Lines are written whole by write(2), so
// lines from different threads never interleave. A line is formatted straight into a
// per-thread buffer after a per-thread cached time prefix: no allocation, no getpid(2).
// A thread that runs an event loop may batch (BatchScope): its debug and info lines wait in
// its buffer until flush() at the end of the loop's turn (or 16 KiB), one write(2) for all
// of them; a warning or error goes out at once, after whatever waits before it.
// Usage: MG_LOG_INFO("session {}: connect from {}[{}]", id, name, addr);
#pragma once

#include <iterator>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace mailgate::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void set_level(Level level);
Level level();
bool enabled(Level level);
// Parses "debug", "info", "warning" (or "warn"), "error". Returns false when unknown.
bool parse_level(std::string_view text, Level* out);
void write(Level level, std::string_view message);

// What MG_LOG_* expand to: the line's prefix, the formatted message and the newline go into
// the calling thread's buffer, then out with one write(2) (later, when batching).
fmt::memory_buffer& begin_line(Level level);
void end_line(fmt::memory_buffer& line);

// Writes the calling thread's batched lines, if any.
void flush();
// While alive, the calling thread batches its lines; flushes when it ends.
class BatchScope {
 public:
  BatchScope();
  ~BatchScope();
  BatchScope(const BatchScope&) = delete;
  BatchScope& operator=(const BatchScope&) = delete;
};
template <typename... Args>
void emit(Level level, fmt::format_string<Args...> format, Args&&... args) {
  fmt::memory_buffer& line = begin_line(level);
  fmt::format_to(std::back_inserter(line), format, std::forward<Args>(args)...);
  end_line(line);
}

}  // namespace mailgate::log

#define MG_LOG_AT(lvl, ...)                                          \
  do {                                                               \
    if (::mailgate::log::enabled(lvl))                               \
      ::mailgate::log::emit(lvl, __VA_ARGS__);                       \
  } while (0)
#define MG_LOG_DEBUG(...) MG_LOG_AT(::mailgate::log::Level::kDebug, __VA_ARGS__)
#define MG_LOG_INFO(...) MG_LOG_AT(::mailgate::log::Level::kInfo, __VA_ARGS__)
#define MG_LOG_WARNING(...) MG_LOG_AT(::mailgate::log::Level::kWarning, __VA_ARGS__)
#define MG_LOG_ERROR(...) MG_LOG_AT(::mailgate::log::Level::kError, __VA_ARGS__)
