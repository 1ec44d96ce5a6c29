// ratelimit_test.cc — unit tests of the built-in `ratelimit` plugin (plugins/ratelimit/) with
// the SDK's fake host and its fake clock: the built ratelimit.so is loaded as the gateway loads
// it, and the limit rows are the JSON the real policy snapshot makes from real ratelimits rows
// (so plugin and gateway agree on the format). Every limit is checked exactly: N pass, N+1 is
// refused with the retry hint, and after the window it passes again.
#include <gtest/gtest.h>

#include <atomic>
#include <mailgate/fake_host.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../policy/policy_test_util.h"
#include "policy/snapshot.h"

#ifndef MAILGATE_RATELIMIT_PLUGIN
#error \
    "MAILGATE_RATELIMIT_PLUGIN (the built ratelimit.so) comes from plugins/ratelimit/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

// The policy_lookup("ratelimits", "*") value the gateway gives for these INSERTed rows.
std::string limits_json(const std::string& inserts) {
  mailgate::policy::testing::TempDir dir;
  auto db = mailgate::policy::testing::make_db(dir.file("p.db"));
  mailgate::policy::testing::sql(db.get(), inserts);
  auto snap = mailgate::policy::read_snapshot(db.get(), "p.db");
  if (!snap) throw std::runtime_error(mailgate::policy::join_problems(snap.error()));
  std::string value;
  if (!(*snap)->lookup("ratelimits", "*", &value)) throw std::runtime_error("no enabled limits");
  return value;
}

std::string row(const std::string& name, const std::string& what, const std::string& key, int rate,
                int period, const std::string& action = "tempfail", int burst = 0, int v4 = 32,
                int v6 = 64) {
  return "INSERT INTO ratelimits (name, what, key, ipv4_prefix, ipv6_prefix, rate, period, "
         "burst, action) VALUES ('" +
         name + "', '" + what + "', '" + key + "', " + std::to_string(v4) + ", " +
         std::to_string(v6) + ", " + std::to_string(rate) + ", " + std::to_string(period) + ", " +
         std::to_string(burst) + ", '" + action + "');";
}

class RateLimitTest : public ::testing::Test {
 protected:
  void use(const std::string& inserts, std::string_view settings = "{}") {
    host_.set_policy("ratelimits", "*", limits_json(inserts));
    plugin_.emplace(LoadedPlugin::open(host_, MAILGATE_RATELIMIT_PLUGIN, settings));
  }
  LoadedPlugin& plugin() { return *plugin_; }

  // One message from `client` with sender and recipients; the first refusing stage's action.
  mg_action message(const std::string& client, const std::string& sender,
                    const std::vector<std::string>& rcpts, const std::string& auth = "") {
    FakeSession s(host_);
    s.set(MG_ITEM_CLIENT_ADDR, client);
    if (!auth.empty()) s.set(MG_ITEM_AUTH_USER, auth);
    mg_action a = run_helo(plugin(), s, "client.example");
    if (a != MG_CONTINUE) return a;
    a = run_mail(plugin(), s, sender);
    if (a != MG_CONTINUE) {
      last_reply_ = s.reply();
      return a;
    }
    for (const std::string& r : rcpts) {
      a = run_rcpt(plugin(), s, r);
      if (a != MG_CONTINUE) {
        last_reply_ = s.reply();
        return a;
      }
    }
    return MG_CONTINUE;
  }

  FakeHost host_;
  std::optional<LoadedPlugin> plugin_;
  std::optional<mailgate::fake::Reply> last_reply_;
};

TEST_F(RateLimitTest, ThirtyMessagesAMinutePerSlash24) {
  use(row("per-24", "messages", "client_ip", 30, 60, "tempfail", 0, 24));
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(message("192.0.2." + std::to_string(i + 1), "a@example.com", {"b@example.net"}),
              MG_CONTINUE)
        << "message " << i + 1;
  EXPECT_EQ(message("192.0.2.200", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  ASSERT_TRUE(last_reply_);
  EXPECT_EQ(last_reply_->code, 451);
  EXPECT_EQ(last_reply_->enhanced, "4.7.1");
  EXPECT_EQ(last_reply_->text, "Rate limit 'per-24' exceeded, try again in 2 seconds");
  EXPECT_TRUE(host_.logged("limit 'per-24' exceeded: messages by 192.0.2.0/24, 30 per 60s"));
  // Another /24 has its own count.
  EXPECT_EQ(message("192.0.3.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  // One more every 2 s; the whole burst after a quiet minute.
  host_.advance_time_ms(1999);
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  EXPECT_EQ(last_reply_->text, "Rate limit 'per-24' exceeded, try again in 1 second");
  host_.advance_time_ms(1);
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  host_.advance_time_ms(60'000);
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(message("192.0.2.99", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("192.0.2.99", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(RateLimitTest, Ipv6CountsPerPrefix) {
  use(row("v6", "messages", "client_ip", 2, 60, "tempfail", 0, 32, 64));
  EXPECT_EQ(message("2001:db8:1:2::1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("2001:db8:1:2:ffff::9", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("2001:db8:1:2::77", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  EXPECT_EQ(message("2001:db8:1:3::1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  // An IPv4 /32 limit: each address on its own; IPv4-mapped IPv6 is the same client.
  EXPECT_EQ(message("198.51.100.7", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("::ffff:198.51.100.7", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("198.51.100.7", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  EXPECT_EQ(message("198.51.100.8", "a@example.com", {"b@example.net"}), MG_CONTINUE);
}

TEST_F(RateLimitTest, ConnectionsAtConnect) {
  use(row("conn", "connections", "client_ip", 3, 10));
  for (int i = 0; i < 3; ++i) {
    FakeSession s(host_);
    EXPECT_EQ(run_connect(plugin(), s), MG_CONTINUE);
  }
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin(), s), MG_TEMPFAIL);
  EXPECT_EQ(s.reply()->text, "Rate limit 'conn' exceeded, try again in 4 seconds");
  host_.advance_time_ms(10'000);
  FakeSession again(host_);
  EXPECT_EQ(run_connect(plugin(), again), MG_CONTINUE);
}

// Each key kind: N pass, N+1 refused, a different value of the key passes, and after the window
// the same value passes again.
struct KeyCase {
  const char* key;
  const char* what;
  // Two events that share the key's value, then one that differs in it.
  std::vector<std::string> client, sender, rcpt, auth;
};

TEST_F(RateLimitTest, EveryKeyKindIsEnforcedExactly) {
  const KeyCase cases[] = {
      {"helo", "messages", {}, {}, {}, {}},
      {"sender", "messages", {}, {"x@a.example", "X@A.example", "y@a.example"}, {}, {}},
      {"sender_domain", "messages", {}, {"x@a.example", "y@A.example", "x@b.example"}, {}, {}},
      {"recipient", "recipients", {}, {}, {"r@c.example", "R@c.example", "s@c.example"}, {}},
      {"recipient_domain", "recipients", {}, {}, {"r@c.example", "s@C.example", "r@d.example"}, {}},
      {"auth_user", "recipients", {}, {}, {}, {"alice", "Alice", "bob"}},
      {"client_ip+sender",
       "messages",
       {"192.0.2.1", "192.0.2.1", "192.0.2.2"},
       {"x@a.example", "x@a.example", "x@a.example"},
       {},
       {}},
  };
  int n = 0;
  for (const KeyCase& c : cases) {
    SCOPED_TRACE(c.key);
    const std::string name = "k" + std::to_string(++n);
    host_.clear_policy();
    use(row(name, c.what, c.key, 2, 60));
    auto send = [&](size_t i) {
      FakeSession s(host_);
      s.set(MG_ITEM_CLIENT_ADDR, c.client.empty() ? "203.0.113.5" : c.client[i]);
      if (!c.auth.empty()) s.set(MG_ITEM_AUTH_USER, c.auth[i]);
      run_helo(
          plugin(), s,
          std::string(c.key) == "helo" ? (i < 2 ? "One.example" : "two.example") : "h.example");
      mg_action a = run_mail(plugin(), s, c.sender.empty() ? "s@e.example" : c.sender[i]);
      if (a != MG_CONTINUE) return a;
      return run_rcpt(plugin(), s, c.rcpt.empty() ? "t@f.example" : c.rcpt[i]);
    };
    EXPECT_EQ(send(0), MG_CONTINUE);
    EXPECT_EQ(send(1), MG_CONTINUE);
    EXPECT_EQ(send(0), MG_TEMPFAIL);
    EXPECT_EQ(send(1), MG_TEMPFAIL);
    EXPECT_EQ(send(2), MG_CONTINUE);
    host_.advance_time_ms(30'000);  // one interval: room for one more
    EXPECT_EQ(send(1), MG_CONTINUE);
    EXPECT_EQ(send(0), MG_TEMPFAIL);
    host_.advance_time_ms(60'000);
  }
}

TEST_F(RateLimitTest, AuthUserLimitSkipsUnauthenticatedSessions) {
  // "200 recipients an hour per authenticated user", refused for good past it.
  use(row("auth-rcpt", "recipients", "auth_user", 200, 3600, "reject"));
  std::vector<std::string> rcpts;
  for (int i = 0; i < 50; ++i) rcpts.push_back("r" + std::to_string(i) + "@example.net");
  for (int m = 0; m < 4; ++m)
    ASSERT_EQ(message("192.0.2.1", "alice@example.com", rcpts, "alice"), MG_CONTINUE);
  EXPECT_EQ(message("192.0.2.1", "alice@example.com", {"one-more@example.net"}, "alice"),
            MG_REJECT);
  EXPECT_EQ(last_reply_->code, 550);
  EXPECT_EQ(last_reply_->enhanced, "5.7.1");
  EXPECT_EQ(last_reply_->text, "Rate limit 'auth-rcpt' exceeded");
  EXPECT_EQ(message("192.0.2.1", "bob@example.com", {"x@example.net"}, "bob"), MG_CONTINUE);
  // Without authentication the limit does not apply (and nothing is counted).
  EXPECT_EQ(message("192.0.2.1", "alice@example.com", rcpts), MG_CONTINUE);
  host_.advance_time_ms(18'000);  // 3600 s / 200: one more recipient
  EXPECT_EQ(message("192.0.2.1", "alice@example.com", {"a@example.net"}, "alice"), MG_CONTINUE);
  EXPECT_EQ(message("192.0.2.1", "alice@example.com", {"b@example.net"}, "alice"), MG_REJECT);
}

TEST_F(RateLimitTest, BytesAtEndOfData) {
  use(row("bytes", "bytes", "sender_domain", 10'000, 60, "tempfail", 10'000));
  auto send = [&](uint64_t size) {
    FakeSession s(host_);
    run_mail(plugin(), s, "a@example.com");
    run_rcpt(plugin(), s, "b@example.net");
    s.set_message_size(size);
    return run_eom(plugin(), s);
  };
  EXPECT_EQ(send(6000), MG_CONTINUE);
  EXPECT_EQ(send(4000), MG_CONTINUE);
  EXPECT_EQ(send(1), MG_TEMPFAIL);
  host_.advance_time_ms(30'000);
  EXPECT_EQ(send(6000), MG_TEMPFAIL);  // half the room back: 5000 bytes
  EXPECT_EQ(send(5000), MG_CONTINUE);
}

TEST_F(RateLimitTest, TheTightestLimitDecidesAndARefusedEventSpendsNothing) {
  use(row("per-ip", "messages", "client_ip", 10, 60) +
      row("per-sender", "messages", "sender", 3, 60, "reject") +
      row("per-ip-slow", "messages", "client_ip", 4, 3600));
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  // per-sender refuses (reject beats tempfail); per-ip-slow still has room for one.
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_REJECT);
  EXPECT_TRUE(host_.logged("limit 'per-sender' exceeded"));
  // The refused message spent nothing: per-ip-slow still lets one more through.
  EXPECT_EQ(message("192.0.2.1", "other@example.com", {"b@example.net"}), MG_CONTINUE);
  // Now per-ip-slow (900 s until the next) is tighter than per-ip (room left).
  EXPECT_EQ(message("192.0.2.1", "third@example.com", {"b@example.net"}), MG_TEMPFAIL);
  EXPECT_EQ(last_reply_->text, "Rate limit 'per-ip-slow' exceeded, try again in 900 seconds");
  int spent = 0;
  for (const std::string& call : host_.rate_calls())
    if (call.find(" dry") == std::string::npos) ++spent;
  EXPECT_EQ(spent, 3 * 3 + 3);  // three limits for each of the 4 messages that passed
}

TEST_F(RateLimitTest, ExemptionsAreNeverCounted) {
  use(row("per-ip", "messages", "client_ip", 1, 60));
  host_.set_policy("ratelimit_exemptions:network", "10.0.0.5", "10.0.0.0/8");
  host_.set_policy("ratelimit_exemptions:sender", "boss@example.com", "boss@example.com");
  host_.set_policy("ratelimit_exemptions:auth_user", "ops", "ops");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(message("10.0.0.5", "a@example.com", {"b@example.net"}), MG_CONTINUE);
    EXPECT_EQ(message("192.0.2.9", "boss@example.com", {"b@example.net"}), MG_CONTINUE);
    EXPECT_EQ(message("192.0.2.9", "a@example.com", {"b@example.net"}, "ops"), MG_CONTINUE);
  }
  EXPECT_EQ(message("192.0.2.9", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("192.0.2.9", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
}

TEST_F(RateLimitTest, LongKeysAreHashedNotRefused) {
  use(row("long", "recipients", "sender+recipient", 1, 60));
  const std::string sender = std::string(64, 's') + "@" + std::string(180, 'a') + ".example";
  const std::string to = std::string(64, 'r') + "@" + std::string(180, 'b') + ".example";
  EXPECT_EQ(message("192.0.2.1", sender, {to}), MG_CONTINUE);
  EXPECT_EQ(message("192.0.2.1", sender, {to}), MG_TEMPFAIL);
  EXPECT_EQ(last_reply_->enhanced, "4.7.1");
  EXPECT_EQ(message("192.0.2.1", sender, {"x" + to}), MG_CONTINUE);
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(RateLimitTest, StoreUnavailableFollowsTheFailMode) {
  use(row("per-ip", "messages", "client_ip", 1, 60));
  host_.set_counters_available(false);
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  EXPECT_EQ(last_reply_->code, 451);
  EXPECT_EQ(last_reply_->enhanced, "4.3.0");
  host_.set_store_fail_mode(MG_STORE_FAIL_OPEN);
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_TRUE(host_.logged("store fail mode open"));
  // The plugin's own setting wins over the gateway's.
  plugin_.reset();
  use(row("per-ip", "messages", "client_ip", 1, 60), R"({"store_fail_mode": "tempfail"})");
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  host_.set_counters_available(true);
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
}

TEST_F(RateLimitTest, LimitsFollowThePolicyLive) {
  use(row("per-ip", "messages", "client_ip", 1, 60));
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_TEMPFAIL);
  host_.set_policy("ratelimits", "*", limits_json(row("per-ip", "messages", "client_ip", 5, 60)));
  EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
  host_.clear_policy();  // no limits at all
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(message("192.0.2.1", "a@example.com", {"b@example.net"}), MG_CONTINUE);
}

TEST_F(RateLimitTest, ConcurrentSessionsShareOneLimitExactly) {
  use(row("per-24", "messages", "client_ip", 100, 3600, "tempfail", 0, 24));
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        FakeSession s(host_);
        s.set(MG_ITEM_CLIENT_ADDR, "192.0.2." + std::to_string(t * 50 + i + 1));
        if (run_mail(plugin(), s, "a@example.com") == MG_CONTINUE) ++passed;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(passed.load(), 100);
  EXPECT_TRUE(host_.violations().empty());
}

TEST(RateLimitSettings, BadSettingsNameTheKey) {
  FakeHost host;
  auto error = [&](std::string_view settings) {
    try {
      LoadedPlugin::open(host, MAILGATE_RATELIMIT_PLUGIN, settings);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(R"({"store_fail_mode": "sometimes"})").find("store_fail_mode"),
            std::string::npos);
  EXPECT_NE(error(R"({"colour": 1})").find("unknown setting \"colour\""), std::string::npos);
  EXPECT_EQ(error("{}"), "");
}

}  // namespace
