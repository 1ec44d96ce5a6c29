// log/log.h — the gateway's log: one line per event on stderr, with time, level and pid.
// Owns: the global log level and line formatting. Lines are written with a single write(2)
// so lines from different threads never interleave.
// Usage: MG_LOG_INFO("session {}: connect from {}[{}]", id, name, addr);
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace mailgate::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void set_level(Level level);
Level level();
bool enabled(Level level);
// Parses "debug", "info", "warning" (or "warn"), "error". Returns false when unknown.
bool parse_level(std::string_view text, Level* out);
void write(Level level, std::string_view message);

}  // namespace mailgate::log

#define MG_LOG_AT(lvl, ...)                                          \
  do {                                                               \
    if (::mailgate::log::enabled(lvl))                               \
      ::mailgate::log::write(lvl, ::fmt::format(__VA_ARGS__));       \
  } while (0)
#define MG_LOG_DEBUG(...) MG_LOG_AT(::mailgate::log::Level::kDebug, __VA_ARGS__)
#define MG_LOG_INFO(...) MG_LOG_AT(::mailgate::log::Level::kInfo, __VA_ARGS__)
#define MG_LOG_WARNING(...) MG_LOG_AT(::mailgate::log::Level::kWarning, __VA_ARGS__)
#define MG_LOG_ERROR(...) MG_LOG_AT(::mailgate::log::Level::kError, __VA_ARGS__)
