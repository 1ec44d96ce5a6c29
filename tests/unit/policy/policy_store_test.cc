// tests/unit/policy/policy_store_test.cc — live policy: reload() swaps in a new snapshot or
// keeps the old one on a broken edit; the watcher notices edits made through another SQLite
// connection (WAL and rollback journal) and a replaced file, within its poll interval.
#include "policy/policy_store.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <atomic>
#include <thread>

#include "policy_test_util.h"

namespace mailgate::policy {
namespace {

using namespace std::chrono_literals;
using testing::make_db;
using testing::raw_connection;
using testing::sql;
using testing::TempDir;

constexpr auto kPoll = 50ms;

// Polls `predicate` for up to `limit`; returns how long it took, or nullopt on timeout.
template <typename F>
std::optional<std::chrono::milliseconds> wait_for(F predicate, std::chrono::milliseconds limit) {
  auto start = std::chrono::steady_clock::now();
  while (!predicate()) {
    if (std::chrono::steady_clock::now() - start > limit) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

class PolicyStoreTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    path_ = dir_.file("policy.db");
    auto db = make_db(path_);
    sql(db.get(), std::string("PRAGMA journal_mode = ") + GetParam());
    sql(db.get(), "INSERT INTO local_domains (domain) VALUES ('one.example')");
  }

  std::unique_ptr<PolicyStore> open_store() {
    auto store = PolicyStore::open({path_, kPoll});
    EXPECT_TRUE(store) << store.error();
    return store ? std::move(*store) : nullptr;
  }

  // An edit by "someone else": a separate connection, closed afterwards.
  void edit(const std::string& statements) {
    auto db = open_db(path_, OpenMode::kReadWrite);
    ASSERT_TRUE(db) << db.error();
    sql(db->get(), statements);
  }

  TempDir dir_;
  std::string path_;
};

TEST_P(PolicyStoreTest, OpenLoadsTheFirstSnapshot) {
  auto store = open_store();
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->current()->is_local_domain("one.example"));
  EXPECT_EQ(store->failed_reloads(), 0u);
}

TEST_P(PolicyStoreTest, OpenRefusesABrokenDatabase) {
  auto raw = raw_connection(path_);
  sql(raw.get(), "INSERT INTO relay_networks (cidr) VALUES ('10.0.0.0/33')");
  auto store = PolicyStore::open({path_, kPoll});
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error(),
            "relay_networks row '10.0.0.0/33': bad CIDR '10.0.0.0/33': prefix length must be "
            "0..32");
}

TEST_P(PolicyStoreTest, ReloadSwapsAndNotifies) {
  auto store = open_store();
  ASSERT_TRUE(store);
  std::vector<uint64_t> seen;
  store->subscribe([&](const SnapshotPtr& s) { seen.push_back(s->version()); });
  SnapshotPtr before = store->current();
  edit("INSERT INTO local_domains (domain) VALUES ('two.example')");
  auto r = store->reload();
  ASSERT_TRUE(r) << r.error();
  SnapshotPtr after = store->current();
  EXPECT_EQ(after, *r);
  EXPECT_GT(after->version(), before->version());
  EXPECT_TRUE(after->is_local_domain("two.example"));
  EXPECT_FALSE(before->is_local_domain("two.example"));  // old snapshots never change
  EXPECT_EQ(seen, std::vector<uint64_t>{after->version()});
}

TEST_P(PolicyStoreTest, ReloadKeepsTheOldSnapshotOnABrokenEdit) {
  auto store = open_store();
  ASSERT_TRUE(store);
  int notified = 0;
  store->subscribe([&](const SnapshotPtr&) { ++notified; });
  SnapshotPtr before = store->current();
  auto raw = raw_connection(path_);
  sql(raw.get(), R"(INSERT INTO plugins (position, name, path, settings) VALUES
                    (1, 'spf', 'spf.so', '{"broken": }'))");
  auto r = store->reload();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(),
            "plugins row 'spf': settings is not valid JSON: parse error at line 1, column 12: "
            "syntax error while parsing value - unexpected '}'; expected '[', '{', or a literal");
  EXPECT_EQ(store->current(), before);
  EXPECT_EQ(store->failed_reloads(), 1u);
  EXPECT_EQ(notified, 0);

  sql(raw.get(), R"(UPDATE plugins SET settings = '{"fixed": true}')");
  ASSERT_TRUE(store->reload());
  EXPECT_EQ(store->current()->plugin("spf")->settings_json, R"({"fixed": true})");
  EXPECT_EQ(notified, 1);
}

TEST_P(PolicyStoreTest, ReloadKeepsTheOldSnapshotWhenTheFileIsGone) {
  auto store = open_store();
  ASSERT_TRUE(store);
  SnapshotPtr before = store->current();
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".moved").c_str()), 0);
  auto r = store->reload();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "cannot open policy database '" + path_ + "': unable to open database file");
  EXPECT_EQ(store->current(), before);
}

TEST_P(PolicyStoreTest, WatcherPicksUpAnEditWithinItsInterval) {
  auto store = open_store();
  ASSERT_TRUE(store);
  store->start_watching();
  const uint64_t first = store->current()->version();
  std::this_thread::sleep_for(4 * kPoll);
  EXPECT_EQ(store->current()->version(), first) << "reloaded without a change";

  edit("INSERT INTO local_domains (domain) VALUES ('live.example')");
  auto took = wait_for([&] { return store->current()->is_local_domain("live.example"); }, 5s);
  ASSERT_TRUE(took) << "the watcher did not pick up the edit";
  // One poll interval plus the reload; generous for a loaded CI machine.
  EXPECT_LT(*took, 20 * kPoll);
  store->stop_watching();
}

TEST_P(PolicyStoreTest, WatcherKeepsTheOldSnapshotOnABrokenEditThenTakesTheFix) {
  auto store = open_store();
  ASSERT_TRUE(store);
  store->start_watching();
  SnapshotPtr before = store->current();
  {
    auto raw = raw_connection(path_);
    sql(raw.get(),
        "INSERT INTO access (id, stage, pattern, action) VALUES "
        "(7, 'client', '10.0.0.0/33', 'deny')");
  }
  ASSERT_TRUE(wait_for([&] { return store->failed_reloads() == 1; }, 5s));
  EXPECT_EQ(store->current(), before);
  std::this_thread::sleep_for(4 * kPoll);
  EXPECT_EQ(store->failed_reloads(), 1u) << "retried without a change";

  edit("UPDATE access SET pattern = '10.0.0.0/8' WHERE id = 7");
  ASSERT_TRUE(wait_for([&] { return store->current() != before; }, 5s));
  EXPECT_EQ(store->current()->match_access("client", "10.1.2.3")->id, 7);
}

TEST_P(PolicyStoreTest, WatcherNoticesAReplacedFile) {
  auto store = open_store();
  ASSERT_TRUE(store);
  store->start_watching();
  const std::string next = dir_.file("next.db");
  {
    auto db = make_db(next);
    sql(db.get(), "INSERT INTO local_domains (domain) VALUES ('replaced.example')");
  }
  ASSERT_EQ(::rename(next.c_str(), path_.c_str()), 0);
  ASSERT_TRUE(wait_for([&] { return store->current()->is_local_domain("replaced.example"); }, 5s));
  EXPECT_FALSE(store->current()->is_local_domain("one.example"));
}

TEST_P(PolicyStoreTest, ReadersSeeWholeSnapshotsDuringReloads) {
  auto store = open_store();
  ASSERT_TRUE(store);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        SnapshotPtr s = store->current();
        // Every snapshot has one.example; none is ever half-built.
        if (!s->is_local_domain("one.example")) ADD_FAILURE() << "torn snapshot";
        ++reads;
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    edit("INSERT INTO local_domains (domain) VALUES ('d" + std::to_string(i) + ".example')");
    ASSERT_TRUE(store->reload());
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_TRUE(store->current()->is_local_domain("d19.example"));
}

TEST_P(PolicyStoreTest, StopWatchingIsPromptAndIdempotent) {
  auto store = PolicyStore::open({path_, std::chrono::milliseconds(60000)});
  ASSERT_TRUE(store);
  (*store)->start_watching();
  (*store)->start_watching();
  auto start = std::chrono::steady_clock::now();
  (*store)->stop_watching();
  (*store)->stop_watching();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

INSTANTIATE_TEST_SUITE_P(JournalModes, PolicyStoreTest, ::testing::Values("WAL", "DELETE"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

}  // namespace
}  // namespace mailgate::policy
