// greylist_test.cc — unit tests of the built-in `greylist` plugin (plugins/greylist/) with the
// SDK's fake host and its fake clock: the full cycle of a triplet (refused, refused again too
// early, passed after the delay, remembered, forgotten after the expiry), the retry window,
// the client network (/24, /64), automatic passing after N successful retries, every exemption,
// the store failing, and settings errors.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#ifndef MAILGATE_GREYLIST_PLUGIN
#error "MAILGATE_GREYLIST_PLUGIN (the built greylist.so) comes from plugins/greylist/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

class GreylistTest : public ::testing::Test {
 protected:
  void use(std::string_view settings) {
    plugin_.emplace(LoadedPlugin::open(host_, MAILGATE_GREYLIST_PLUGIN, settings));
  }
  mg_action rcpt(const std::string& client, const std::string& sender, const std::string& to,
                 const std::string& auth = "") {
    FakeSession s(host_);
    s.set(MG_ITEM_CLIENT_ADDR, client);
    if (!auth.empty()) s.set(MG_ITEM_AUTH_USER, auth);
    run_mail(*plugin_, s, sender);
    mg_action a = run_rcpt(*plugin_, s, to);
    reply_ = s.reply();
    return a;
  }

  FakeHost host_;
  std::optional<LoadedPlugin> plugin_;
  std::optional<mailgate::fake::Reply> reply_;
};

TEST_F(GreylistTest, FullCycle) {
  use(R"({"delay": 300, "retry_window": 3600, "expiry": 86400, "auto_pass_after": 0})");
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  ASSERT_TRUE(reply_);
  EXPECT_EQ(reply_->code, 451);
  EXPECT_EQ(reply_->enhanced, "4.7.1");
  EXPECT_EQ(reply_->text, "Greylisted, please try again in 300 seconds");
  // Too early: told how long is left.
  host_.advance_time_ms(120'000);
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(reply_->text, "Greylisted, please try again in 180 seconds");
  host_.advance_time_ms(179'001);
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(reply_->text, "Greylisted, please try again in 1 second");
  host_.advance_time_ms(999);
  // Retried after the delay, from another address of the same /24: passes.
  EXPECT_EQ(rcpt("192.0.2.77", "A@Example.com", "b@example.net"), MG_CONTINUE);
  EXPECT_TRUE(
      host_.logged("greylist passed 192.0.2.0/24 a@example.com -> b@example.net after 300s"));
  // Remembered: later messages pass at once, and each pass renews the expiry.
  host_.advance_time_ms(80'000'000);
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "b@example.net"), MG_CONTINUE);
  host_.advance_time_ms(80'000'000);
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "b@example.net"), MG_CONTINUE);
  // Unused for longer than the expiry: greylisted again.
  host_.advance_time_ms(86'400'000);
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  // Each part of the triplet counts: another sender, recipient or network is a new triplet.
  host_.advance_time_ms(400'000);
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("192.0.2.10", "c@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(rcpt("192.0.2.10", "a@example.com", "d@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(rcpt("192.0.3.10", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(rcpt("192.0.2.10", "", "b@example.net"), MG_TEMPFAIL);  // the null sender
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(GreylistTest, ARetryAfterTheRetryWindowStartsOver) {
  use(R"({"delay": 60, "retry_window": 600})");
  EXPECT_EQ(rcpt("2001:db8:5:6::1", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  host_.advance_time_ms(600'000);
  EXPECT_EQ(rcpt("2001:db8:5:6::2", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(reply_->text, "Greylisted, please try again in 60 seconds");
  host_.advance_time_ms(60'000);
  // Same /64: passes.
  EXPECT_EQ(rcpt("2001:db8:5:6:ffff::3", "a@example.com", "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("2001:db8:5:7::1", "a@example.com", "b@example.net"), MG_TEMPFAIL);
}

TEST_F(GreylistTest, ClientsThatRetriedNTimesPassAutomatically) {
  use(R"({"delay": 60, "retry_window": 600, "auto_pass_after": 2, "expiry": 3600})");
  for (int i = 0; i < 2; ++i) {
    const std::string to = "r" + std::to_string(i) + "@example.net";
    EXPECT_EQ(rcpt("198.51.100.1", "a@example.com", to), MG_TEMPFAIL);
    host_.advance_time_ms(60'000);
    EXPECT_EQ(rcpt("198.51.100.1", "a@example.com", to), MG_CONTINUE);
  }
  EXPECT_TRUE(host_.logged("client network 198.51.100.0/24 passes automatically"));
  EXPECT_EQ(rcpt("198.51.100.200", "new@example.org", "new@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("198.51.101.1", "new@example.org", "new@example.net"), MG_TEMPFAIL);
  host_.advance_time_ms(3'600'000);
  EXPECT_EQ(rcpt("198.51.100.200", "other@example.org", "new@example.net"), MG_TEMPFAIL);
}

TEST_F(GreylistTest, Exemptions) {
  use(R"({"exempt_networks": ["203.0.113.0/24", "2001:db8:ff::/48"],
          "exempt_senders": ["list@lists.example", "partner.example"],
          "exempt_recipient_domains": ["Postmaster.example"]})");
  host_.set_policy("relay_networks", "10.0.0.1", "10.0.0.0/8");
  EXPECT_EQ(rcpt("203.0.113.9", "a@example.com", "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("2001:db8:ff:1::1", "a@example.com", "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("192.0.2.1", "list@lists.example", "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("192.0.2.1", "anyone@partner.example", "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("192.0.2.1", "a@example.com", "abuse@postmaster.example"), MG_CONTINUE);
  EXPECT_EQ(rcpt("10.0.0.1", "a@example.com", "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(rcpt("192.0.2.1", "a@example.com", "b@example.net", "alice"), MG_CONTINUE);
  EXPECT_EQ(rcpt("192.0.2.1", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(rcpt("192.0.2.1", "other@lists.example", "b@example.net"), MG_TEMPFAIL);
}

TEST_F(GreylistTest, RelayAndAuthenticatedCanBeGreylistedWhenAsked) {
  use(R"({"skip_relay_networks": false, "skip_authenticated": false})");
  host_.set_policy("relay_networks", "10.0.0.1", "10.0.0.0/8");
  EXPECT_EQ(rcpt("10.0.0.1", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(rcpt("192.0.2.1", "a@example.com", "b@example.net", "alice"), MG_TEMPFAIL);
}

TEST_F(GreylistTest, LongAddressesStillMakeUsableKeys) {
  use(R"({"delay": 60})");
  const std::string sender = std::string(64, 's') + "@" + std::string(180, 'a') + ".example";
  const std::string to = std::string(64, 'r') + "@" + std::string(180, 'b') + ".example";
  EXPECT_EQ(rcpt("192.0.2.1", sender, to), MG_TEMPFAIL);
  EXPECT_EQ(reply_->enhanced, "4.7.1");  // greylisted, not "store unavailable" (4.3.0)
  host_.advance_time_ms(60'000);
  EXPECT_EQ(rcpt("192.0.2.1", sender, to), MG_CONTINUE);
  EXPECT_EQ(rcpt("192.0.2.1", sender, "x" + to), MG_TEMPFAIL);
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(GreylistTest, StoreUnavailable) {
  use("{}");
  host_.set_counters_available(false);
  EXPECT_EQ(rcpt("192.0.2.1", "a@example.com", "b@example.net"), MG_TEMPFAIL);
  EXPECT_EQ(reply_->enhanced, "4.3.0");
  host_.set_store_fail_mode(MG_STORE_FAIL_OPEN);
  EXPECT_EQ(rcpt("192.0.2.1", "a@example.com", "b@example.net"), MG_CONTINUE);
  plugin_.reset();
  use(R"({"store_fail_mode": "tempfail"})");
  EXPECT_EQ(rcpt("192.0.2.1", "a@example.com", "b@example.net"), MG_TEMPFAIL);
}

TEST(GreylistSettings, ErrorsNameTheSetting) {
  FakeHost host;
  auto error = [&](std::string_view settings) {
    try {
      LoadedPlugin::open(host, MAILGATE_GREYLIST_PLUGIN, settings);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error(R"({"delay": -1})").find("\"delay\""), std::string::npos);
  EXPECT_NE(error(R"({"delay": 600, "retry_window": 300})").find("retry_window"),
            std::string::npos);
  EXPECT_NE(error(R"({"exempt_networks": ["10.0.0.0/33"]})").find("exempt_networks"),
            std::string::npos);
  EXPECT_NE(error(R"({"exempt_senders": "x"})").find("must be an array"), std::string::npos);
  EXPECT_NE(error(R"({"ipv4_prefix": 40})").find("ipv4_prefix"), std::string::npos);
  EXPECT_NE(error(R"({"nonsense": true})").find("unknown setting"), std::string::npos);
  EXPECT_EQ(error("{}"), "");
}

}  // namespace
