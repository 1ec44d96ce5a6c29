// log/log.cc — see log.h.
#include "log/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace mailgate::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "?";
}

// The process never forks, so its pid is read once.
int process_id() {
  static const int pid = static_cast<int>(::getpid());
  return pid;
}

// One thread's line buffer and the "YYYY-MM-DDTHH:MM:SS" of the second it last logged in.
struct ThreadLine {
  fmt::memory_buffer buffer;
  std::time_t second = -1;
  char stamp[32] = {};
};

ThreadLine& thread_line() {
  thread_local ThreadLine line;
  return line;
}

}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
bool enabled(Level lvl) {
  return static_cast<int>(lvl) >= g_level.load(std::memory_order_relaxed);
}

bool parse_level(std::string_view text, Level* out) {
  if (text == "debug") *out = Level::kDebug;
  else if (text == "info") *out = Level::kInfo;
  else if (text == "warning" || text == "warn") *out = Level::kWarning;
  else if (text == "error") *out = Level::kError;
  else return false;
  return true;
}

fmt::memory_buffer& begin_line(Level lvl) {
  ThreadLine& line = thread_line();
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  if (now.tv_sec != line.second) {
    std::tm tm{};
    gmtime_r(&now.tv_sec, &tm);
    std::strftime(line.stamp, sizeof line.stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    line.second = now.tv_sec;
  }
  line.buffer.clear();
  fmt::format_to(std::back_inserter(line.buffer), "{}.{:03d}Z mailgate[{}]: {}: ", line.stamp,
                 static_cast<int>(now.tv_nsec / 1000000), process_id(), level_name(lvl));
  return line.buffer;
}

void end_line(fmt::memory_buffer& line) {
  line.push_back('\n');
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  // A rare huge line (a plugin's long message) does not pin its memory in every thread.
  if (line.capacity() > 64 * 1024) line = fmt::memory_buffer();
}

void write(Level lvl, std::string_view message) {
  fmt::memory_buffer& line = begin_line(lvl);
  line.append(message);
  end_line(line);
}

}  // namespace mailgate::log
