// Tests for log/log's batching: inside a BatchScope, info lines wait until flush() and then
// leave in one piece, in order; a warning takes the waiting lines out with it at once;
// without a scope every line leaves at once.
#include "log/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace mailgate::log {
namespace {

// Points stderr at a pipe for the test's life; what() is what was written so far.
class CapturedStderr {
 public:
  CapturedStderr() {
    EXPECT_EQ(::pipe(fds_), 0);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fds_[1], STDERR_FILENO);
  }
  ~CapturedStderr() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string take() {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fds_[0], buf, sizeof buf);  // O_NONBLOCK below
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  void nonblocking() {
    int flags = ::fcntl(fds_[0], F_GETFL);
    ::fcntl(fds_[0], F_SETFL, flags | O_NONBLOCK);
  }

 private:
  int fds_[2] = {-1, -1};
  int saved_ = -1;
};

TEST(LogBatch, InfoWaitsForFlushWarningGoesAtOnce) {
  const Level before = level();
  set_level(Level::kInfo);
  CapturedStderr err;
  err.nonblocking();
  {
    BatchScope batch;
    MG_LOG_INFO("first {}", 1);
    MG_LOG_INFO("second {}", 2);
    EXPECT_EQ(err.take(), "");
    flush();
    std::string out = err.take();
    EXPECT_NE(out.find("info: first 1\n"), std::string::npos) << out;
    EXPECT_LT(out.find("first 1"), out.find("second 2")) << out;

    MG_LOG_INFO("third");
    MG_LOG_WARNING("fourth");
    out = err.take();
    EXPECT_NE(out.find("info: third\n"), std::string::npos) << out;
    EXPECT_NE(out.find("warning: fourth\n"), std::string::npos) << out;
    EXPECT_LT(out.find("third"), out.find("fourth")) << out;

    MG_LOG_INFO("fifth");
  }  // the scope's end flushes
  EXPECT_NE(err.take().find("info: fifth\n"), std::string::npos);
  MG_LOG_INFO("unbatched");
  EXPECT_NE(err.take().find("info: unbatched\n"), std::string::npos);
  set_level(before);
}

}  // namespace
}  // namespace mailgate::log
