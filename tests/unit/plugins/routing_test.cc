// routing_test.cc — unit tests of the built-in `routing` plugin
// (plugins/routing/) with the SDK's fake host: one, several and dropped
// destinations, no route, SRS of the sender for forwards to non-local domains
// only (never the null sender, never a local sender, once per transaction),
// reversal of bounces to SRS addresses (valid, tampered, expired, from a
// non-null sender), and settings errors.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#ifndef MAILGATE_ROUTING_PLUGIN
#error "MAILGATE_ROUTING_PLUGIN (the built routing.so) comes from plugins/routing/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::EnvelopeEdit;
using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

constexpr std::uint64_t kDayMs = 86'400'000;
constexpr char kSrsSettings[] =
    R"({"srs_domain": "fwd.example.com", "srs_secrets": ["test-secret-0123456789"]})";

class RoutingTest : public ::testing::Test {
 protected:
  RoutingTest() {
    host_.set_time_ms(20'000 * kDayMs + 3'600'000);  // day 20000: SRS timestamp "RA"
    host_.set_policy("local_domains", "example.com", "1");
    host_.set_policy("local_domains", "fwd.example.com", "1");
    host_.set_policy("local_domains", "inside.example.com", "1");
    host_.set_policy("routes", "info@example.com",
                     R"({"pattern":"info@example.com","action":"forward","destinations":)"
                     R"(["bob@inside.example.com"]})");
    host_.set_policy("routes", "team@example.com",
                     R"({"pattern":"team@example.com","action":"forward","destinations":)"
                     R"(["a@inside.example.com","b@outside.test","c@elsewhere.test"]})");
    host_.set_policy("routes", "trap@example.com",
                     R"({"pattern":"trap-*@example.com","action":"drop"})");
  }
  void use(std::string_view settings = kSrsSettings) {
    plugin_.emplace(LoadedPlugin::open(host_, MAILGATE_ROUTING_PLUGIN, settings));
  }

  FakeHost host_;
  std::optional<LoadedPlugin> plugin_;
};

TEST_F(RoutingTest, OneLocalDestinationRewritesOnlyTheRecipient) {
  use();
  FakeSession s(host_);
  run_mail(*plugin_, s, "alice@orig.test");
  EXPECT_EQ(run_rcpt(*plugin_, s, "info@example.com"), MG_CONTINUE);
  EXPECT_EQ(s.recipients(), std::vector<std::string>{"bob@inside.example.com"});
  EXPECT_EQ(s.sender(), "alice@orig.test");  // local destination: no SRS
  EXPECT_TRUE(
      s.logged("<info@example.com> -> <bob@inside.example.com> (route "
               "'info@example.com')"));
}

TEST_F(RoutingTest, SeveralDestinationsAndSrsForTheExternalOnes) {
  use();
  FakeSession s(host_);
  run_mail(*plugin_, s, "alice@orig.test");
  EXPECT_EQ(run_rcpt(*plugin_, s, "team@example.com"), MG_CONTINUE);
  EXPECT_EQ(s.recipients(), (std::vector<std::string>{"b@outside.test", "c@elsewhere.test",
                                                      "a@inside.example.com"}));
  EXPECT_EQ(s.sender(), "SRS0=qvjX=RA=orig.test=alice@fwd.example.com");
  // A second forwarded recipient does not rewrite the sender again.
  EXPECT_EQ(run_rcpt(*plugin_, s, "team@example.com"), MG_CONTINUE);
  std::size_t set_sender = 0;
  for (const EnvelopeEdit &e : s.envelope_edits())
    if (e.kind == EnvelopeEdit::Kind::kSetSender) ++set_sender;
  EXPECT_EQ(set_sender, 1u);
}

TEST_F(RoutingTest, NullAndLocalSendersAreNeverRewritten) {
  use();
  FakeSession s(host_);
  run_mail(*plugin_, s, "");
  EXPECT_EQ(run_rcpt(*plugin_, s, "team@example.com"), MG_CONTINUE);
  EXPECT_EQ(s.sender(), "");
  run_reset(*plugin_, s);
  run_mail(*plugin_, s, "staff@example.com");
  EXPECT_EQ(run_rcpt(*plugin_, s, "team@example.com"), MG_CONTINUE);
  EXPECT_EQ(s.sender(), "staff@example.com");
}

TEST_F(RoutingTest, WithoutSrsForwardsKeepTheSender) {
  use("{}");
  FakeSession s(host_);
  run_mail(*plugin_, s, "alice@orig.test");
  EXPECT_EQ(run_rcpt(*plugin_, s, "team@example.com"), MG_CONTINUE);
  EXPECT_EQ(s.recipients().size(), 3u);
  EXPECT_EQ(s.sender(), "alice@orig.test");
}

TEST_F(RoutingTest, DropAcceptsAndDiscardsTheRecipientOnly) {
  use();
  FakeSession s(host_);
  run_mail(*plugin_, s, "alice@orig.test");
  EXPECT_EQ(run_rcpt(*plugin_, s, "trap@example.com"), MG_CONTINUE);
  EXPECT_TRUE(s.recipients().empty());
  EXPECT_EQ(run_rcpt(*plugin_, s, "someone@example.com"),
            MG_CONTINUE);  // no route
  EXPECT_EQ(s.recipients(), std::vector<std::string>{"someone@example.com"});
  EXPECT_TRUE(s.logged("<trap@example.com> dropped (route 'trap-*@example.com')"));
}

TEST_F(RoutingTest, BounceToAValidSrsAddressGoesBackToTheSender) {
  use();
  FakeSession s(host_);
  run_mail(*plugin_, s, "alice@orig.test");
  run_rcpt(*plugin_, s, "team@example.com");
  const std::string srs = *s.sender();
  run_reset(*plugin_, s);
  host_.advance_time_ms(3 * kDayMs);
  run_mail(*plugin_, s, "");
  EXPECT_EQ(run_rcpt(*plugin_, s, srs), MG_CONTINUE);
  EXPECT_EQ(s.recipients(), std::vector<std::string>{"alice@orig.test"});
}

TEST_F(RoutingTest, BadSrsAddressesAreRefused) {
  use();
  FakeSession s(host_);
  run_mail(*plugin_, s, "");
  EXPECT_EQ(run_rcpt(*plugin_, s, "SRS0=AAAA=RA=orig.test=alice@fwd.example.com"), MG_REJECT);
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.1.1");
  EXPECT_EQ(s.reply()->text, "Invalid SRS address: bad SRS hash");
  // Expired: 22 days later with the default max age of 21.
  host_.advance_time_ms(22 * kDayMs);
  EXPECT_EQ(run_rcpt(*plugin_, s, "SRS0=qvjX=RA=orig.test=alice@fwd.example.com"), MG_REJECT);
  EXPECT_EQ(s.reply()->text, "Invalid SRS address: expired SRS address");
  EXPECT_EQ(run_rcpt(*plugin_, s, "SRS0=qvjX@fwd.example.com"), MG_REJECT);
  EXPECT_EQ(s.reply()->text, "Invalid SRS address: malformed SRS address");
  EXPECT_TRUE(s.recipients().empty());
  // At another domain an SRS-looking address is just an address (routes or
  // nothing).
  EXPECT_EQ(run_rcpt(*plugin_, s, "SRS0=AAAA=RA=orig.test=alice@example.com"), MG_CONTINUE);
}

TEST_F(RoutingTest, SrsAddressesTakeOnlyBouncesByDefault) {
  use();
  FakeSession s(host_);
  run_mail(*plugin_, s, "spammer@bad.test");
  EXPECT_EQ(run_rcpt(*plugin_, s, "SRS0=qvjX=RA=orig.test=alice@fwd.example.com"), MG_REJECT);
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  use(R"({"srs_domain": "fwd.example.com", "srs_secrets": ["test-secret-0123456789"],
          "srs_reverse_only_bounces": false})");
  FakeSession t(host_);
  run_mail(*plugin_, t, "someone@replying.test");
  EXPECT_EQ(run_rcpt(*plugin_, t, "SRS0=qvjX=RA=orig.test=alice@fwd.example.com"), MG_CONTINUE);
  EXPECT_EQ(t.recipients(), std::vector<std::string>{"alice@orig.test"});
}

TEST(RoutingSettings, ErrorsNameTheSetting) {
  FakeHost host;
  auto error = [&](std::string_view settings) {
    try {
      LoadedPlugin::open(host, MAILGATE_ROUTING_PLUGIN, settings);
    } catch (const std::runtime_error &e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(error(R"({"srs_domain": "fwd.example.com"})").find("\"srs_secrets\""),
            std::string::npos);
  EXPECT_NE(
      error(R"({"srs_domain": "fwd.example.com", "srs_secrets": ["short"]})").find("16 characters"),
      std::string::npos);
  EXPECT_NE(error(R"({"srs_secrets": ["test-secret-0123456789"]})").find("without \"srs_domain\""),
            std::string::npos);
  EXPECT_NE(error(R"({"srs_domain": "not a domain@", "srs_secrets": ["test-secret-0123456789"]})")
                .find("\"srs_domain\""),
            std::string::npos);
  EXPECT_NE(error(R"({"srs_max_age_days": "soon"})").find("\"srs_max_age_days\""),
            std::string::npos);
  EXPECT_NE(error(R"({"srs_secret": "x"})").find("unknown setting \"srs_secret\""),
            std::string::npos);
  EXPECT_EQ(error("{}"), "accepted");
}

}  // namespace
