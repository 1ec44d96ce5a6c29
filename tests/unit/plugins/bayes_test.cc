// bayes_test.cc — unit tests of the built-in `bayes` plugin (plugins/bayes/) with the SDK's fake
// host: it learns the small fixture corpus (tests/unit/bayes/fixtures: six spam, six ham) with
// the core library, as `mailgatectl learn` does, holds one message of each class back and
// checks the verdicts the plugin adds at EOM — in SQLite and in the host's shared counters —,
// the minimum learned before it says anything, autolearn (once per message, only when the other
// symbols agree), a store that fails, and settings errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mailgate/fake_host.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include "bayes/counter_store.h"
#include "bayes/sqlite_store.h"
#include "bayes/tokenizer.h"

#ifndef MAILGATE_BAYES_PLUGIN
#error "MAILGATE_BAYES_PLUGIN (the built bayes.so) comes from plugins/bayes/CMakeLists.txt"
#endif

namespace {

namespace fs = std::filesystem;
namespace bayes = mailgate::bayes;
using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::LoadedPlugin;

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(MAILGATE_TEST_DATA_DIR) + "/bayes/fixtures/" + name,
                   std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Learns spam/01..05 and ham/01..05 (06 of each is held back).
void learn_fixture(bayes::TokenStore& store) {
  for (const char* label : {"spam", "ham"}) {
    for (int i = 1; i <= 5; ++i) {
      const bayes::Message m =
          bayes::parse_message(fixture(std::string(label) + "/0" + std::to_string(i) + ".eml"));
      bayes::LearnOutcome outcome;
      const std::string e = store.learn(bayes::tokenize(m),
                                        label[0] == 's' ? bayes::Label::kSpam : bayes::Label::kHam,
                                        bayes::message_digest(m), outcome);
      if (!e.empty()) throw std::runtime_error(e);
    }
  }
}

class BayesTest : public ::testing::Test {
 protected:
  BayesTest() {
    char tmpl[] = "/tmp/bayes-plugin-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    db_ = dir_ + "/bayes.db";
  }
  ~BayesTest() override {
    plugin_.reset();
    fs::remove_all(dir_);
  }
  void use(const std::string& settings) {
    plugin_.reset();
    plugin_.emplace(LoadedPlugin::open(host_, MAILGATE_BAYES_PLUGIN, settings));
  }
  std::string sqlite_settings(const std::string& extra = "") const {
    return R"({"db": ")" + db_ + R"(", "min_spam": 3, "min_ham": 3)" + extra + "}";
  }
  // Runs one message through the plugin; returns the session's symbols.
  std::vector<mailgate::fake::Symbol> run(const std::string& message, double others = 0) {
    FakeSession s(host_);
    s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.7");
    run_mail(*plugin_, s, "sender@example.net");
    run_rcpt(*plugin_, s, "rcpt@example.org");
    if (others != 0) host_.table()->add_symbol(s.handle(), "OTHER_PLUGIN", others, nullptr);
    EXPECT_EQ(run_message(*plugin_, s, message), MG_CONTINUE);
    std::vector<mailgate::fake::Symbol> out;
    for (const auto& sym : s.symbols())
      if (sym.name != "OTHER_PLUGIN") out.push_back(sym);
    return out;
  }
  bayes::Totals totals() {
    bayes::SqliteTokenStore store(db_, 1000, /*read_only=*/true);
    bayes::Totals t;
    EXPECT_EQ(store.totals(t), "");
    return t;
  }

  FakeHost host_;
  std::optional<LoadedPlugin> plugin_;
  std::string dir_;
  std::string db_;
};

TEST_F(BayesTest, HeldBackSpamAndHamGetTheirSymbols) {
  {
    bayes::SqliteTokenStore store(db_, 1000);
    learn_fixture(store);
  }
  use(sqlite_settings());
  const auto spam = run(fixture("spam/06.eml"));
  ASSERT_EQ(spam.size(), 1u);
  EXPECT_EQ(spam[0].name, "BAYES_SPAM");
  EXPECT_GE(spam[0].score, 1.5);  // half of spam_score at the cut-off, all of it at p = 1
  EXPECT_LE(spam[0].score, 3.0);
  ASSERT_TRUE(spam[0].detail.has_value());
  ASSERT_EQ(spam[0].detail->rfind("p=", 0), 0u) << *spam[0].detail;
  EXPECT_GE(std::stod(spam[0].detail->substr(2, 6)), 0.9) << *spam[0].detail;
  EXPECT_NE(spam[0].detail->find(" clues "), std::string::npos) << *spam[0].detail;

  const auto ham = run(fixture("ham/06.eml"));
  ASSERT_EQ(ham.size(), 1u);
  EXPECT_EQ(ham[0].name, "BAYES_HAM");
  EXPECT_LE(ham[0].score, -0.75);
  EXPECT_GE(ham[0].score, -1.5);
  EXPECT_EQ(ham[0].detail->rfind("p=0.0", 0), 0u) << *ham[0].detail;

  // A message with nothing the classifier knows is unsure, scored unsure_score.
  use(sqlite_settings(R"(, "unsure_score": 0.25)"));
  const auto unsure = run("Subject: qwxz\n\nzzqv\n");
  ASSERT_EQ(unsure.size(), 1u);
  EXPECT_EQ(unsure[0].name, "BAYES_UNSURE");
  EXPECT_DOUBLE_EQ(unsure[0].score, 0.25);
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(BayesTest, NothingUntilEnoughIsLearned) {
  {
    bayes::SqliteTokenStore store(db_, 1000);
    learn_fixture(store);  // 5 and 5
  }
  use(R"({"db": ")" + db_ + R"(", "min_spam": 6, "min_ham": 1})");
  EXPECT_TRUE(run(fixture("spam/06.eml")).empty());
  use(R"({"db": ")" + db_ + R"("})");  // the default: 200 each
  EXPECT_TRUE(run(fixture("spam/06.eml")).empty());
}

TEST_F(BayesTest, SharedCounterBackend) {
  const mg_host* h = host_.table();
  bayes::CounterTokenStore store(
      [h](std::string_view key, std::int64_t delta) -> std::optional<std::int64_t> {
        std::int64_t v = 0;
        const std::string k(key);
        if (h->counter_add(k.c_str(), delta, 0, &v) != 0) return std::nullopt;
        return v;
      },
      "bz", "fake");
  learn_fixture(store);
  EXPECT_EQ(host_.counter("bz:n"), 5 * bayes::CounterTokenStore::kSpamUnit + 5);
  use(R"({"backend": "store", "key_prefix": "bz", "min_spam": 3, "min_ham": 3})");
  const auto spam = run(fixture("spam/06.eml"));
  ASSERT_EQ(spam.size(), 1u);
  EXPECT_EQ(spam[0].name, "BAYES_SPAM");
  const auto ham = run(fixture("ham/06.eml"));
  ASSERT_EQ(ham.size(), 1u);
  EXPECT_EQ(ham[0].name, "BAYES_HAM");

  // The store goes away: no verdict, a warning, the mail goes on.
  host_.set_counters_available(false);
  host_.clear_logs();
  EXPECT_TRUE(run(fixture("spam/06.eml")).empty());
  bool warned = false;
  for (const auto& line : host_.logs())
    warned = warned || (line.level == MG_LOG_WARNING &&
                        line.message.find("unavailable") != std::string::npos);
  EXPECT_TRUE(warned);
}

TEST_F(BayesTest, AutolearnOnceAndOnlyWhenTheOthersAgree) {
  {
    bayes::SqliteTokenStore store(db_, 1000);
    learn_fixture(store);
  }
  const std::string settings =
      sqlite_settings(R"(, "autolearn": true, "autolearn_spam_probability": 0.9,)"
                      R"( "autolearn_ham_probability": 0.2, "autolearn_spam_min_score": 1.0)");
  use(settings);
  // Spammy by Bayes, but the other plugins said nothing (score 0 < 1.0): not learned.
  ASSERT_EQ(run(fixture("spam/06.eml")).size(), 1u);
  EXPECT_EQ(totals().spam, 5);
  // With another plugin's 2 points it is learned, once.
  ASSERT_EQ(run(fixture("spam/06.eml"), 2.0).size(), 1u);
  EXPECT_EQ(totals().spam, 6);
  ASSERT_EQ(run(fixture("spam/06.eml"), 2.0).size(), 1u);
  EXPECT_EQ(totals().spam, 6);
  // Hammy and the others at or below 0: learned as ham.
  ASSERT_EQ(run(fixture("ham/06.eml")).size(), 1u);
  EXPECT_EQ(totals().ham, 6);
  // Autolearn off (the default): nothing learned.
  use(sqlite_settings());
  run(fixture("ham/05.eml") + "\nP.S. a new line so it is a new message\n");
  EXPECT_EQ(totals().ham, 6);
}

TEST_F(BayesTest, BadSettingsAreRefusedByName) {
  const auto error = [&](const std::string& settings) {
    try {
      use(settings);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(error(R"({"colour": 1})").find("unknown setting \"colour\""), std::string::npos);
  EXPECT_NE(error(R"({"backend": "redis"})").find("\"backend\""), std::string::npos);
  EXPECT_NE(error(R"({"spam_cutoff": 0.3})").find("\"spam_cutoff\""), std::string::npos);
  EXPECT_NE(error(R"({"ham_cutoff": 0.5, "spam_cutoff": 0.5})").find("below"), std::string::npos);
  EXPECT_NE(error(R"({"autolearn": "yes"})").find("\"autolearn\""), std::string::npos);
  EXPECT_NE(error(R"({"db": "/nonexistent/dir/bayes.db"})").find("/nonexistent/dir/bayes.db"),
            std::string::npos);
}

}  // namespace
