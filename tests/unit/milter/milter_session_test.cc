// milter_session_test.cc — milter/milter_session: the plugin chain driven by milter steps,
// with the scripted test plugins (tests/unit/chain/plugins/scripted.c) and no MTA: verdicts
// per step, a per-recipient refusal, edits collected at the end of the message (a header
// added, a recipient rewritten into delete + add), DISCARD kept until the end, and the
// message the plugins see (header fields with raw text, body from the spool).
#include "milter/milter_session.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "chain/chain.h"

namespace mailgate::milter {
namespace {

std::string plugin_path(const std::string& name) {
  return std::string(MAILGATE_TEST_PLUGIN_DIR) + "/" + name + ".so";
}

chain::PluginSpec spec(const std::string& name, const std::string& script, int timeout_ms = 2000,
                       chain::FailMode mode = chain::FailMode::kTempfail) {
  chain::PluginSpec s;
  s.name = name;
  s.path = plugin_path("tp_" + name);
  s.settings_json = "{\"script\":\"" + script + "\"}";
  s.timeout = std::chrono::milliseconds(timeout_ms);
  s.fail_mode = mode;
  return s;
}

const MacroLookup kNoMacros = [](const char*) -> const char* { return nullptr; };

class MilterSessionTest : public ::testing::Test {
 protected:
  std::unique_ptr<MilterSession> start(const std::vector<chain::PluginSpec>& specs) {
    smtp::ChainBinding b;
    if (!specs.empty()) {
      auto c = chain::Chain::build(specs, cache_);
      EXPECT_TRUE(c.has_value()) << (c ? "" : c.error());
      b.chain = *c;
      b.pool = &pool_;
    }
    SessionOptions o;
    o.hostname = "mx.example.test";
    o.spool_dir = std::filesystem::temp_directory_path();
    auto s = std::make_unique<MilterSession>(b, o, "TESTID000001");
    EXPECT_EQ(s->connect("client.example", "192.0.2.1", 40000, kNoMacros).action, MG_CONTINUE);
    EXPECT_EQ(s->helo("client.example").action, MG_CONTINUE);
    return s;
  }
  // Sends a small message; returns the end-of-message outcome.
  EomOutcome message(MilterSession& s) {
    s.header("From", " <a@example.org>");
    s.header("Subject", " hello\n\tworld");
    s.end_of_header();
    s.body("line one\r\nline two\r\n");
    return s.end_of_message();
  }

  chain::WorkerPool pool_{2, 16};
  chain::PluginCache cache_;
  std::unique_ptr<MilterSession> s_;  // destroyed before the pool and the cache
};

TEST_F(MilterSessionTest, NoPluginsNeedsNoMessageAndPassesEverything) {
  s_ = start({});
  EXPECT_FALSE(s_->wants_message());
  EXPECT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  EXPECT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_CONTINUE);
  EomOutcome out = s_->end_of_message();
  EXPECT_EQ(out.verdict.action, MG_CONTINUE);
  EXPECT_TRUE(out.header_ops.empty());
  EXPECT_TRUE(out.add_rcpts.empty());
}

TEST_F(MilterSessionTest, RejectAtMailCarriesThePluginsReplyAndEndsTheTransaction) {
  s_ = start({spec("alpha", "mail=reject:554:5.7.1:Sender refused")});
  chain::Verdict v = s_->mail({"<spammer@bad.example>", "SIZE=100"});
  EXPECT_EQ(v.action, MG_REJECT);
  EXPECT_EQ(v.reply.summary(), "554 5.7.1 Sender refused");
  EXPECT_EQ(v.plugin, "alpha");
  EXPECT_EQ(s_->state(), MilterSession::State::kIdle);
}

TEST_F(MilterSessionTest, TempfailAtRcptRefusesThatRecipientOnly) {
  s_ = start({spec("alpha", "rcpt=tempfail:450:4.7.1:Try later")});
  EXPECT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  chain::Verdict v = s_->rcpt({"<user@example.test>"});
  EXPECT_EQ(v.action, MG_TEMPFAIL);
  EXPECT_EQ(v.reply.summary(), "450 4.7.1 Try later");
  EXPECT_EQ(s_->state(), MilterSession::State::kEnvelope);
}

TEST_F(MilterSessionTest, RewrittenRecipientBecomesDeleteAndAddAtTheEnd) {
  s_ = start({spec("alpha", "rcpt=rewrite:bob@example.test")});
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<alice@example.test>"}).action, MG_CONTINUE);
  EomOutcome out = message(*s_);
  EXPECT_EQ(out.verdict.action, MG_CONTINUE);
  EXPECT_EQ(out.del_rcpts, std::vector<std::string>{"<alice@example.test>"});
  EXPECT_EQ(out.add_rcpts, std::vector<std::string>{"bob@example.test"});
}

TEST_F(MilterSessionTest, DroppedRecipientIsDeletedAtTheEnd) {
  s_ = start({spec("alpha", "rcpt=drop")});
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<drop-me@example.test>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<keep@example.test>"}).action, MG_CONTINUE);
  EomOutcome out = message(*s_);
  EXPECT_EQ(out.verdict.action, MG_CONTINUE);
  EXPECT_EQ(out.del_rcpts, std::vector<std::string>{"<drop-me@example.test>"});
  EXPECT_TRUE(out.add_rcpts.empty());
}

TEST_F(MilterSessionTest, MessageWithEveryRecipientDroppedIsDiscarded) {
  s_ = start({spec("alpha", "rcpt=drop")});
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<drop-1@example.test>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<drop-2@example.test>"}).action, MG_CONTINUE);
  EomOutcome out = message(*s_);
  EXPECT_EQ(out.verdict.action, MG_DISCARD);
  EXPECT_EQ(out.verdict.plugin, "rcpt-drop");
}

TEST_F(MilterSessionTest, HeaderAddedAtEomIsAnAppend) {
  s_ = start({spec("alpha", "eom=header:X-Mailgate-Test:yes")});
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_CONTINUE);
  EomOutcome out = message(*s_);
  EXPECT_EQ(out.verdict.action, MG_CONTINUE);
  ASSERT_EQ(out.header_ops.size(), 1u);
  EXPECT_EQ(out.header_ops[0], (HeaderOp{HeaderOp::Kind::kAdd, "X-Mailgate-Test", 0, "yes"}));
}

TEST_F(MilterSessionTest, RejectAtEndOfMessage) {
  s_ = start({spec("alpha", "body=reject:550:5.7.0:Bad body")});
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_CONTINUE);
  EomOutcome out = message(*s_);
  EXPECT_EQ(out.verdict.action, MG_REJECT);
  EXPECT_EQ(out.verdict.reply.summary(), "550 5.7.0 Bad body");
  // The next transaction on the connection starts clean.
  EXPECT_EQ(s_->mail({"<b@example.org>"}).action, MG_CONTINUE);
}

TEST_F(MilterSessionTest, DiscardAtRcptIsAppliedAtTheEnd) {
  s_ = start({spec("alpha", "rcpt=discard")});
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  EXPECT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_DISCARD);
  EomOutcome out = message(*s_);
  EXPECT_EQ(out.verdict.action, MG_DISCARD);
  EXPECT_EQ(out.verdict.plugin, "alpha");
}

TEST_F(MilterSessionTest, AbortRunsResetAndAllowsANewTransaction) {
  s_ = start({spec("alpha", "mail=data;rcpt=data")});
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  // The data slot set at MAIL is there at RCPT (same transaction).
  EXPECT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_CONTINUE);
  s_->abort();
  EXPECT_EQ(s_->state(), MilterSession::State::kIdle);
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  EXPECT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_CONTINUE);
}

TEST_F(MilterSessionTest, BlockingAndNonBlockingPluginsRunFromThisThread) {
  // beta runs on the worker pool, gamma inline: both are awaited synchronously.
  s_ = start({spec("beta", "mail=sleep:20"), spec("gamma", "mail=reject:550:5.1.8:Bad sender")});
  chain::Verdict v = s_->mail({"<a@example.org>"});
  EXPECT_EQ(v.action, MG_REJECT);
  EXPECT_EQ(v.plugin, "gamma");
}

TEST_F(MilterSessionTest, TimedOutPluginGivesItsFailModeAndTheSessionGoesOn) {
  // beta (on the worker pool) sleeps past its 100 ms timeout at MAIL: fail mode tempfail.
  s_ = start({spec("beta", "mail=sleep:400", 100)});
  auto started = std::chrono::steady_clock::now();
  chain::Verdict v = s_->mail({"<a@example.org>"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(v.action, MG_TEMPFAIL);
  EXPECT_EQ(v.reply.summary(), "451 4.3.0 Temporary filter failure, try again later");
  EXPECT_LT(took, std::chrono::milliseconds(350));
  // The connection ends while the abandoned call still sleeps: its late completion must
  // not reach the destroyed session (the pool outlives it and finishes the call).
  s_.reset();
}

TEST_F(MilterSessionTest, TimedOutPluginInFailModeOpenContinues) {
  s_ = start({spec("beta", "mail=sleep:300", 50, chain::FailMode::kOpen)});
  EXPECT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  EXPECT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_CONTINUE);
}

TEST_F(MilterSessionTest, HeaderValuesFollowTheLeadingSpaceSetting) {
  s_ = start({spec("alpha", "eom=header:X-A:1")});
  s_->set_header_leading_space(true);
  ASSERT_EQ(s_->mail({"<a@example.org>"}).action, MG_CONTINUE);
  ASSERT_EQ(s_->rcpt({"<user@example.test>"}).action, MG_CONTINUE);
  // With the leading space kept, " hello" is the value "hello"; without it the MTA has
  // already removed it. Either way the diff sees untouched fields as untouched.
  s_->header("Subject", " hello");
  s_->header("X-Folded", " a\n\tb");
  s_->end_of_header();
  s_->body("x\r\n");
  EomOutcome out = s_->end_of_message();
  ASSERT_EQ(out.header_ops.size(), 1u);
  EXPECT_EQ(out.header_ops[0].name, "X-A");
}

}  // namespace
}  // namespace mailgate::milter
