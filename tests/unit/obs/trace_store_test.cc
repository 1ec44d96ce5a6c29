// Tests gateway/obs/trace_store.* and trace_writer.*: schema, batched inserts, every search
// field, retention by age and by row count, the writer's bounded queue.
#include "obs/trace_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "obs/metrics.h"
#include "obs/trace_writer.h"

namespace mailgate::obs {
namespace {

class TraceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mg-trace-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/trace.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static TraceRecord record(int64_t time_ms, std::string sender, std::string rcpt) {
    TraceRecord r;
    r.time_ms = time_ms;
    r.session = "ABCDEF000001.1";
    r.profile = "inbound";
    r.client_ip = "192.0.2.7";
    r.client_name = "unknown";
    r.helo = "client.example";
    r.sender = std::move(sender);
    r.recipients = {std::move(rcpt), "second@example.test"};
    r.message_id = "id-" + std::to_string(time_ms) + "@example.org";
    r.queue_id = "Q" + std::to_string(time_ms);
    r.stage = "data";
    r.status = "accepted";
    r.reply = "250 2.0.0 Ok: queued as " + r.queue_id;
    r.score = 2.5;
    r.size = 1234;
    r.delay_ms = 12;
    r.symbols = {{"SPF_PASS", -0.1, "ip4", "spf"}, {"BAYES_SPAM", 2.6, "0.99", "bayes"}};
    r.actions = {{"spf", "mail", "continue", "", "", 0.4},
                 {"access", "rcpt", "reject", "550 5.7.1 no", "", 0.1}};
    return r;
  }

  std::string dir_, path_;
};

TEST_F(TraceStoreTest, ReaderRefusesMissingOrForeignFile) {
  auto missing = TraceStore::open(path_, TraceStore::Mode::kReader);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("trace database '" + path_ + "'"), std::string::npos);
  {
    auto w = TraceStore::open(path_, TraceStore::Mode::kWriter);
    ASSERT_TRUE(w) << w.error();
  }
  EXPECT_TRUE(TraceStore::open(path_, TraceStore::Mode::kReader));
}

TEST_F(TraceStoreTest, FindsByEveryField) {
  auto w = TraceStore::open(path_, TraceStore::Mode::kWriter);
  ASSERT_TRUE(w) << w.error();
  std::vector<TraceRecord> batch;
  for (int i = 1; i <= 5; ++i)
    batch.push_back(record(1000 * i, "s" + std::to_string(i) + "@example.org",
                           "r" + std::to_string(i) + "@example.test"));
  batch[2].status = "rejected";
  batch[2].client_ip = "198.51.100.1";
  ASSERT_TRUE(w->insert(batch));
  EXPECT_EQ(*w->count(), 5);

  auto r = TraceStore::open(path_, TraceStore::Mode::kReader);
  ASSERT_TRUE(r);
  auto all = r->find({});
  ASSERT_TRUE(all) << all.error();
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].time_ms, 5000);  // newest first
  const TraceRecord& got = (*all)[4];
  EXPECT_EQ(got.sender, "s1@example.org");
  EXPECT_EQ(got.recipients, (std::vector<std::string>{"r1@example.test", "second@example.test"}));
  ASSERT_EQ(got.symbols.size(), 2u);
  EXPECT_EQ(got.symbols[1].name, "BAYES_SPAM");
  EXPECT_DOUBLE_EQ(got.symbols[1].score, 2.6);
  ASSERT_EQ(got.actions.size(), 2u);
  EXPECT_EQ(got.actions[1].reply, "550 5.7.1 no");
  EXPECT_EQ(got.queue_id, "Q1000");

  auto one = [&](TraceQuery q) {
    auto f = r->find(q);
    EXPECT_TRUE(f) << f.error();
    return f ? f->size() : 999u;
  };
  TraceQuery q;
  q.sender = "S2@EXAMPLE.ORG";  // addresses match case-insensitively
  EXPECT_EQ(one(q), 1u);
  q = {};
  q.recipient = "r4@example.test";
  EXPECT_EQ(one(q), 1u);
  q.recipient = "second@example.test";
  EXPECT_EQ(one(q), 5u);
  q = {};
  q.client_ip = "198.51.100.1";
  EXPECT_EQ(one(q), 1u);
  q = {};
  q.message_id = "<id-4000@example.org>";
  EXPECT_EQ(one(q), 1u);
  q = {};
  q.queue_id = "Q5000";
  EXPECT_EQ(one(q), 1u);
  q = {};
  q.status = "rejected";
  EXPECT_EQ(one(q), 1u);
  q = {};
  q.since_ms = 2000;
  q.until_ms = 4000;
  EXPECT_EQ(one(q), 3u);
  q.limit = 2;
  EXPECT_EQ(one(q), 2u);
  q = {};
  q.sender = "nobody@example.org";
  EXPECT_EQ(one(q), 0u);
}

TEST_F(TraceStoreTest, RetentionByAgeAndRows) {
  auto w = TraceStore::open(path_, TraceStore::Mode::kWriter);
  ASSERT_TRUE(w);
  const int64_t hour = 3600 * 1000;
  const int64_t now = 100 * hour;
  std::vector<TraceRecord> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(record(now - (10 - i) * hour, "a@x", "b@y"));
  ASSERT_TRUE(w->insert(batch));  // ages 10 h .. 1 h
  auto deleted = w->prune(now, std::chrono::hours(5), 1000);
  ASSERT_TRUE(deleted) << deleted.error();
  EXPECT_EQ(*deleted, 5);  // older than 5 h: ages 10..6
  EXPECT_EQ(*w->count(), 5);
  deleted = w->prune(now, std::chrono::hours(5), 2);
  ASSERT_TRUE(deleted);
  EXPECT_EQ(*w->count(), 2);
  auto left = w->find({});
  ASSERT_TRUE(left);
  EXPECT_EQ((*left)[1].time_ms, now - 2 * hour);  // the newest two remain
  TraceQuery q;
  q.recipient = "second@example.test";
  EXPECT_EQ(w->find(q)->size(), 2u);  // recipients went with their transactions
}

TEST_F(TraceStoreTest, WriterBatchesAndDropsWhenFull) {
  TraceConfig config;
  config.db_path = path_;
  config.queue_capacity = 1000;
  auto writer = TraceWriter::start(config);
  ASSERT_TRUE(writer) << writer.error();
  int64_t written = metrics().trace_written.value();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (int i = 0; i < 300; ++i) (*writer)->submit(record(now + i, "w@x", "r@y"));
  (*writer)->flush();
  EXPECT_EQ(metrics().trace_written.value() - written, 300);
  auto r = TraceStore::open(path_, TraceStore::Mode::kReader);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->count(), 300);
  // WAL: the journal mode sticks to the file.
  EXPECT_TRUE(std::filesystem::exists(path_ + "-wal"));
}

TEST_F(TraceStoreTest, WriterNeverBlocksAFullQueue) {
  TraceConfig config;
  config.db_path = path_;
  config.queue_capacity = 10;
  config.flush_interval = std::chrono::milliseconds(2000);
  config.batch = 100000;  // the writer waits for the interval: the queue fills
  auto writer = TraceWriter::start(config);
  ASSERT_TRUE(writer);
  int64_t dropped = metrics().trace_dropped.value();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (int i = 0; i < 50; ++i) (*writer)->submit(record(now + i, "a@x", "b@y"));
  EXPECT_EQ(metrics().trace_dropped.value() - dropped, 40);
  (*writer)->flush();
  EXPECT_EQ(*TraceStore::open(path_, TraceStore::Mode::kReader)->count(), 10);
}

TEST_F(TraceStoreTest, WriterAppliesRetention) {
  TraceConfig config;
  config.db_path = path_;
  config.max_rows = 100;
  config.prune_interval = std::chrono::milliseconds(50);
  auto writer = TraceWriter::start(config);
  ASSERT_TRUE(writer);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  (*writer)->submit(record(now - 200LL * 3600 * 1000, "old@x", "r@y"));  // past 168 h
  for (int i = 0; i < 150; ++i) (*writer)->submit(record(now + i, "new@x", "r@y"));
  (*writer)->flush();
  auto r = TraceStore::open(path_, TraceStore::Mode::kReader);
  ASSERT_TRUE(r);
  for (int i = 0; i < 100 && *r->count() > 100; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(*r->count(), 100);
  TraceQuery q;
  q.sender = "old@x";
  EXPECT_TRUE(r->find(q)->empty());
}

TEST_F(TraceStoreTest, WriterErrorNamesTheFlag) {
  TraceConfig config;
  config.db_path = dir_ + "/no/such/dir/trace.db";
  auto writer = TraceWriter::start(config);
  ASSERT_FALSE(writer);
  EXPECT_EQ(writer.error().rfind("--trace_db: trace database '", 0), 0u) << writer.error();
}

TEST(TraceRecord, QueueIdAndMessageId) {
  EXPECT_EQ(queue_id_from_reply("250 2.0.0 Ok: queued as 4XyzAB12"), "4XyzAB12");
  EXPECT_EQ(queue_id_from_reply("250 OK id=1rA2b3-000Abc-Zz"), "1rA2b3-000Abc-Zz");
  EXPECT_EQ(queue_id_from_reply("250 2.0.0 Ok"), "");
  EXPECT_EQ(normalize_message_id(" <abc@host> "), "abc@host");
  EXPECT_EQ(normalize_message_id("abc@host"), "abc@host");
}

}  // namespace
}  // namespace mailgate::obs
