// chain_test.cc — the plugin host: loader errors, chain building, action semantics, replies,
// timeouts and fail modes, symbols and edits — with real .so test plugins (plugins/*.c).
#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <set>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include "chain/chain.h"
#include "chain/host_services.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace mailgate::chain {
namespace {

std::string plugin_path(const std::string& name) {
  return std::string(MAILGATE_TEST_PLUGIN_DIR) + "/" + name + ".so";
}

PluginSpec spec(const std::string& name, const std::string& script,
                FailMode mode = FailMode::kTempfail, int timeout_ms = 1000) {
  PluginSpec s;
  s.name = name;
  s.path = plugin_path("tp_" + name);
  s.settings_json = "{\"script\":\"" + script + "\"}";
  s.fail_mode = mode;
  s.timeout = std::chrono::milliseconds(timeout_ms);
  return s;
}

template <typename T>
T run_sync(asio::io_context& ctx, asio::awaitable<T> aw) {
  std::optional<T> out;
  asio::co_spawn(ctx, std::move(aw), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  ctx.restart();
  ctx.run();
  return std::move(*out);
}

class ChainTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Chain> build(const std::vector<PluginSpec>& specs) {
    auto c = Chain::build(specs, cache_);
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error());
    return c ? *c : nullptr;
  }
  Verdict run(std::shared_ptr<const Chain> chain, mg_stage stage, std::string text = "",
              std::vector<TraceEntry>* trace = nullptr) {
    if (!tx_) tx_ = std::make_shared<TxContext>(chain->entries().size());
    ChainRunner runner(chain, tx_, &pool_, ctx_.get_executor());
    runner.set_trace(trace);
    StageInput in;
    in.text = std::move(text);
    return run_sync(ctx_, runner.run(stage, std::move(in)));
  }

  asio::io_context ctx_;
  WorkerPool pool_{2, 16};
  PluginCache cache_;
  std::shared_ptr<TxContext> tx_;
};

TEST(PluginLoader, MissingFileReportsDlerror) {
  auto r = load_plugin("/nonexistent/x.so", host_table());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("plugin /nonexistent/x.so: cannot load: "), std::string::npos);
  EXPECT_NE(r.error().find("No such file or directory"), std::string::npos) << r.error();
}

TEST(PluginLoader, MissingEntrySymbol) {
  auto r = load_plugin(plugin_path("tp_broken_no_entry"), host_table());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("no symbol mailgate_plugin_entry"), std::string::npos) << r.error();
}

TEST(PluginLoader, WrongMajorNamesPluginAndBothVersions) {
  auto r = load_plugin(plugin_path("tp_broken_abi"), host_table());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("plugin 'broken'"), std::string::npos) << r.error();
  const std::string expected =
      "built for ABI 2.3, this mailgate has ABI 1." + std::to_string(MG_ABI_VERSION_MINOR);
  EXPECT_NE(r.error().find(expected), std::string::npos) << r.error();
}

TEST(PluginLoader, EntryReturningNull) {
  auto r = load_plugin(plugin_path("tp_broken_null"), host_table());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("entry point returned no descriptor"), std::string::npos) << r.error();
}

TEST(PluginLoader, LoadsGoodPlugin) {
  auto r = load_plugin(plugin_path("tp_gamma"), host_table());
  ASSERT_TRUE(r) << r.error();
  EXPECT_STREQ((*r)->name(), "gamma");
  EXPECT_TRUE((*r)->nonblocking());
}

TEST_F(ChainTest, DuplicateNameRefused) {
  auto c = Chain::build({spec("alpha", ""), spec("alpha", "")}, cache_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), "plugin 'alpha' appears twice in the chain");
}

TEST_F(ChainTest, NameMismatchRefused) {
  PluginSpec s = spec("alpha", "");
  s.name = "spf";
  auto c = Chain::build({s}, cache_);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().find("is the plugin 'alpha', not 'spf'"), std::string::npos) << c.error();
}

TEST_F(ChainTest, CreateFailureCarriesPluginMessage) {
  PluginSpec s = spec("alpha", "");
  s.settings_json = "{\"fail\":true}";
  auto c = Chain::build({s}, cache_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), "plugin 'alpha': create failed: refusing to start: settings say fail");
}

TEST_F(ChainTest, ContinueThenRejectWithPluginReply) {
  auto chain = build({spec("alpha", "rcpt=symbol:A_SEEN:1.5"),
                      spec("beta", "rcpt=reject:554:5.7.1:no thanks"),
                      spec("gamma", "rcpt=symbol:NEVER:1")});
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_RCPT, "user@example.test", &trace);
  EXPECT_EQ(v.action, MG_REJECT);
  EXPECT_EQ(v.plugin, "beta");
  EXPECT_EQ(v.reply.wire(), "554 5.7.1 no thanks\r\n");
  ASSERT_EQ(trace.size(), 2u);  // gamma never ran
  EXPECT_EQ(trace[0].plugin, "alpha");
  ASSERT_EQ(tx_->symbols.size(), 1u);
  EXPECT_EQ(tx_->symbols[0].name, "A_SEEN");
  EXPECT_EQ(tx_->symbols[0].plugin, "alpha");
}

TEST_F(ChainTest, AcceptSkipsRestOfStageOnly) {
  auto chain = build({spec("alpha", "mail=accept;rcpt=continue"), spec("beta", "mail=reject")});
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_MAIL, "a@example.org", &trace);
  EXPECT_EQ(v.action, MG_CONTINUE);
  EXPECT_EQ(v.plugin, "alpha");
  EXPECT_EQ(trace.size(), 1u);
}

TEST_F(ChainTest, ReplyCodeMismatchIsCorrected) {
  auto chain = build({spec("alpha", "mail=tempfail:550:5.1.1:nope")});
  Verdict v = run(chain, MG_STAGE_MAIL);
  EXPECT_EQ(v.action, MG_TEMPFAIL);
  EXPECT_EQ(v.reply.wire(), "451 4.7.1 nope\r\n");
}

TEST_F(ChainTest, DefaultRepliesWithoutSetReply) {
  auto chain = build({spec("alpha", "mail=reject;rcpt=tempfail")});
  EXPECT_EQ(run(chain, MG_STAGE_MAIL).reply.wire(), "550 5.7.1 Rejected by policy\r\n");
  EXPECT_EQ(run(chain, MG_STAGE_RCPT).reply.wire(),
            "451 4.7.1 Temporarily rejected by policy, try again later\r\n");
}

TEST_F(ChainTest, TimeoutFailClosedTempfails) {
  auto chain = build({spec("alpha", "eom=sleep:1500", FailMode::kTempfail, 100)});
  auto start = std::chrono::steady_clock::now();
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_EOM, "", &trace);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::milliseconds(1000));
  EXPECT_EQ(v.action, MG_TEMPFAIL);
  EXPECT_EQ(v.reply.wire(), "451 4.3.0 Temporary filter failure, try again later\r\n");
  ASSERT_EQ(trace.size(), 1u);
  EXPECT_NE(trace[0].note.find("timed out after 100 ms"), std::string::npos);
}

TEST_F(ChainTest, TimeoutFailOpenContinues) {
  auto chain = build({spec("alpha", "eom=sleep:1500", FailMode::kOpen, 100),
                      spec("beta", "eom=symbol:B:2")});
  Verdict v = run(chain, MG_STAGE_EOM);
  EXPECT_EQ(v.action, MG_CONTINUE);
  std::lock_guard lock(tx_->mu);
  ASSERT_EQ(tx_->symbols.size(), 1u);
  EXPECT_EQ(tx_->symbols[0].name, "B");
}

// Consecutive blocking plugins go to the pool as one job; each keeps its own timeout, counted
// from its own start: alpha's 300 ms is within its 1000 ms although the run has then taken
// longer than beta's 200, beta is abandoned after 200 ms of its own, and delta (after beta in
// the same run) still runs, on a fresh job, while beta sleeps on.
TEST_F(ChainTest, RunOfBlockingPluginsKeepsEachPluginsTimeout) {
  auto chain = build({spec("alpha", "eom=sleep:300", FailMode::kTempfail, 1000),
                      spec("beta", "eom=sleep:3000", FailMode::kOpen, 200),
                      spec("delta", "eom=symbol:D:1", FailMode::kTempfail, 1000)});
  auto start = std::chrono::steady_clock::now();
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_EOM, "", &trace);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  EXPECT_GE(took, std::chrono::milliseconds(500));  // alpha's 300 and beta's 200
  EXPECT_EQ(v.action, MG_CONTINUE);
  ASSERT_EQ(trace.size(), 3u);
  EXPECT_EQ(trace[0].plugin, "alpha");
  EXPECT_EQ(trace[0].note, "");
  EXPECT_EQ(trace[1].plugin, "beta");
  EXPECT_NE(trace[1].note.find("timed out after 200 ms; fail mode open"), std::string::npos)
      << trace[1].note;
  EXPECT_EQ(trace[2].plugin, "delta");
  EXPECT_EQ(trace[2].action, MG_CONTINUE);
  std::lock_guard lock(tx_->mu);
  ASSERT_EQ(tx_->symbols.size(), 1u);
  EXPECT_EQ(tx_->symbols[0].plugin, "delta");
}

// A plugin that decides the stage ends its run: the ones after it are never called.
TEST_F(ChainTest, RunOfBlockingPluginsStopsAtTheDecidingOne) {
  auto chain = build({spec("alpha", "mail=symbol:A:1"), spec("beta", "mail=tempfail"),
                      spec("delta", "mail=symbol:NEVER:1")});
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_MAIL, "a@example.test", &trace);
  EXPECT_EQ(v.action, MG_TEMPFAIL);
  EXPECT_EQ(v.plugin, "beta");
  ASSERT_EQ(trace.size(), 2u);
  std::lock_guard lock(tx_->mu);
  ASSERT_EQ(tx_->symbols.size(), 1u);
  EXPECT_EQ(tx_->symbols[0].name, "A");
}

// --- where callbacks run (ABI 1.4 threading hints) ------------------------------------------

double this_thread_id() { return static_cast<double>(::syscall(SYS_gettid)); }

class ChainThreadTest : public ChainTest {
 protected:
  // The score of the symbol `name` (the thread id a "tid:NAME" action recorded).
  double tid(const std::string& name) {
    std::lock_guard lock(tx_->mu);
    for (const auto& s : tx_->symbols)
      if (s.name == name) return s.score;
    ADD_FAILURE() << "no symbol " << name;
    return -1;
  }
};

// MG_PLUGIN_INLINE_STAGE(MG_STAGE_RCPT): RCPT on the I/O thread (here the test's), MAIL on the
// pool; DNS is refused where it was declared not to block.
TEST_F(ChainThreadTest, InlineStageRunsOnTheIoThreadOnlyInThatStage) {
  auto chain = build({spec("epsilon", "mail=tid:M;rcpt=tid:R")});
  run(chain, MG_STAGE_MAIL, "a@example.test");
  run(chain, MG_STAGE_RCPT, "b@example.test");
  EXPECT_NE(tid("M"), this_thread_id());
  EXPECT_EQ(tid("R"), this_thread_id());
}

// Store-only blocking: inline while the store is in memory, on the pool with one that may block.
class BlockingStore final : public store::Store {
 public:
  std::optional<int64_t> counter_add(std::string_view, int64_t d, uint32_t) override { return d; }
  std::optional<store::RateDecision> rate(std::string_view, const store::RateSpec&, uint32_t,
                                          bool) override {
    return std::nullopt;
  }
  std::optional<std::optional<std::string>> get(std::string_view) override { return std::nullopt; }
  store::SetResult set(std::string_view, std::string_view, uint32_t, bool) override {
    return store::SetResult::kUnavailable;
  }
  std::string describe() const override { return "test store that may block"; }
};

TEST_F(ChainThreadTest, StoreOnlyPluginRunsInlineWithTheStoreInMemory) {
  set_host_environment({});  // the default: an in-memory store
  auto chain = build({spec("zeta", "connect=tid:C")});
  run(chain, MG_STAGE_CONNECT);
  EXPECT_EQ(tid("C"), this_thread_id());
}

TEST_F(ChainThreadTest, StoreOnlyPluginGoesToThePoolWhenTheStoreMayBlock) {
  BlockingStore redis_like;
  HostEnvironment env;
  env.counters = &redis_like;
  set_host_environment(env);
  auto chain = build({spec("zeta", "connect=tid:C")});
  run(chain, MG_STAGE_CONNECT);
  set_host_environment({});
  EXPECT_NE(tid("C"), this_thread_id());
}

// One job covers the stage's blocking plugins and the inline ones between them; an inline one
// after the last blocking plugin stays on the I/O thread.
TEST_F(ChainThreadTest, OneJobSpansTheBlockingPluginsOfAStage) {
  auto chain = build({spec("alpha", "rcpt=tid:A"), spec("gamma", "rcpt=tid:G"),
                      spec("beta", "rcpt=tid:B"), spec("epsilon", "rcpt=tid:E")});
  std::vector<TraceEntry> trace;
  run(chain, MG_STAGE_RCPT, "b@example.test", &trace);
  EXPECT_EQ(trace.size(), 4u);
  EXPECT_NE(tid("A"), this_thread_id());
  EXPECT_EQ(tid("G"), tid("A"));  // non-blocking, but between two blocking ones: same job
  EXPECT_EQ(tid("B"), tid("A"));
  EXPECT_EQ(tid("E"), this_thread_id());
}

// MG_PLUGIN_TRY_INLINE (ABI 1.5): tried on the I/O thread with DNS from the cache; a query not
// cached sends the call to the pool, where it runs again and resolves.
class ChainTryTest : public ChainThreadTest {
 protected:
  void SetUp() override {
    HostEnvironment env;
    env.dns = [this](const std::string& name, mg_dns_type) {
      ++resolved;
      cached.insert(name);  // as the resolver's cache keeps a final answer
      DnsAnswer a;
      a.status = MG_DNS_OK;
      a.records.push_back({"192.0.2.1", 0, 300});
      return a;
    };
    env.dns_cached = [this](const std::string& name, mg_dns_type) -> std::optional<DnsAnswer> {
      ++cache_lookups;
      if (cached.count(name) == 0) return std::nullopt;
      DnsAnswer a;
      a.status = MG_DNS_OK;
      a.records.push_back({"192.0.2.1", 0, 300});
      return a;
    };
    env.counters = store_;
    set_host_environment(env);
  }
  void TearDown() override { set_host_environment({}); }
  size_t symbol_count(const std::string& name) {
    std::lock_guard lock(tx_->mu);
    size_t n = 0;
    for (const auto& s : tx_->symbols) n += s.name == name ? 1 : 0;
    return n;
  }
  uint64_t retries() { return obs::plugin_metrics("eta")->inline_retries.value(); }

  std::set<std::string> cached;  // written by the pool thread only while the test waits
  std::atomic<int> resolved{0};
  std::atomic<int> cache_lookups{0};
  store::Store* store_ = nullptr;  // nullptr: the default in-memory store
};

TEST_F(ChainTryTest, NotCachedRunsAgainOnThePoolOnce) {
  auto chain = build({spec("eta", "mail=dns:M:mx.example.test")});
  const uint64_t before = retries();
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_MAIL, "a@example.test", &trace);
  EXPECT_EQ(v.action, MG_CONTINUE);
  EXPECT_NE(tid("M"), this_thread_id());  // the pool's thread resolved it
  EXPECT_EQ(symbol_count("M"), 1u);       // the try left nothing behind
  EXPECT_EQ(resolved.load(), 1);
  EXPECT_EQ(retries(), before + 1);
  ASSERT_EQ(trace.size(), 1u);  // one call in the trace: the try is not one
  EXPECT_EQ(trace[0].action, MG_CONTINUE);
}

TEST_F(ChainTryTest, CachedRunsOnTheIoThread) {
  cached.insert("mx.example.test");
  auto chain = build({spec("eta", "mail=dns:M:mx.example.test")});
  const uint64_t before = retries();
  run(chain, MG_STAGE_MAIL, "a@example.test");
  EXPECT_EQ(tid("M"), this_thread_id());
  EXPECT_EQ(symbol_count("DNS_STATUS"), 1u);
  EXPECT_EQ(resolved.load(), 0);
  EXPECT_EQ(cache_lookups.load(), 1);
  EXPECT_EQ(retries(), before);
}

TEST_F(ChainTryTest, NoTryWhenTheStoreMayBlock) {
  BlockingStore redis_like;
  HostEnvironment env;
  env.counters = &redis_like;
  env.dns = [this](const std::string&, mg_dns_type) {
    ++resolved;
    DnsAnswer a;
    a.status = MG_DNS_NXDOMAIN;
    return a;
  };
  env.dns_cached = [this](const std::string&, mg_dns_type) -> std::optional<DnsAnswer> {
    ++cache_lookups;
    return std::nullopt;
  };
  set_host_environment(env);
  auto chain = build({spec("eta", "mail=dns:M:mx.example.test")});
  run(chain, MG_STAGE_MAIL, "a@example.test");
  EXPECT_NE(tid("M"), this_thread_id());
  EXPECT_EQ(cache_lookups.load(), 0);
  EXPECT_EQ(resolved.load(), 1);
}

// HEADER is one call per field: never tried (a retry would repeat the first fields).
TEST_F(ChainTryTest, HeaderStageIsNotTried) {
  auto chain = build({spec("eta", "header=dns:H:mx.example.test")});
  if (!tx_) tx_ = std::make_shared<TxContext>(chain->entries().size());
  ChainRunner runner(chain, tx_, &pool_, ctx_.get_executor());
  StageInput in;
  in.headers.push_back({"Subject", "one", "Subject: one\r\n"});
  run_sync(ctx_, runner.run(MG_STAGE_HEADER, std::move(in)));
  EXPECT_NE(tid("H"), this_thread_id());
  EXPECT_EQ(cache_lookups.load(), 0);
}

// MG_RETRY_BLOCKING is an answer to a try only: from any other call it is an invalid action.
TEST_F(ChainTryTest, RetryOutsideATryIsAFailure) {
  auto chain = build({spec("alpha", "mail=retry", FailMode::kTempfail)});
  Verdict v = run(chain, MG_STAGE_MAIL, "a@example.test");
  EXPECT_EQ(v.action, MG_TEMPFAIL);
  EXPECT_EQ(v.reply.code, 451);
}

// A try that answers MG_RETRY_BLOCKING again on the pool is a failure too (no loop).
TEST_F(ChainTryTest, RetryFromThePoolIsAFailure) {
  auto chain = build({spec("eta", "mail=retry", FailMode::kOpen)});
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_MAIL, "a@example.test", &trace);
  EXPECT_EQ(v.action, MG_CONTINUE);  // fail mode open
  ASSERT_EQ(trace.size(), 1u);
  EXPECT_NE(trace[0].note.find("invalid action 5"), std::string::npos) << trace[0].note;
}

TEST_F(ChainTest, InvalidActionIsAFailure) {
  auto chain = build({spec("gamma", "helo=invalid", FailMode::kTempfail)});
  std::vector<TraceEntry> trace;
  Verdict v = run(chain, MG_STAGE_HELO, "x", &trace);
  EXPECT_EQ(v.action, MG_TEMPFAIL);
  EXPECT_NE(trace[0].note.find("returned invalid action 99"), std::string::npos);
}

TEST_F(ChainTest, ScoresAreVisibleToLaterPlugins) {
  auto chain = build({spec("alpha", "eom=symbol:X:1.25"), spec("gamma", "eom=symbol:Y:2"),
                      spec("beta", "eom=count")});
  run(chain, MG_STAGE_EOM);
  std::lock_guard lock(tx_->mu);
  ASSERT_EQ(tx_->symbols.size(), 3u);
  EXPECT_DOUBLE_EQ(tx_->symbols[2].score, 3.25);
  EXPECT_DOUBLE_EQ(tx_->score(), 6.5);
}

TEST_F(ChainTest, HeaderAddOnlyFromEomAndRewriteOnlyAtRcpt) {
  auto chain = build({spec("alpha", "eom=header:X-Checked:yes;mail=header:X-Too-Early:1;"
                                    "rcpt=rewrite:new@example.test")});
  EXPECT_EQ(run(chain, MG_STAGE_MAIL).action, MG_TEMPFAIL);  // header_add refused at MAIL
  EXPECT_EQ(run(chain, MG_STAGE_RCPT).action, MG_CONTINUE);
  EXPECT_EQ(run(chain, MG_STAGE_EOM).action, MG_CONTINUE);
  std::lock_guard lock(tx_->mu);
  ASSERT_EQ(tx_->headers.size(), 1u);
  EXPECT_EQ(tx_->headers[0].name, "X-Checked");
  EXPECT_EQ(tx_->headers[0].value, "yes");
  EXPECT_EQ(tx_->rewritten_rcpt.value_or(""), "new@example.test");
}

TEST_F(ChainTest, DataSlotLivesForTheTransaction) {
  auto chain = build({spec("alpha", "mail=data;eom=data")});
  EXPECT_EQ(run(chain, MG_STAGE_MAIL).action, MG_CONTINUE);
  EXPECT_EQ(run(chain, MG_STAGE_EOM).action, MG_CONTINUE);
  {
    std::lock_guard lock(tx_->mu);
    tx_->reset_transaction();
  }
  EXPECT_EQ(run(chain, MG_STAGE_EOM).action, MG_REJECT);  // slot freed with the transaction
}

TEST_F(ChainTest, DiscardBeforeMailBecomesReject) {
  auto chain = build({spec("alpha", "helo=discard;mail=discard")});
  EXPECT_EQ(run(chain, MG_STAGE_HELO, "x").action, MG_REJECT);
  EXPECT_EQ(run(chain, MG_STAGE_MAIL).action, MG_DISCARD);
}

TEST_F(ChainTest, FullPoolAppliesFailMode) {
  WorkerPool tiny(1, 1);
  auto chain = build({spec("alpha", "eom=sleep:300", FailMode::kTempfail, 2000)});
  tx_ = std::make_shared<TxContext>(1);
  // Occupy the only worker and the only queue slot.
  ASSERT_TRUE(tiny.submit([] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }));
  for (int i = 0; i < 100 && tiny.queued() > 0; ++i)  // wait until the worker took it
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(tiny.submit([] {}));
  ChainRunner runner(chain, tx_, &tiny, ctx_.get_executor());
  Verdict v = run_sync(ctx_, runner.run(MG_STAGE_EOM, StageInput{}));
  EXPECT_EQ(v.action, MG_TEMPFAIL);
}

}  // namespace
}  // namespace mailgate::chain
