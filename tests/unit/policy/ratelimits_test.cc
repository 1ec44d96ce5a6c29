// ratelimits_test.cc — the ratelimits and ratelimit_exemptions tables in the policy snapshot
// (gateway/policy/ratelimits.*): the lookup values the ratelimit plugin reads, and validation
// errors that name the row (written through a connection that bypasses the CHECK constraints,
// as a careless hand edit would).
#include "policy/ratelimits.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "policy/snapshot.h"
#include "policy_test_util.h"

namespace mailgate::policy {
namespace {

using testing::make_db;
using testing::raw_connection;
using testing::sql;
using testing::TempDir;

TEST(RateLimits, EnabledRowsAsJsonAndExemptions) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  sql(db.get(),
      "INSERT INTO ratelimits (name, what, key, ipv4_prefix, rate, period, action) VALUES "
      "('per-24', 'messages', 'client_ip', 24, 30, 60, 'tempfail'),"
      "('auth-rcpt', 'recipients', 'auth_user', 32, 200, 3600, 'reject');"
      "INSERT INTO ratelimits (name, what, key, rate, period, enabled) VALUES "
      "('off', 'bytes', 'sender', 1000, 60, 0);"
      "INSERT INTO ratelimit_exemptions (kind, value) VALUES ('network', '10.1.0.0/16'),"
      "('sender', 'Boss@Example.com'), ('sender', 'partner.example'), ('auth_user', 'Ops');");
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap) << join_problems(snap.error());
  std::string value;
  ASSERT_TRUE((*snap)->lookup("ratelimits", "*", &value));
  nlohmann::json rows = nlohmann::json::parse(value);
  ASSERT_EQ(rows.size(), 2u);  // the disabled row is not there; ordered by name
  EXPECT_EQ(rows[0]["name"], "auth-rcpt");
  EXPECT_EQ(rows[0]["key"], nlohmann::json::array({"auth_user"}));
  EXPECT_EQ(rows[0]["action"], "reject");
  EXPECT_EQ(rows[1]["name"], "per-24");
  EXPECT_EQ(rows[1]["ipv4_prefix"], 24);
  EXPECT_EQ(rows[1]["ipv6_prefix"], 64);
  EXPECT_EQ(rows[1]["rate"], 30);
  EXPECT_EQ(rows[1]["period"], 60);
  EXPECT_EQ(rows[1]["burst"], 0);
  EXPECT_EQ((*snap)->ratelimits().rows().size(), 3u);

  EXPECT_FALSE((*snap)->lookup("ratelimits", "x", &value));
  ASSERT_TRUE((*snap)->lookup("ratelimit_exemptions:network", "10.1.2.3", &value));
  EXPECT_EQ(value, "10.1.0.0/16");
  EXPECT_FALSE((*snap)->lookup("ratelimit_exemptions:network", "10.2.0.1", &value));
  EXPECT_TRUE((*snap)->lookup("ratelimit_exemptions:sender", "boss@example.COM", &value));
  EXPECT_FALSE((*snap)->lookup("ratelimit_exemptions:sender", "other@example.com", &value));
  ASSERT_TRUE((*snap)->lookup("ratelimit_exemptions:sender", "anyone@Partner.Example", &value));
  EXPECT_EQ(value, "partner.example");
  EXPECT_TRUE((*snap)->lookup("ratelimit_exemptions:auth_user", "ops", &value));
  EXPECT_FALSE((*snap)->lookup("ratelimit_exemptions:auth_user", "dev", &value));
}

TEST(RateLimits, NoRowsNoAnswer) {
  TempDir dir;
  auto db = make_db(dir.file("p.db"));
  auto snap = read_snapshot(db.get(), "p.db");
  ASSERT_TRUE(snap);
  std::string value;
  EXPECT_FALSE((*snap)->lookup("ratelimits", "*", &value));
}

TEST(RateLimits, BadRowsAreRefusedNamingTheRow) {
  TempDir dir;
  make_db(dir.file("p.db"));
  auto raw = raw_connection(dir.file("p.db"));
  sql(raw.get(),
      "INSERT INTO ratelimits (name, what, key, rate, period) VALUES "
      "('a', 'messages', 'client_ip+recipient', 1, 1),"
      "('b', 'connections', 'sender', 1, 1),"
      "('c', 'letters', 'client_ip', 1, 1),"
      "('d', 'messages', 'client_ip+client_ip', 1, 1),"
      "('e', 'messages', 'ip', 1, 1),"
      "('f', 'messages', 'client_ip', 0, 1);"
      "INSERT INTO ratelimits (name, what, key, rate, period, action) VALUES "
      "('g', 'messages', 'client_ip', 1, 1, 'drop');"
      "INSERT INTO ratelimit_exemptions (kind, value) VALUES ('network', '10.0.0.1/8');");
  auto snap = read_snapshot(raw.get(), "p.db");
  ASSERT_FALSE(snap);
  const std::string all = join_problems(snap.error());
  EXPECT_NE(all.find("ratelimits row 'a': key 'client_ip+recipient' cannot count messages"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("ratelimits row 'b': key 'sender' cannot count connections"),
            std::string::npos);
  EXPECT_NE(all.find("ratelimits row 'c': what must be connections, messages, recipients or "
                     "bytes (got 'letters')"),
            std::string::npos);
  EXPECT_NE(all.find("ratelimits row 'd': key 'client_ip+client_ip' names 'client_ip' twice"),
            std::string::npos);
  EXPECT_NE(all.find("ratelimits row 'e': key 'ip' has an unknown part 'ip'"), std::string::npos);
  EXPECT_NE(all.find("ratelimits row 'f': rate must be between 1 and 1000000000 (got 0)"),
            std::string::npos);
  EXPECT_NE(all.find("ratelimits row 'g': action must be tempfail or reject (got 'drop')"),
            std::string::npos);
  EXPECT_NE(all.find("ratelimit_exemptions row 'network/10.0.0.1/8': "), std::string::npos);
}

TEST(RateLimits, KeyChecksAreSharedWithMailgatectl) {
  EXPECT_FALSE(check_ratelimit_key("recipients", "client_ip+sender+recipient_domain"));
  EXPECT_FALSE(check_ratelimit_key("bytes", "sender_domain+auth_user"));
  EXPECT_TRUE(check_ratelimit_key("bytes", "recipient"));
  EXPECT_TRUE(check_ratelimit_key("messages", ""));
  EXPECT_FALSE(check_ratelimit_exemption("sender", "example.com"));
  EXPECT_TRUE(check_ratelimit_exemption("sender", "not an address@"));
  EXPECT_TRUE(check_ratelimit_exemption("colour", "blue"));
}

}  // namespace
}  // namespace mailgate::policy
