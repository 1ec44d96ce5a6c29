// tests/unit/bayes/token_store_test.cc — plugins/bayes/lib/bayes/sqlite_store.cc and
// counter_store.cc: counting, learning a message once, moving a corrected message, refusing
// another tokenizer's file, and SQLite learners in several threads (each with its own
// connection, as the gateway and mailgatectl are) losing no count.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "bayes/counter_store.h"
#include "bayes/sqlite_store.h"

namespace mailgate::bayes {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/bayes-store-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs the same checks on any store.
void check_learning(TokenStore& store) {
  Totals totals;
  ASSERT_EQ(store.totals(totals), "");
  EXPECT_EQ(totals.spam, 0);
  EXPECT_EQ(totals.ham, 0);

  LearnOutcome outcome;
  ASSERT_EQ(store.learn({"cheap", "pills"}, Label::kSpam, "d1", outcome), "");
  EXPECT_EQ(outcome, LearnOutcome::kLearned);
  ASSERT_EQ(store.learn({"cheap", "meeting"}, Label::kHam, "d2", outcome), "");
  ASSERT_EQ(store.learn({"cheap", "pills"}, Label::kSpam, "d1", outcome), "");
  EXPECT_EQ(outcome, LearnOutcome::kAlreadyKnown);

  std::vector<TokenCounts> counts;
  ASSERT_EQ(store.lookup({"cheap", "pills", "meeting", "unknown"}, counts, totals), "");
  ASSERT_EQ(counts.size(), 4u);
  EXPECT_EQ(counts[0].spam, 1);
  EXPECT_EQ(counts[0].ham, 1);
  EXPECT_EQ(counts[1].spam, 1);
  EXPECT_EQ(counts[1].ham, 0);
  EXPECT_EQ(counts[2].ham, 1);
  EXPECT_EQ(counts[3].spam + counts[3].ham, 0);
  EXPECT_EQ(totals.spam, 1);
  EXPECT_EQ(totals.ham, 1);

  // d2 was spam after all: its counts move over
  ASSERT_EQ(store.learn({"cheap", "meeting"}, Label::kSpam, "d2", outcome), "");
  EXPECT_EQ(outcome, LearnOutcome::kRelearned);
  ASSERT_EQ(store.lookup({"cheap", "meeting"}, counts, totals), "");
  EXPECT_EQ(counts[0].spam, 2);
  EXPECT_EQ(counts[0].ham, 0);
  EXPECT_EQ(counts[1].spam, 1);
  EXPECT_EQ(counts[1].ham, 0);
  EXPECT_EQ(totals.spam, 2);
  EXPECT_EQ(totals.ham, 0);
}

TEST(BayesSqliteStore, LearnsOnceMovesCorrectionsAndPersists) {
  TempDir dir;
  const std::string path = dir.file("bayes.db");
  {
    SqliteTokenStore store(path, 1000);
    check_learning(store);
    EXPECT_EQ(store.describe(), "sqlite:" + path);
  }
  SqliteTokenStore again(path, 1000, /*read_only=*/true);
  Totals totals;
  ASSERT_EQ(again.totals(totals), "");
  EXPECT_EQ(totals.spam, 2);
  LearnOutcome outcome;
  EXPECT_NE(again.learn({"x"}, Label::kHam, "d3", outcome).find("read-only"), std::string::npos);
}

TEST(BayesSqliteStore, BatchKeepsEveryMessage) {
  TempDir dir;
  SqliteTokenStore store(dir.file("b.db"), 1000);
  ASSERT_EQ(store.begin_batch(), "");
  LearnOutcome outcome;
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(
        store.learn({"t" + std::to_string(i % 5)}, Label::kHam, "m" + std::to_string(i), outcome),
        "");
  ASSERT_EQ(store.learn({"t0"}, Label::kHam, "m0", outcome), "");
  EXPECT_EQ(outcome, LearnOutcome::kAlreadyKnown);
  ASSERT_EQ(store.end_batch(), "");
  std::vector<TokenCounts> counts;
  Totals totals;
  ASSERT_EQ(store.lookup({"t0"}, counts, totals), "");
  EXPECT_EQ(counts[0].ham, 10);
  EXPECT_EQ(totals.ham, 50);
}

TEST(BayesSqliteStore, RefusesAnotherTokenizerVersionAndNonDatabases) {
  TempDir dir;
  const std::string path = dir.file("old.db");
  { SqliteTokenStore store(path, 1000); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE bayes_meta SET value = '0' WHERE key = 'tokenizer_version'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  try {
    SqliteTokenStore store(path, 1000);
    FAIL() << "opened a file of another tokenizer version";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer version 0"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(SqliteTokenStore(dir.file("missing/dir/x.db"), 1000), std::runtime_error);
}

TEST(BayesSqliteStore, ConcurrentLearnersOnOneFileLoseNothing) {
  TempDir dir;
  const std::string path = dir.file("shared.db");
  { SqliteTokenStore init(path, 5000); }
  constexpr int kThreads = 4;
  constexpr int kMessages = 40;
  std::vector<std::thread> threads;
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      SqliteTokenStore store(path, 10000);  // its own connection
      LearnOutcome outcome;
      for (int i = 0; i < kMessages && errors[t].empty(); ++i)
        errors[t] =
            store.learn({"common", "t" + std::to_string(t)}, t % 2 ? Label::kSpam : Label::kHam,
                        std::to_string(t) + "-" + std::to_string(i), outcome);
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  SqliteTokenStore store(path, 1000);
  std::vector<TokenCounts> counts;
  Totals totals;
  ASSERT_EQ(store.lookup({"common"}, counts, totals), "");
  EXPECT_EQ(counts[0].spam + counts[0].ham, kThreads * kMessages);
  EXPECT_EQ(totals.spam, 2 * kMessages);
  EXPECT_EQ(totals.ham, 2 * kMessages);
}

// The shared-counter store over an in-memory map (what counter_add does, without expiry).
struct MapCounters {
  std::mutex mu;
  std::map<std::string, std::int64_t> values;
  bool available = true;
  CounterAdd fn() {
    return [this](std::string_view key, std::int64_t delta) -> std::optional<std::int64_t> {
      std::lock_guard<std::mutex> lock(mu);
      if (!available) return std::nullopt;
      return values[std::string(key)] += delta;
    };
  }
};

TEST(BayesCounterStore, LearnsOnceMovesCorrections) {
  MapCounters counters;
  CounterTokenStore store(counters.fn(), "bayes", "test");
  check_learning(store);
  // one counter per token, both classes packed in it
  EXPECT_EQ(counters.values.at("bayes:t:cheap"), 2 * CounterTokenStore::kSpamUnit);
  EXPECT_EQ(counters.values.at("bayes:seen:d2"), 2);
}

TEST(BayesCounterStore, UnpacksNegativeHalves) {
  const std::int64_t u = CounterTokenStore::kSpamUnit;
  for (const auto& [spam, ham] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {0, 0}, {3, 5}, {1, -1}, {-1, 3}, {-2, -7}, {100000, 2000000}}) {
    const TokenCounts c = CounterTokenStore::unpack(spam * u + ham);
    EXPECT_EQ(c.spam, spam);
    EXPECT_EQ(c.ham, ham);
  }
}

TEST(BayesCounterStore, UnavailableIsAnErrorNamingTheStore) {
  MapCounters counters;
  counters.available = false;
  CounterTokenStore store(counters.fn(), "bayes", "redis:127.0.0.1:1");
  std::vector<TokenCounts> counts;
  Totals totals;
  const std::string e = store.lookup({"a"}, counts, totals);
  EXPECT_NE(e.find("redis:127.0.0.1:1"), std::string::npos) << e;
  LearnOutcome outcome;
  EXPECT_NE(store.learn({"a"}, Label::kSpam, "d", outcome), "");
}

}  // namespace
}  // namespace mailgate::bayes
