// auth_throttle_test.cc — tests gateway/net/auth_throttle.cc with explicit times.
#include "net/auth_throttle.h"

#include <gtest/gtest.h>

namespace mailgate::net {
namespace {

using namespace std::chrono_literals;

TEST(AuthThrottle, BlocksAtTheLimitWithinTheWindow) {
  AuthThrottle t(3, 60s);
  const auto t0 = AuthThrottle::Clock::time_point{} + 1000s;
  EXPECT_FALSE(t.blocked("192.0.2.1", t0));
  t.failed("192.0.2.1", t0);
  t.failed("192.0.2.1", t0 + 1s);
  EXPECT_FALSE(t.blocked("192.0.2.1", t0 + 2s));
  t.failed("192.0.2.1", t0 + 2s);
  EXPECT_TRUE(t.blocked("192.0.2.1", t0 + 3s));
  EXPECT_FALSE(t.blocked("192.0.2.2", t0 + 3s));  // another client is not affected
  // The first failure leaves the window 60 s after it: one attempt is allowed again.
  EXPECT_TRUE(t.blocked("192.0.2.1", t0 + 59s));
  EXPECT_FALSE(t.blocked("192.0.2.1", t0 + 60s));
  t.failed("192.0.2.1", t0 + 60s);  // with the ones at +1 s and +2 s: three in the window
  EXPECT_TRUE(t.blocked("192.0.2.1", t0 + 60s));
  EXPECT_FALSE(t.blocked("192.0.2.1", t0 + 61s));
  EXPECT_FALSE(t.blocked("192.0.2.1", t0 + 200s));
  EXPECT_EQ(t.tracked(), 0u);  // expired entries are dropped
}

TEST(AuthThrottle, ZeroDisablesAndLimitsChangeLive) {
  AuthThrottle t(0, 60s);
  const auto t0 = AuthThrottle::Clock::time_point{} + 1000s;
  for (int i = 0; i < 10; ++i) t.failed("192.0.2.1", t0);
  EXPECT_FALSE(t.blocked("192.0.2.1", t0));
  t.set_limits(1, 10s);
  t.failed("192.0.2.1", t0);
  EXPECT_TRUE(t.blocked("192.0.2.1", t0 + 1s));
  EXPECT_FALSE(t.blocked("192.0.2.1", t0 + 10s));
}

}  // namespace
}  // namespace mailgate::net
