// Tests for net/socket_watchdog: a passed deadline cancels the socket's pending read and says
// so; a deadline moved later by re-arming is honoured (the lazy timer re-arms itself); a
// deadline moved earlier takes effect; disarming or stopping means no timeout.
#include "net/socket_watchdog.h"

#include <chrono>
#include <functional>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <gtest/gtest.h>

namespace mailgate::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A connected pair on loopback: `client` reads, nobody ever writes.
struct Pair {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  asio::ip::tcp::socket client{io};
  asio::ip::tcp::socket server{io};
  Pair() {
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

// Starts a read on p.client; returns when it ends (or after `limit`), with how long it took
// and the error it ended with.
struct ReadResult {
  Clock::duration took{};
  std::error_code ec;
  bool ended = false;
};
ReadResult read_until_done(Pair& p, std::chrono::milliseconds limit,
                           const std::function<void()>& during = {}) {
  ReadResult result;
  char byte = 0;
  const auto started = Clock::now();
  p.client.async_read_some(asio::buffer(&byte, 1), [&](std::error_code ec, size_t) {
    result.ec = ec;
    result.ended = true;
    result.took = Clock::now() - started;
  });
  if (during) during();
  p.io.run_for(limit);
  return result;
}

TEST(SocketWatchdog, PassedDeadlineCancelsTheRead) {
  Pair p;
  SocketWatchdog watchdog(p.client);
  watchdog.arm_after(100ms);
  ReadResult r = read_until_done(p, 3s);
  ASSERT_TRUE(r.ended);
  EXPECT_EQ(r.ec, asio::error::operation_aborted);
  EXPECT_TRUE(watchdog.timed_out());
  EXPECT_GE(r.took, 100ms);
  EXPECT_LT(r.took, 2s);
}

TEST(SocketWatchdog, LaterDeadlineIsHonouredByTheLazyTimer) {
  Pair p;
  SocketWatchdog watchdog(p.client);
  watchdog.arm_after(100ms);
  watchdog.disarm();
  watchdog.arm_after(400ms);  // the wait pending for 100 ms re-arms itself when it fires
  ReadResult r = read_until_done(p, 3s);
  ASSERT_TRUE(r.ended);
  EXPECT_TRUE(watchdog.timed_out());
  EXPECT_GE(r.took, 400ms);
}

TEST(SocketWatchdog, EarlierDeadlineTakesEffect) {
  Pair p;
  SocketWatchdog watchdog(p.client);
  watchdog.arm_after(10s);
  watchdog.disarm();
  watchdog.arm_after(100ms);
  ReadResult r = read_until_done(p, 3s);
  ASSERT_TRUE(r.ended);
  EXPECT_TRUE(watchdog.timed_out());
  EXPECT_LT(r.took, 2s);
}

TEST(SocketWatchdog, DisarmedOrStoppedMeansNoTimeout) {
  for (const bool stop : {false, true}) {
    Pair p;
    SocketWatchdog watchdog(p.client);
    watchdog.arm_after(50ms);
    if (stop) {
      watchdog.stop();
    } else {
      watchdog.disarm();
    }
    ReadResult r = read_until_done(p, 400ms);
    EXPECT_FALSE(r.ended) << (stop ? "stopped" : "disarmed");
    EXPECT_FALSE(watchdog.timed_out());
  }
}

TEST(SocketWatchdog, ReArmingClearsAnEarlierTimeout) {
  Pair p;
  SocketWatchdog watchdog(p.client);
  watchdog.arm_after(50ms);
  ReadResult r = read_until_done(p, 3s);
  ASSERT_TRUE(watchdog.timed_out());
  p.io.restart();
  watchdog.arm_after(10s);
  EXPECT_FALSE(watchdog.timed_out());
  r = read_until_done(p, 300ms, [&] { asio::write(p.server, asio::buffer("x", 1)); });
  ASSERT_TRUE(r.ended);
  EXPECT_FALSE(r.ec) << r.ec.message();
  watchdog.disarm();
  EXPECT_FALSE(watchdog.timed_out());
}

}  // namespace
}  // namespace mailgate::net
