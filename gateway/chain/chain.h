// chain/chain.h — an ordered chain of loaded plugins with their state, and the runner that
// takes one session through it stage by stage.
// Owns: plugin instances (create() on build, destroy() when the last session using the chain
// lets go), the semantics of actions (CONTINUE goes on; ACCEPT ends the stage for the rest of
// the chain; TEMPFAIL, REJECT and DISCARD end it with a verdict), default replies, timeouts
// and fail modes (a plugin that errs, throws or runs past its timeout gives its fail mode:
// open = as if CONTINUE, tempfail = 451 4.3.0), and the per-plugin trace.
// Must not touch: sockets or the backend; the session applies the verdict.
// Threading: a Chain is immutable and shared by sessions on all threads. A ChainRunner is one
// session's, used on its I/O thread; blocking plugins run on the WorkerPool while it waits.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "chain/plugin_loader.h"
#include "chain/post_target.h"
#include "chain/tx_context.h"
#include "chain/worker_pool.h"
#include "smtp/reply.h"
#include "util/expected.h"

namespace mailgate::obs {
struct PluginMetrics;
}

namespace mailgate::chain {

enum class FailMode {
  kOpen,      // a failed plugin counts as CONTINUE
  kTempfail,  // a failed plugin refuses with 451 4.3.0
};

// One chain position as configured (from the policy database).
struct PluginSpec {
  std::string name;  // the row's name; must match the plugin's own
  std::string path;
  std::string settings_json = "{}";
  FailMode fail_mode = FailMode::kTempfail;
  std::chrono::milliseconds timeout{5000};
};

struct ChainEntry {
  std::string name;
  obs::PluginMetrics* metrics = nullptr;  // this plugin's counters (obs/metrics.h)
  std::shared_ptr<LoadedPlugin> plugin;
  void* state = nullptr;
  FailMode fail_mode = FailMode::kTempfail;
  std::chrono::milliseconds timeout{5000};
};

// Keeps .so files loaded across chain rebuilds so a policy reload does not dlopen again.
class PluginCache {
 public:
  Expected<std::shared_ptr<LoadedPlugin>, std::string> get(const std::string& path);

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<LoadedPlugin>> loaded_;
};

class Chain {
 public:
  // Loads and creates every plugin in order. Errors name the plugin and say what failed;
  // plugins created before the failure are destroyed again.
  static Expected<std::shared_ptr<const Chain>, std::string> build(
      const std::vector<PluginSpec>& specs, PluginCache& cache);
  ~Chain();
  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;

  const std::vector<ChainEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  // Which stages any plugin has a callback for.
  bool wants(mg_stage stage) const;

 private:
  Chain() = default;
  std::vector<ChainEntry> entries_;
};

// What a stage decided.
struct Verdict {
  mg_action action = MG_CONTINUE;
  smtp::Reply reply;   // for TEMPFAIL/REJECT: what the client gets
  std::string plugin;  // who decided (empty for CONTINUE)
};

// One plugin's outcome, for mailgatectl check and logs.
struct TraceEntry {
  std::string plugin;
  mg_stage stage;
  mg_action action;
  smtp::Reply reply;
  std::string note;  // "timeout after 200 ms: fail mode tempfail", ...
  double milliseconds = 0;
};

// The arguments of a stage.
struct StageInput {
  std::string text;                  // HELO name, sender or recipient
  std::vector<HeaderField> headers;  // HEADER stage: every field in order
};

const char* stage_name(mg_stage stage);
const char* action_name(mg_action action);

class ChainRunner {
 public:
  // `completions` carries results of pool calls back to `executor`; its owner closes it
  // before destroying the io_context. When null, one is made that is never closed (fine when
  // the io_context outlives the pool, as in tests and mailgatectl).
  ChainRunner(std::shared_ptr<const Chain> chain, std::shared_ptr<TxContext> tx,
              WorkerPool* pool, asio::any_io_executor executor,
              std::shared_ptr<PostTarget> completions = nullptr);

  // Runs `stage` through the chain. BODY reads the body from tx->spool (from body_offset).
  // RESET and CLOSE are notifications: every plugin gets them and the verdict is CONTINUE.
  asio::awaitable<Verdict> run(mg_stage stage, StageInput input);

  bool wants(mg_stage stage) const { return chain_ && chain_->wants(stage); }
  const std::shared_ptr<TxContext>& tx() const { return tx_; }
  // When set, every plugin call is recorded here.
  void set_trace(std::vector<TraceEntry>* trace) { trace_ = trace; }

 private:
  std::shared_ptr<const Chain> chain_;
  std::shared_ptr<TxContext> tx_;
  WorkerPool* pool_;
  asio::any_io_executor executor_;
  std::shared_ptr<PostTarget> completions_;
  std::vector<TraceEntry>* trace_ = nullptr;
};

}  // namespace mailgate::chain
