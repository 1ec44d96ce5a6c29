// access_test.cc — unit tests of the built-in `access` plugin (plugins/access/) with the SDK's
// fake host: the built access.so is loaded with dlopen() as the gateway loads it, the policy
// tables are fake-host rows (exact keys; the real snapshot's matching is tested in
// tests/unit/policy/), and the rule values come from the real AccessRule::summary(), so the
// plugin and the gateway agree on the format.
#include <gtest/gtest.h>

#include <mailgate/fake_host.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "policy/snapshot.h"

#ifndef MAILGATE_ACCESS_PLUGIN
#error "MAILGATE_ACCESS_PLUGIN (the built access.so) comes from plugins/access/CMakeLists.txt"
#endif

namespace {

using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;
using mailgate::policy::AccessAction;
using mailgate::policy::AccessRule;

LoadedPlugin load(FakeHost& host, std::string_view settings = "{}") {
  return LoadedPlugin::open(host, MAILGATE_ACCESS_PLUGIN, settings);
}

// The policy_lookup value of an access rule, exactly as the gateway's snapshot makes it.
std::string rule(AccessAction action, std::optional<int> code = std::nullopt,
                 std::optional<std::string> enhanced = std::nullopt,
                 std::optional<std::string> text = std::nullopt) {
  AccessRule r;
  r.action = action;
  r.code = code;
  r.enhanced = std::move(enhanced);
  r.text = std::move(text);
  return r.summary();
}

const std::string kAllow = rule(AccessAction::kAllow);

std::string create_error(std::string_view settings) {
  FakeHost host;
  try {
    load(host, settings);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

void expect_reply(const FakeSession& s, int code, const std::string& enhanced,
                  const std::string& text) {
  ASSERT_TRUE(s.reply().has_value());
  EXPECT_EQ(s.reply()->code, code);
  EXPECT_EQ(s.reply()->enhanced, enhanced);
  EXPECT_EQ(s.reply()->text, text);
}

// A fresh host with one local domain, and a session from a client that may not relay.
class AccessTest : public ::testing::Test {
 protected:
  AccessTest() { host.set_policy("local_domains", "example.test", "1"); }
  FakeHost host;
};

// --- the descriptor and the settings ------------------------------------------------------

TEST_F(AccessTest, DescriptorIsNonBlockingWithTheFourEnvelopeStagesOnly) {
  LoadedPlugin p = load(host);
  const mg_plugin& d = p.descriptor();
  EXPECT_EQ(p.name(), "access");
  EXPECT_EQ(d.flags, MG_PLUGIN_NONBLOCKING);
  EXPECT_NE(d.on_connect, nullptr);
  EXPECT_NE(d.on_helo, nullptr);
  EXPECT_NE(d.on_mail, nullptr);
  EXPECT_NE(d.on_rcpt, nullptr);
  EXPECT_EQ(d.on_data, nullptr);
  EXPECT_EQ(d.on_header, nullptr);
  EXPECT_EQ(d.on_eoh, nullptr);
  EXPECT_EQ(d.on_body, nullptr);
  EXPECT_EQ(d.on_eom, nullptr);
  EXPECT_EQ(d.on_reset, nullptr);
  EXPECT_EQ(d.on_close, nullptr);
}

TEST(AccessSettings, AcceptsEmptyAndRelayCheck) {
  EXPECT_EQ(create_error("{}"), "");
  EXPECT_EQ(create_error(R"({"relay_check": true})"), "");
  EXPECT_EQ(create_error(R"({"relay_check": false})"), "");
}

TEST(AccessSettings, RefusesUnknownKeysWrongTypesAndBadJson) {
  EXPECT_NE(create_error(R"({"relay_chek": true})").find("unknown setting \"relay_chek\""),
            std::string::npos);
  EXPECT_NE(create_error(R"({"relay_check": "yes"})")
                .find("setting \"relay_check\" must be true or false"),
            std::string::npos);
  EXPECT_NE(create_error(R"([true])").find("settings must be a JSON object"), std::string::npos);
  EXPECT_NE(create_error(R"({"relay_check": )").find("settings are not valid JSON"),
            std::string::npos);
}

TEST(AccessSettings, RelayCheckOffIsLoggedAsAWarning) {
  FakeHost host;
  LoadedPlugin p = load(host, R"({"relay_check": false})");
  EXPECT_TRUE(host.logged("relay_check is off"));
}

// --- CONNECT: access:client ---------------------------------------------------------------

TEST_F(AccessTest, ClientWithoutRuleContinues) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_connect(p, s), MG_CONTINUE);
  EXPECT_FALSE(s.reply().has_value());
}

TEST_F(AccessTest, ClientDenyRejectsWithTheRulesReply) {
  host.set_policy("access:client", "192.0.2.1",
                  rule(AccessAction::kDeny, 554, "5.7.1", "No mail from your network"));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_connect(p, s), MG_REJECT);
  expect_reply(s, 554, "5.7.1", "No mail from your network");
}

TEST_F(AccessTest, ClientDenyWithDefaultsGetsTheSnapshotsDefaultReply) {
  host.set_policy("access:client", "192.0.2.1", rule(AccessAction::kDeny));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_connect(p, s), MG_REJECT);
  expect_reply(s, 554, "5.7.1", "Access denied");
}

TEST_F(AccessTest, ClientTempfailAndAllow) {
  host.set_policy("access:client", "192.0.2.1", rule(AccessAction::kTempfail));
  host.set_policy("access:client", "192.0.2.2", kAllow);
  LoadedPlugin p = load(host);
  FakeSession a(host);
  EXPECT_EQ(run_connect(p, a), MG_TEMPFAIL);
  expect_reply(a, 450, "4.7.1", "Try again later");
  FakeSession b(host);
  b.set(MG_ITEM_CLIENT_ADDR, "192.0.2.2");
  EXPECT_EQ(run_connect(p, b), MG_ACCEPT);
  EXPECT_FALSE(b.reply().has_value());
}

TEST_F(AccessTest, IPv6ClientIsLookedUpByItsAddress) {
  host.set_policy("access:client", "2001:db8::25",
                  rule(AccessAction::kDeny, 550, "5.7.1", "IPv6 spammer"));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  s.set(MG_ITEM_CLIENT_ADDR, "2001:db8::25");
  EXPECT_EQ(run_connect(p, s), MG_REJECT);
  expect_reply(s, 550, "5.7.1", "IPv6 spammer");
}

TEST_F(AccessTest, UnknownClientAddressContinues) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  s.unset(MG_ITEM_CLIENT_ADDR);
  EXPECT_EQ(run_connect(p, s), MG_CONTINUE);
}

// --- HELO: access:helo ----------------------------------------------------------------------

TEST_F(AccessTest, HeloRules) {
  host.set_policy("access:helo", "localhost",
                  rule(AccessAction::kDeny, 550, "5.7.1", "You are not me"));
  host.set_policy("access:helo", "slow.example",
                  rule(AccessAction::kTempfail, 421, "4.7.0", "Come back later"));
  host.set_policy("access:helo", "friend.example", kAllow);
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_helo(p, s, "localhost"), MG_REJECT);
  expect_reply(s, 550, "5.7.1", "You are not me");
  EXPECT_EQ(run_helo(p, s, "slow.example"), MG_TEMPFAIL);
  expect_reply(s, 421, "4.7.0", "Come back later");
  EXPECT_EQ(run_helo(p, s, "friend.example"), MG_ACCEPT);
  EXPECT_EQ(run_helo(p, s, "stranger.example"), MG_CONTINUE);
}

// --- MAIL: access:sender, then access:sender_domain -------------------------------------------

TEST_F(AccessTest, SenderAddressRule) {
  host.set_policy("access:sender", "spammer@bad.example",
                  rule(AccessAction::kDeny, 553, "5.7.1", "Sender address rejected"));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, "spammer@bad.example"), MG_REJECT);
  expect_reply(s, 553, "5.7.1", "Sender address rejected");
  EXPECT_EQ(run_mail(p, s, "someone-else@bad.example"), MG_CONTINUE);
}

TEST_F(AccessTest, SenderDomainRule) {
  host.set_policy("access:sender_domain", "bad.example",
                  rule(AccessAction::kTempfail, 451, "4.7.1", "Greylisted"));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, "anyone@bad.example"), MG_TEMPFAIL);
  expect_reply(s, 451, "4.7.1", "Greylisted");
}

TEST_F(AccessTest, SenderAddressRuleComesBeforeItsDomainRule) {
  host.set_policy("access:sender", "boss@bad.example", kAllow);
  host.set_policy("access:sender_domain", "bad.example", rule(AccessAction::kDeny));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, "boss@bad.example"), MG_ACCEPT);
  EXPECT_EQ(run_mail(p, s, "minion@bad.example"), MG_REJECT);
  // ...and a deny of the address wins over an allow of its domain.
  host.set_policy("access:sender", "boss@bad.example", rule(AccessAction::kDeny));
  host.set_policy("access:sender_domain", "bad.example", kAllow);
  EXPECT_EQ(run_mail(p, s, "boss@bad.example"), MG_REJECT);
  EXPECT_EQ(run_mail(p, s, "minion@bad.example"), MG_ACCEPT);
}

TEST_F(AccessTest, NullSenderIsNeverLookedUp) {
  host.set_policy("access:sender", "", rule(AccessAction::kDeny));
  host.set_policy("access:sender_domain", "", rule(AccessAction::kDeny));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, ""), MG_CONTINUE);
}

TEST_F(AccessTest, SenderDomainWithTrailingDotMatchesTheDomain) {
  host.set_policy("access:sender_domain", "bad.example", rule(AccessAction::kDeny));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, "x@bad.example."), MG_REJECT);
}

// --- RCPT: access:recipient, access:recipient_domain, anti-relay ------------------------------

TEST_F(AccessTest, LocalRecipientContinues) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "sender@elsewhere.example");
  EXPECT_EQ(run_rcpt(p, s, "user@example.test"), MG_CONTINUE);
  EXPECT_FALSE(s.reply().has_value());
  EXPECT_EQ(s.recipients(), std::vector<std::string>{"user@example.test"});
}

TEST_F(AccessTest, RelayIsDeniedWithPostfixsWording) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "sender@example.test");
  EXPECT_EQ(run_rcpt(p, s, "someone@outside.example"), MG_REJECT);
  expect_reply(s, 554, "5.7.1", "<someone@outside.example>: Relay access denied");
  EXPECT_TRUE(s.recipients().empty());
  EXPECT_TRUE(host.logged("relay access denied: <someone@outside.example> from client 192.0.2.1"));
}

TEST_F(AccessTest, SubdomainOfALocalDomainIsNotLocal) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "sender@example.test");
  EXPECT_EQ(run_rcpt(p, s, "user@sub.example.test"), MG_REJECT);
}

TEST_F(AccessTest, RelayNetworkClientMayRelay) {
  host.set_policy("relay_networks", "192.0.2.1", "192.0.2.0/24");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "sender@example.test");
  EXPECT_EQ(run_rcpt(p, s, "someone@outside.example"), MG_CONTINUE);
}

TEST_F(AccessTest, IPv6RelayNetworkClientMayRelayOthersMayNot) {
  host.set_policy("relay_networks", "2001:db8::7", "2001:db8::/32");
  LoadedPlugin p = load(host);
  FakeSession inside(host);
  inside.set(MG_ITEM_CLIENT_ADDR, "2001:db8::7");
  run_mail(p, inside, "a@example.test");
  EXPECT_EQ(run_rcpt(p, inside, "someone@outside.example"), MG_CONTINUE);
  FakeSession outside(host);
  outside.set(MG_ITEM_CLIENT_ADDR, "2001:db9::7");
  run_mail(p, outside, "a@example.test");
  EXPECT_EQ(run_rcpt(p, outside, "someone@outside.example"), MG_REJECT);
  expect_reply(outside, 554, "5.7.1", "<someone@outside.example>: Relay access denied");
}

TEST_F(AccessTest, AuthenticatedSessionMayRelay) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  s.set(MG_ITEM_AUTH_USER, "alice");
  run_mail(p, s, "alice@example.test");
  EXPECT_EQ(run_rcpt(p, s, "someone@outside.example"), MG_CONTINUE);
  // An empty user name is not an authentication.
  FakeSession empty(host);
  empty.set(MG_ITEM_AUTH_USER, "");
  run_mail(p, empty, "alice@example.test");
  EXPECT_EQ(run_rcpt(p, empty, "someone@outside.example"), MG_REJECT);
}

TEST_F(AccessTest, ClientAllowDoesNotOpenTheRelay) {
  host.set_policy("access:client", "192.0.2.1", kAllow);
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_connect(p, s), MG_ACCEPT);
  run_mail(p, s, "a@example.test");
  EXPECT_EQ(run_rcpt(p, s, "someone@outside.example"), MG_REJECT);
}

TEST_F(AccessTest, SenderAllowDoesNotOpenTheRelay) {
  host.set_policy("access:sender", "friend@outside.example", kAllow);
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, "friend@outside.example"), MG_ACCEPT);
  EXPECT_EQ(run_rcpt(p, s, "someone@outside.example"), MG_REJECT);
}

TEST_F(AccessTest, AllowedRecipientOrRecipientDomainSkipsTheRelayCheck) {
  host.set_policy("access:recipient", "postmaster@partner.example", kAllow);
  host.set_policy("access:recipient_domain", "backup-mx.example", kAllow);
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "a@elsewhere.example");
  EXPECT_EQ(run_rcpt(p, s, "postmaster@partner.example"), MG_ACCEPT);
  EXPECT_EQ(run_rcpt(p, s, "anyone@backup-mx.example"), MG_ACCEPT);
  EXPECT_EQ(run_rcpt(p, s, "someone@partner.example"), MG_REJECT);
}

TEST_F(AccessTest, RecipientDenyAppliesToLocalRecipients) {
  host.set_policy("access:recipient", "former@example.test",
                  rule(AccessAction::kDeny, 550, "5.1.1", "User has left"));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "a@elsewhere.example");
  EXPECT_EQ(run_rcpt(p, s, "former@example.test"), MG_REJECT);
  expect_reply(s, 550, "5.1.1", "User has left");
  EXPECT_EQ(run_rcpt(p, s, "user@example.test"), MG_CONTINUE);
}

TEST_F(AccessTest, RecipientAddressRuleComesBeforeItsDomainRule) {
  host.set_policy("access:recipient", "abuse@example.test", kAllow);
  host.set_policy("access:recipient_domain", "example.test",
                  rule(AccessAction::kTempfail, 451, "4.3.2", "Domain in maintenance"));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "a@elsewhere.example");
  EXPECT_EQ(run_rcpt(p, s, "abuse@example.test"), MG_ACCEPT);
  EXPECT_EQ(run_rcpt(p, s, "user@example.test"), MG_TEMPFAIL);
  expect_reply(s, 451, "4.3.2", "Domain in maintenance");
}

TEST_F(AccessTest, RecipientDenyComesBeforeTheRelayCheckAndRelayClientsToo) {
  host.set_policy("relay_networks", "192.0.2.1", "192.0.2.0/24");
  host.set_policy("access:recipient_domain", "competitor.example",
                  rule(AccessAction::kDeny, 550, "5.7.1", "Not to them"));
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "a@example.test");
  EXPECT_EQ(run_rcpt(p, s, "ceo@competitor.example"), MG_REJECT);
  expect_reply(s, 550, "5.7.1", "Not to them");
}

TEST_F(AccessTest, SenderSpecifiedRoutingIsNotALocalDestination) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "a@elsewhere.example");
  EXPECT_EQ(run_rcpt(p, s, "victim%outside.example@example.test"), MG_REJECT);
  EXPECT_EQ(run_rcpt(p, s, "outside.example!victim@example.test"), MG_REJECT);
  EXPECT_EQ(run_rcpt(p, s, "\"victim@outside.example\"@example.test"), MG_REJECT);
  expect_reply(s, 554, "5.7.1", "<\"victim@outside.example\"@example.test>: Relay access denied");
  // ...but a relay client may route.
  host.set_policy("relay_networks", "192.0.2.1", "192.0.2.0/24");
  EXPECT_EQ(run_rcpt(p, s, "victim%outside.example@example.test"), MG_CONTINUE);
}

TEST_F(AccessTest, TrailingDotAndPostmaster) {
  LoadedPlugin p = load(host);
  FakeSession s(host);
  run_mail(p, s, "a@elsewhere.example");
  EXPECT_EQ(run_rcpt(p, s, "user@example.test."), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(p, s, "postmaster"), MG_CONTINUE);  // RFC 5321 4.5.1: no domain
  EXPECT_EQ(run_rcpt(p, s, "user@"), MG_REJECT);
}

TEST_F(AccessTest, RelayCheckOffLetsEveryRecipientThroughButRulesStillApply) {
  host.set_policy("access:recipient", "blocked@outside.example", rule(AccessAction::kDeny));
  LoadedPlugin p = load(host, R"({"relay_check": false})");
  FakeSession s(host);
  run_mail(p, s, "a@elsewhere.example");
  EXPECT_EQ(run_rcpt(p, s, "someone@outside.example"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(p, s, "blocked@outside.example"), MG_REJECT);
}

// --- replies and odd values -----------------------------------------------------------------

TEST_F(AccessTest, RuleWithoutEnhancedCodeOrText) {
  host.set_policy("access:sender", "a@x.example", "deny 550 Go away now");
  host.set_policy("access:sender", "b@x.example", "tempfail 451");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, "a@x.example"), MG_REJECT);
  expect_reply(s, 550, "", "Go away now");
  EXPECT_EQ(s.client_reply(MG_REJECT)->enhanced, "5.7.1");  // the gateway's default
  EXPECT_EQ(run_mail(p, s, "b@x.example"), MG_TEMPFAIL);
  EXPECT_EQ(s.client_reply(MG_TEMPFAIL)->text, "Temporarily rejected by policy, try again later");
}

TEST_F(AccessTest, UnreadableRuleValueFailsWithTheFailModeAndIsLogged) {
  host.set_policy("access:sender", "a@x.example", "maybe 250 Sure");
  host.set_policy("access:sender", "b@x.example", "deny 451 4.7.1 wrong class");
  host.set_policy("access:sender", "c@x.example", "deny");
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_mail(p, s, "a@x.example"), MG_FAILED);
  EXPECT_TRUE(
      s.logged("access:sender rule for 'a@x.example' has a value this plugin cannot "
               "read: 'maybe 250 Sure'"));
  EXPECT_EQ(run_mail(p, s, "b@x.example"), MG_FAILED);
  EXPECT_EQ(run_mail(p, s, "c@x.example"), MG_FAILED);
}

TEST_F(AccessTest, AFullSessionLeavesNoViolations) {
  host.set_policy("relay_networks", "192.0.2.1", "192.0.2.0/24");
  host.set_policy("access:helo", "mx.partner.example", kAllow);
  LoadedPlugin p = load(host);
  FakeSession s(host);
  EXPECT_EQ(run_connect(p, s), MG_CONTINUE);
  EXPECT_EQ(run_helo(p, s, "mx.partner.example"), MG_ACCEPT);
  EXPECT_EQ(run_mail(p, s, "a@example.test"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(p, s, "user@example.test"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(p, s, "someone@outside.example"), MG_CONTINUE);
  EXPECT_EQ(run_message(p, s, "Subject: hi\n\nbody\n"), MG_CONTINUE);
  run_reset(p, s);
  run_close(p, s);
  EXPECT_TRUE(host.violations().empty()) << ::testing::PrintToString(host.violations());
}

}  // namespace
