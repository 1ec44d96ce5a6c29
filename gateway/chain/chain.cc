// chain/chain.cc — see chain.h.
#include "chain/chain.h"

#include <atomic>

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "chain/call_context.h"
#include "chain/host_services.h"
#include "log/log.h"
#include "obs/metrics.h"
#include "spool/spool.h"

namespace mailgate::chain {
namespace {

using Clock = std::chrono::steady_clock;

bool has_callback(const mg_plugin& d, mg_stage s) {
  switch (s) {
    case MG_STAGE_CONNECT: return d.on_connect != nullptr;
    case MG_STAGE_HELO: return d.on_helo != nullptr;
    case MG_STAGE_MAIL: return d.on_mail != nullptr;
    case MG_STAGE_RCPT: return d.on_rcpt != nullptr;
    case MG_STAGE_DATA: return d.on_data != nullptr;
    case MG_STAGE_HEADER: return d.on_header != nullptr;
    case MG_STAGE_EOH: return d.on_eoh != nullptr;
    case MG_STAGE_BODY: return d.on_body != nullptr;
    case MG_STAGE_EOM: return d.on_eom != nullptr;
    case MG_STAGE_RESET: return d.on_reset != nullptr;
    case MG_STAGE_CLOSE: return d.on_close != nullptr;
    case MG_STAGE_COUNT: break;
  }
  return false;
}

constexpr size_t kBodyChunk = 64 * 1024;

// Calls the plugin's callback for `stage` (all headers for HEADER, all chunks for BODY).
// Returns the action as the plugin gave it (possibly out of range: the caller checks).
int invoke(const ChainEntry& e, CallContext& call, mg_stage stage, const StageInput& in) {
  const mg_plugin& d = e.plugin->descriptor();
  mg_session* h = call.handle();
  switch (stage) {
    case MG_STAGE_CONNECT: return d.on_connect(e.state, h);
    case MG_STAGE_HELO: return d.on_helo(e.state, h, in.text.c_str());
    case MG_STAGE_MAIL: return d.on_mail(e.state, h, in.text.c_str());
    case MG_STAGE_RCPT: return d.on_rcpt(e.state, h, in.text.c_str());
    case MG_STAGE_DATA: return d.on_data(e.state, h);
    case MG_STAGE_HEADER:
      for (const HeaderField& f : in.headers) {
        int a = d.on_header(e.state, h, f.name.c_str(), f.value.c_str());
        if (a != MG_CONTINUE) return a;
      }
      return MG_CONTINUE;
    case MG_STAGE_EOH: return d.on_eoh(e.state, h);
    case MG_STAGE_BODY: {
      std::string chunk;
      for (uint64_t offset = 0;; offset += chunk.size()) {
        {
          std::lock_guard lock(call.tx->mu);
          const spool::Spool* spool = call.tx->spool;
          if (spool == nullptr || call.abandoned.load()) return MG_CONTINUE;
          spool::Spool::Reader reader(*spool, call.tx->body_offset + offset);
          if (!reader.next(chunk, kBodyChunk)) return MG_CONTINUE;
        }
        int a = d.on_body(e.state, h, reinterpret_cast<const unsigned char*>(chunk.data()),
                          chunk.size());
        if (a != MG_CONTINUE) return a;
      }
    }
    case MG_STAGE_EOM: return d.on_eom(e.state, h);
    case MG_STAGE_RESET: d.on_reset(e.state, h); return MG_CONTINUE;
    case MG_STAGE_CLOSE: d.on_close(e.state, h); return MG_CONTINUE;
    case MG_STAGE_COUNT: break;
  }
  return MG_CONTINUE;
}

// invoke() with everything a plugin can throw at us caught.
int guarded_invoke(const ChainEntry& e, CallContext& call, mg_stage stage, const StageInput& in,
                   std::string* error) {
  try {
    return invoke(e, call, stage, in);
  } catch (const std::exception& ex) {
    *error = std::string("threw: ") + ex.what();
  } catch (...) {
    *error = "threw an unknown exception";
  }
  return -1;
}

bool valid_enhanced(const std::string& e, char klass) {
  if (e.size() < 5 || e[0] != klass || e[1] != '.') return false;
  size_t dots = 0, digits = 0;
  for (size_t i = 2; i < e.size(); ++i) {
    if (e[i] == '.') {
      if (digits == 0 || ++dots > 1) return false;
      digits = 0;
    } else if (e[i] >= '0' && e[i] <= '9') {
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return dots == 1 && digits > 0;
}

smtp::Reply reply_for(mg_action action, const CallContext& call) {
  std::lock_guard lock(call.tx->mu);
  bool temp = action == MG_TEMPFAIL;
  int code = call.reply_code;
  std::string enhanced = call.reply_enhanced;
  std::string text = call.reply_text;
  if (temp ? (code < 400 || code > 499) : (code < 500 || code > 599)) code = temp ? 451 : 550;
  if (!valid_enhanced(enhanced, temp ? '4' : '5')) enhanced = temp ? "4.7.1" : "5.7.1";
  if (text.empty()) text = temp ? "Temporarily rejected by policy, try again later"
                                : "Rejected by policy";
  return smtp::Reply::make(code, enhanced, text);
}

// What a plugin call ended as, before fail modes.
struct CallResult {
  bool ok = false;      // the plugin answered in time with a valid action
  mg_action action = MG_CONTINUE;
  std::string failure;  // why not ok
};

// A run of consecutive blocking plugins of one stage, sent to the worker pool as one job:
// one thread hop there and back per run instead of one per plugin (the hops, not the plugins,
// were most of a full chain's cost). Each plugin keeps its own timeout: the worker publishes
// which plugin it is running and since when, and the waiting session abandons the one that
// overruns. Session-thread fields: timer, done, finished (the completion is posted there).
// Shared: `progress` and each slot's `started`; a slot's result is written by the worker
// before it moves `progress` past that slot (release) and read by the session after it saw
// that (acquire), or after the completion arrived.
struct PendingRun {
  static constexpr uint32_t kAbandoned = 0x80000000u;  // or-ed into progress by the session
  struct Slot {
    std::atomic<Clock::rep> started{0};  // when this plugin's call began (its deadline base)
    int action = MG_CONTINUE;
    std::string error;
    double ms = 0;
  };
  explicit PendingRun(size_t n) : slots(new Slot[n]), count(n) {}

  asio::steady_timer* timer = nullptr;
  bool done = false;      // the completion arrived: every slot up to `last` holds a result
  bool finished = false;  // the coroutine stopped waiting
  size_t last = 0;        // the last slot the worker ran (valid once done)
  std::atomic<uint32_t> progress{0};  // the slot running now; count when the run is over
  std::unique_ptr<Slot[]> slots;
  size_t count;
};

// Marks the pending run finished however the waiting frame ends (resumed or destroyed).
struct FinishOnExit {
  std::shared_ptr<PendingRun> pending;
  ~FinishOnExit() {
    pending->finished = true;
    pending->timer = nullptr;
  }
};

CallResult check_action(int a, const std::string& error) {
  CallResult r;
  if (!error.empty()) {
    r.failure = error;
  } else if (a == MG_FAILED) {
    r.failure = "reported a failure";
  } else if (a < MG_CONTINUE || a > MG_DISCARD) {
    r.failure = "returned invalid action " + std::to_string(a);
  } else {
    r.ok = true;
    r.action = static_cast<mg_action>(a);
  }
  return r;
}

// Whether the chain goes on to the next plugin after this outcome (the rule run() applies,
// also used by the worker to know when a run of pool calls ends).
bool chain_continues(const CallResult& r, FailMode fail_mode, mg_stage stage) {
  if (stage == MG_STAGE_RESET || stage == MG_STAGE_CLOSE) return true;
  if (!r.ok) return fail_mode == FailMode::kOpen;
  return r.action == MG_CONTINUE;
}

}  // namespace

const char* stage_name(mg_stage stage) {
  static const char* const kNames[] = {"connect", "helo", "mail",  "rcpt",  "data", "header",
                                       "eoh",     "body", "eom",   "reset", "close"};
  return stage >= 0 && stage < MG_STAGE_COUNT ? kNames[stage] : "?";
}

const char* action_name(mg_action action) {
  switch (action) {
    case MG_CONTINUE: return "continue";
    case MG_ACCEPT: return "accept";
    case MG_TEMPFAIL: return "tempfail";
    case MG_REJECT: return "reject";
    case MG_DISCARD: return "discard";
    case MG_FAILED: return "failed";
    case MG_RETRY_BLOCKING: return "retry-blocking";
  }
  return "?";
}

Expected<std::shared_ptr<LoadedPlugin>, std::string> PluginCache::get(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = loaded_.find(path);
  if (it != loaded_.end()) {
    if (auto p = it->second.lock()) return p;
  }
  auto loaded = load_plugin(path, host_table());
  if (!loaded) return loaded;
  loaded_[path] = *loaded;
  return loaded;
}

Expected<std::shared_ptr<const Chain>, std::string> Chain::build(
    const std::vector<PluginSpec>& specs, PluginCache& cache) {
  std::shared_ptr<Chain> chain(new Chain());
  for (const PluginSpec& spec : specs) {
    for (const ChainEntry& e : chain->entries_) {
      if (e.name == spec.name)
        return unexpected("plugin '" + spec.name + "' appears twice in the chain");
    }
    auto loaded = cache.get(spec.path);
    if (!loaded) {
      // Name the chain entry: the admin fixes it by name, and the file name need not match.
      std::string error = loaded.error();
      std::string prefix = "plugin " + spec.path + ": ";
      if (error.rfind(prefix, 0) == 0)
        return unexpected("plugin '" + spec.name + "' (" + spec.path + "): " +
                          error.substr(prefix.size()));
      return unexpected("chain entry '" + spec.name + "': " + error);
    }
    const mg_plugin& d = (*loaded)->descriptor();
    if (spec.name != d.name)
      return unexpected("plugin '" + spec.name + "': " + spec.path + " is the plugin '" +
                        d.name + "', not '" + spec.name + "'");
    ChainEntry e;
    e.name = spec.name;
    e.metrics = obs::plugin_metrics(spec.name);
    e.plugin = *loaded;
    e.fail_mode = spec.fail_mode;
    e.timeout = spec.timeout;
    if (d.create != nullptr) {
      char err[512] = {};
      ScopedPluginName scoped(d.name);
      e.state = d.create(host_table(), spec.settings_json.c_str(), err, sizeof err);
      if (e.state == nullptr) {
        err[sizeof err - 1] = 0;
        return unexpected("plugin '" + spec.name + "': create failed: " +
                          (err[0] != 0 ? std::string(err) : std::string("no reason given")));
      }
    }
    chain->entries_.push_back(std::move(e));
  }
  return std::shared_ptr<const Chain>(std::move(chain));
}

Chain::~Chain() {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    const mg_plugin& d = it->plugin->descriptor();
    if (d.destroy != nullptr && it->state != nullptr) {
      ScopedPluginName scoped(d.name);
      d.destroy(it->state);
    }
  }
}

bool Chain::wants(mg_stage stage) const {
  for (const ChainEntry& e : entries_)
    if (has_callback(e.plugin->descriptor(), stage)) return true;
  return false;
}

ChainRunner::ChainRunner(std::shared_ptr<const Chain> chain, std::shared_ptr<TxContext> tx,
                         WorkerPool* pool, asio::any_io_executor executor,
                         std::shared_ptr<PostTarget> completions)
    : chain_(std::move(chain)),
      tx_(std::move(tx)),
      pool_(pool),
      executor_(std::move(executor)),
      completions_(completions ? std::move(completions)
                               : std::make_shared<PostTarget>(executor_)) {}

asio::awaitable<Verdict> ChainRunner::run(mg_stage stage, StageInput input) {
  Verdict verdict;
  if (!chain_) co_return verdict;
  {
    std::lock_guard lock(tx_->mu);
    tx_->stage = stage;
  }
  const std::vector<ChainEntry>& entries = chain_->entries();
  const bool store_blocks = store_may_block();
  // Declared not to block in this stage: run on this thread, and refused DNS wherever it runs.
  auto declared_inline = [&](size_t k) { return entries[k].plugin->runs_inline(stage, store_blocks); };
  // Blocking, but tried here first with DNS from the cache (MG_PLUGIN_TRY_INLINE).
  auto tries_inline = [&](size_t k) { return entries[k].plugin->tries_inline(stage, store_blocks); };
  auto make_call = [&](size_t i) {
    auto call = std::make_shared<CallContext>();
    call->tx = tx_;
    call->plugin_index = i;
    call->plugin_name = entries[i].name;
    call->nonblocking = declared_inline(i);
    call->stage = stage;
    return call;
  };
  // Applies one plugin's outcome (fail modes, trace); true when it decides the stage.
  auto conclude = [&](size_t i, const CallContext& call, const CallResult& result, double ms) {
    const ChainEntry& e = entries[i];
    TraceEntry t{e.name, stage, result.action, {}, {}, ms};
    if (!result.ok) {
      bool open = e.fail_mode == FailMode::kOpen;
      MG_LOG_WARNING("plugin {}: {} {}: fail mode {}", e.name, stage_name(stage), result.failure,
                     open ? "open" : "tempfail");
      t.note = result.failure + (open ? "; fail mode open" : "; fail mode tempfail");
      if (open) {
        t.action = MG_CONTINUE;
      } else {
        t.action = MG_TEMPFAIL;
        t.reply = smtp::Reply::make(451, "4.3.0", "Temporary filter failure, try again later");
      }
    } else if (result.action == MG_TEMPFAIL || result.action == MG_REJECT) {
      t.reply = reply_for(result.action, call);
    } else if (result.action == MG_DISCARD && stage < MG_STAGE_MAIL) {
      t.action = MG_REJECT;  // nothing to discard yet: refuse instead
      t.note = "discard before MAIL treated as reject";
      t.reply = smtp::Reply::make(550, "5.7.1", "Rejected by policy");
    }
    obs::count_plugin_call(e.metrics, t.action, !result.ok, ms);
    if (trace_ != nullptr) trace_->push_back(t);
    if (stage == MG_STAGE_RESET || stage == MG_STAGE_CLOSE) return false;
    if (t.action == MG_CONTINUE) return false;
    verdict.action = t.action;
    verdict.reply = t.reply;
    verdict.plugin = e.name;
    if (t.action == MG_ACCEPT) verdict.action = MG_CONTINUE;  // the stage passes
    return true;
  };

  std::shared_ptr<const StageInput> shared_input;  // made on first use by a pool call
  for (size_t i = 0; i < entries.size();) {
    const ChainEntry& e = entries[i];
    if (!has_callback(e.plugin->descriptor(), stage)) {
      ++i;
      continue;
    }
    const bool here = declared_inline(i) || pool_ == nullptr;
    if (here || tries_inline(i)) {
      auto call = make_call(i);
      call->cache_only = !here;
      auto started = Clock::now();
      std::string error;
      int a = guarded_invoke(e, *call, stage, shared_input ? *shared_input : input, &error);
      auto took = Clock::now() - started;
      if ((call->nonblocking || call->cache_only) && took > e.timeout)
        MG_LOG_WARNING("plugin {}: {} callback on the I/O thread took {} ms (timeout {} ms)",
                       e.name, stage_name(stage),
                       std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                       e.timeout.count());
      if (call->cache_only && a == MG_RETRY_BLOCKING && error.empty()) {
        // An answer was not cached: the pool runs it again, from here on (below).
        if (e.metrics != nullptr) e.metrics->inline_retries.inc();
      } else {
        double ms = std::chrono::duration<double, std::milli>(took).count();
        if (conclude(i, *call, check_action(a, error), ms)) break;
        ++i;
        continue;
      }
    }

    // The run for the pool: from this blocking plugin to the last blocking one of the stage,
    // taking along the inline ones between them (one hop rather than one per blocking
    // stretch; every plugin is thread-safe). Inline ones after the last stay on this thread.
    std::vector<size_t> run;
    size_t blocking_end = 0;  // run[0, blocking_end) ends with a blocking plugin
    for (size_t k = i; k < entries.size(); ++k) {
      if (!has_callback(entries[k].plugin->descriptor(), stage)) continue;
      run.push_back(k);
      if (!declared_inline(k)) blocking_end = run.size();
    }
    run.resize(blocking_end);
    std::vector<std::shared_ptr<CallContext>> calls;
    for (size_t k : run) calls.push_back(make_call(k));
    if (!shared_input) shared_input = std::make_shared<const StageInput>(std::move(input));
    auto pending = std::make_shared<PendingRun>(run.size());
    asio::steady_timer timer(executor_);
    pending->timer = &timer;
    FinishOnExit finish{pending};
    pending->slots[0].started.store(Clock::now().time_since_epoch().count());
    auto job = [chain = chain_, calls, run, pending, shared_input, stage,
                completions = completions_] {
      size_t m = 0;
      for (;; ++m) {
        const ChainEntry& entry = chain->entries()[run[m]];
        auto started = Clock::now();
        PendingRun::Slot& slot = pending->slots[m];
        slot.action = guarded_invoke(entry, *calls[m], stage, *shared_input, &slot.error);
        slot.ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
        bool more = m + 1 < run.size() &&
                    chain_continues(check_action(slot.action, slot.error), entry.fail_mode, stage);
        if (more) pending->slots[m + 1].started.store(Clock::now().time_since_epoch().count());
        uint32_t expected = static_cast<uint32_t>(m);
        uint32_t next = more ? expected + 1 : static_cast<uint32_t>(run.size());
        // Fails only when the session gave up on plugin m (timeout): stop there.
        if (!pending->progress.compare_exchange_strong(expected, next,
                                                       std::memory_order_acq_rel) ||
            !more)
          break;
      }
      completions->post([pending, m] {
        if (pending->finished) return;  // the session gave up on us
        pending->done = true;
        pending->last = m;
        pending->timer->cancel();
      });
    };

    size_t resume = run.back() + 1;  // where the chain goes on after this run
    if (!pool_->submit(std::move(job))) {
      CallResult result;
      result.failure = "worker pool is full";
      if (conclude(run[0], *calls[0], result, 0)) break;
      i = run[0] + 1;
      continue;
    }
    // Wait for the run, re-arming the deadline as the worker moves from plugin to plugin.
    size_t ran = 0;           // slots [0, ran) hold results to apply
    bool timed_out = false;   // slot `ran` was abandoned after its timeout
    for (;;) {
      uint32_t at = pending->progress.load(std::memory_order_acquire);
      if (at < run.size()) {
        auto deadline = Clock::time_point(Clock::duration(pending->slots[at].started.load())) +
                        entries[run[at]].timeout;
        if (Clock::now() >= deadline) {
          uint32_t expected = at;
          if (pending->progress.compare_exchange_strong(expected, at | PendingRun::kAbandoned,
                                                        std::memory_order_acq_rel)) {
            calls[at]->abandoned = true;
            ran = at;
            timed_out = true;
            break;
          }
          continue;  // the worker just moved on
        }
        timer.expires_at(deadline);
      } else {
        timer.expires_at(Clock::time_point::max());  // over: the completion is on its way
      }
      std::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      // Nothing below suspends, so no completion can run before `finish` ends the wait.
      if (pending->done) {
        ran = pending->last + 1;
        break;
      }
    }
    bool decided = false;
    for (size_t m = 0; m < ran && !decided; ++m) {
      const PendingRun::Slot& slot = pending->slots[m];
      decided = conclude(run[m], *calls[m], check_action(slot.action, slot.error), slot.ms);
      resume = run[m] + 1;
    }
    if (decided) break;
    if (timed_out) {
      const ChainEntry& late = entries[run[ran]];
      CallResult result;
      result.failure = "timed out after " + std::to_string(late.timeout.count()) + " ms";
      double ms = std::chrono::duration<double, std::milli>(
                      Clock::now() -
                      Clock::time_point(Clock::duration(pending->slots[ran].started.load())))
                      .count();
      if (conclude(run[ran], *calls[ran], result, ms)) break;
      resume = run[ran] + 1;
    }
    i = resume;
  }
  co_return verdict;
}

}  // namespace mailgate::chain
