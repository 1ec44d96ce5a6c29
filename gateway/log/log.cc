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

// Batched lines are written once this many bytes wait, whatever the event loop does.
constexpr size_t kBatchLimit = 16 * 1024;

// One thread's line buffer (when batching, the lines waiting before the one being
// formatted) and the "YYYY-MM-DDTHH:MM:SS" of the second it last logged in.
struct ThreadLine {
  fmt::memory_buffer buffer;
  std::time_t second = -1;
  char stamp[32] = {};
  bool batching = false;
  bool urgent = false;  // the line being formatted is a warning or an error
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
  if (!line.batching) line.buffer.clear();
  line.urgent = lvl >= Level::kWarning;
  fmt::format_to(std::back_inserter(line.buffer), "{}.{:03d}Z mailgate[{}]: {}: ", line.stamp,
                 static_cast<int>(now.tv_nsec / 1000000), process_id(), level_name(lvl));
  return line.buffer;
}

namespace {

void write_out(fmt::memory_buffer& buffer) {
  size_t done = 0;
  while (done < buffer.size()) {
    ssize_t n = ::write(STDERR_FILENO, buffer.data() + done, buffer.size() - done);
    if (n <= 0) break;  // nowhere to log to: the lines are dropped, never retried
    done += static_cast<size_t>(n);
  }
  buffer.clear();
  // A rare huge line (a plugin's long message) does not pin its memory in every thread.
  if (buffer.capacity() > 64 * 1024) buffer = fmt::memory_buffer();
}

}  // namespace

void end_line(fmt::memory_buffer& buffer) {
  buffer.push_back('\n');
  ThreadLine& line = thread_line();
  if (line.batching && !line.urgent && buffer.size() < kBatchLimit) return;
  write_out(buffer);
}

void flush() {
  ThreadLine& line = thread_line();
  if (line.buffer.size() > 0) write_out(line.buffer);
}

BatchScope::BatchScope() { thread_line().batching = true; }

BatchScope::~BatchScope() {
  flush();
  thread_line().batching = false;
}

void write(Level lvl, std::string_view message) {
  fmt::memory_buffer& line = begin_line(lvl);
  line.append(message);
  end_line(line);
}

}  // namespace mailgate::log
