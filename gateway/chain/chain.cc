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

// A call on the worker pool, awaited with a deadline. Shared by the waiting coroutine and the
// worker's completion; every field is touched on the session's thread only (the completion
// is posted there). The timer lives in the coroutine's frame: `timer` is valid only while
// `finished` is false, and the frame sets `finished` when it stops waiting or is destroyed.
struct PendingCall {
  asio::steady_timer* timer = nullptr;
  bool done = false;      // the result arrived
  bool finished = false;  // the coroutine stopped waiting
  int action = MG_CONTINUE;
  std::string error;
};

// Marks the pending call finished however the waiting frame ends (resumed or destroyed).
struct FinishOnExit {
  std::shared_ptr<PendingCall> pending;
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
  std::shared_ptr<const StageInput> shared_input;  // made on first use by a pool call
  for (size_t i = 0; i < chain_->entries().size(); ++i) {
    const ChainEntry& e = chain_->entries()[i];
    if (!has_callback(e.plugin->descriptor(), stage)) continue;
    auto call = std::make_shared<CallContext>();
    call->tx = tx_;
    call->plugin_index = i;
    call->plugin_name = e.name;
    call->nonblocking = e.plugin->nonblocking();
    call->stage = stage;
    auto started = Clock::now();
    CallResult result;
    if (call->nonblocking || pool_ == nullptr) {
      std::string error;
      int a = guarded_invoke(e, *call, stage, shared_input ? *shared_input : input, &error);
      result = check_action(a, error);
      auto took = Clock::now() - started;
      if (call->nonblocking && took > e.timeout)
        MG_LOG_WARNING("plugin {}: non-blocking {} callback took {} ms (timeout {} ms)", e.name,
                       stage_name(stage),
                       std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
                       e.timeout.count());
    } else {
      if (!shared_input) shared_input = std::make_shared<const StageInput>(std::move(input));
      auto pending = std::make_shared<PendingCall>();
      asio::steady_timer timer(executor_);
      timer.expires_after(e.timeout);
      pending->timer = &timer;
      FinishOnExit finish{pending};
      auto job = [chain = chain_, call, pending, shared_input, i, stage,
                  completions = completions_] {
        std::string error;
        int a = guarded_invoke(chain->entries()[i], *call, stage, *shared_input, &error);
        completions->post([pending, a, error = std::move(error)]() mutable {
          if (pending->finished) return;  // the session gave up on us
          pending->done = true;
          pending->action = a;
          pending->error = std::move(error);
          pending->timer->cancel();
        });
      };
      if (!pool_->submit(std::move(job))) {
        result.failure = "worker pool is full";
      } else {
        std::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        // Nothing below suspends, so no completion can run before `finish` ends the wait.
        if (pending->done) {
          result = check_action(pending->action, pending->error);
        } else {
          call->abandoned = true;
          result.failure = "timed out after " + std::to_string(e.timeout.count()) + " ms";
        }
      }
    }
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();

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
      t.reply = reply_for(result.action, *call);
    } else if (result.action == MG_DISCARD && stage < MG_STAGE_MAIL) {
      t.action = MG_REJECT;  // nothing to discard yet: refuse instead
      t.note = "discard before MAIL treated as reject";
      t.reply = smtp::Reply::make(550, "5.7.1", "Rejected by policy");
    }
    obs::count_plugin_call(e.metrics, t.action, !result.ok, ms);
    if (trace_ != nullptr) trace_->push_back(t);
    if (stage == MG_STAGE_RESET || stage == MG_STAGE_CLOSE) continue;
    if (t.action == MG_CONTINUE) continue;
    verdict.action = t.action;
    verdict.reply = t.reply;
    verdict.plugin = e.name;
    if (t.action == MG_ACCEPT) verdict.action = MG_CONTINUE;  // the stage passes
    break;
  }
  co_return verdict;
}

}  // namespace mailgate::chain
