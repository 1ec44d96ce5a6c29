// ctl/bayes_commands.cc — `learn --spam|--ham PATH...` and `classify FILE...`: the Bayes
// classifier's token counts, with the very tokenizer and classifier the bayes plugin runs
// (mailgate_bayes_core, plugins/bayes/lib/).
// Which token store: --bayes-db FILE (SQLite, created by learn when missing), or --redis
// HOST:PORT (the gateway's shared counters, as the plugin's backend "store" uses them, under
// --key-prefix, default "bayes"); with neither, the bayes plugin's own settings from the policy
// database (--db): its "db" file, or an error asking for --redis when it uses the store.
// classify's cut-offs come from --spam-cutoff/--ham-cutoff, else the plugin's settings, else
// the plugin's defaults.
// Must not touch: the policy database (it is only read, for the plugin's settings).
#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "bayes/classifier.h"
#include "bayes/counter_store.h"
#include "bayes/mailbox.h"
#include "bayes/settings.h"
#include "bayes/sqlite_store.h"
#include "bayes/tokenizer.h"
#include "config/endpoint.h"
#include "ctl/commands.h"
#include "store/redis_store.h"

namespace mailgate::ctl {
namespace {

// Messages learned per SQLite transaction.
constexpr int kBatch = 500;

// The bayes plugin's settings from the policy database, or nullopt (printed) when they cannot
// be read. A database without a bayes row gives the defaults with `found` false.
std::optional<bayes::Settings> plugin_settings(Context& ctx, bool* found) {
  *found = false;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(ctx.db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, &sqlite3_close_v2);
  if (rc != SQLITE_OK) {
    fail(ctx, fmt::format("policy database {}: {}", ctx.db_path,
                          raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    return std::nullopt;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT settings FROM plugins WHERE name = 'bayes'", -1, &st,
                         nullptr) != SQLITE_OK) {
    fail(ctx, fmt::format("policy database {}: {}", ctx.db_path, sqlite3_errmsg(db.get())));
    return std::nullopt;
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(st, &sqlite3_finalize);
  std::string json = "{}";
  if (sqlite3_step(st) == SQLITE_ROW) {
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    json = text ? text : "{}";
    *found = true;
  }
  try {
    return bayes::parse_settings(json);
  } catch (const std::exception& e) {
    fail(ctx,
         fmt::format("policy database {}: the bayes plugin's settings: {}", ctx.db_path, e.what()));
    return std::nullopt;
  }
}

struct OpenedStore {
  std::unique_ptr<store::RedisStore> redis;  // when the counters are in Redis
  std::unique_ptr<bayes::TokenStore> tokens;
  bayes::SqliteTokenStore* sqlite = nullptr;  // tokens, when it is SQLite (for batches)
  bayes::Settings settings;
};

// Opens the token store the options (or the plugin's settings) name; prints and returns
// nullopt-like (empty tokens) on failure with *exit set.
OpenedStore open_store(Context& ctx, const Args& args, bool for_learning, int* exit) {
  OpenedStore out;
  const auto db_path = args.value("--bayes-db");
  const auto redis = args.value("--redis");
  if (db_path && redis) {
    *exit = usage_error(ctx, "give --bayes-db or --redis, not both");
    return out;
  }
  bool found = false;
  if (!db_path && !redis) {
    auto settings = plugin_settings(ctx, &found);
    if (!settings) {
      *exit = kExitFailure;
      return out;
    }
    out.settings = *settings;
    if (!found) {
      *exit = fail(ctx, fmt::format("no token store: give --bayes-db FILE or --redis HOST:PORT "
                                    "(the policy database {} has no bayes plugin)",
                                    ctx.db_path));
      return out;
    }
    if (out.settings.backend == bayes::Settings::Backend::kStore) {
      *exit = fail(ctx,
                   "the bayes plugin keeps its counts in the gateway's shared store: give "
                   "--redis HOST:PORT (the gateway's --redis)");
      return out;
    }
  }
  try {
    if (redis) {
      auto hp = config::parse_host_port(*redis, /*allow_zero=*/false);
      if (!hp) {
        *exit = usage_error(ctx, "--redis: " + hp.error());
        return out;
      }
      store::RedisOptions options;
      options.host = hp->host;
      options.port = hp->port;
      options.timeout = std::chrono::milliseconds(2000);
      options.pool_size = 1;
      out.redis = std::make_unique<store::RedisStore>(options);
      if (auto e = out.redis->ping()) {
        *exit = fail(ctx, fmt::format("--redis {}: {}", *redis, *e));
        return out;
      }
      const std::string prefix = args.value("--key-prefix").value_or("bayes");
      store::RedisStore* r = out.redis.get();
      out.tokens = std::make_unique<bayes::CounterTokenStore>(
          [r](std::string_view key, std::int64_t delta) { return r->counter_add(key, delta, 0); },
          prefix, fmt::format("redis:{}/{}", *redis, prefix));
    } else {
      const std::string path = db_path ? *db_path : out.settings.db;
      auto sqlite = std::make_unique<bayes::SqliteTokenStore>(path, out.settings.busy_timeout_ms,
                                                              /*read_only=*/!for_learning);
      out.sqlite = sqlite.get();
      out.tokens = std::move(sqlite);
    }
  } catch (const std::exception& e) {
    *exit = fail(ctx, e.what());
    out.tokens.reset();
  }
  return out;
}

std::optional<bayes::Label> label_of(Context& ctx, const Args& args, int* exit) {
  const bool spam = args.has("--spam");
  const bool ham = args.has("--ham");
  if (spam == ham) {
    *exit = usage_error(ctx, "give exactly one of --spam and --ham");
    return std::nullopt;
  }
  return spam ? bayes::Label::kSpam : bayes::Label::kHam;
}

std::optional<double> cutoff(Context& ctx, const Args& args, std::string_view option, double lo,
                             double hi, int* exit) {
  const auto text = args.value(option);
  if (!text) return std::nullopt;
  try {
    std::size_t used = 0;
    const double v = std::stod(*text, &used);
    if (used == text->size() && v >= lo && v <= hi) return v;
  } catch (const std::exception&) {
  }
  *exit = usage_error(
      ctx, fmt::format("{}: want a number from {} to {}, not '{}'", option, lo, hi, *text));
  return std::nullopt;
}

}  // namespace

int run_learn(Context& ctx, const Args& args) {
  int exit = kExitOk;
  const auto label = label_of(ctx, args, &exit);
  if (!label) return exit;
  OpenedStore store = open_store(ctx, args, /*for_learning=*/true, &exit);
  if (!store.tokens) return exit;

  std::size_t learned = 0, relearned = 0, known = 0, in_batch = 0;
  std::string error;
  for (const std::string& path : args.positional()) {
    const std::string walk_error =
        bayes::for_each_message(path, [&](const std::string& origin, std::string_view raw) {
          if (!error.empty()) return;
          if (store.sqlite != nullptr && in_batch == 0) error = store.sqlite->begin_batch();
          if (!error.empty()) return;
          const bayes::Message message = bayes::parse_message(raw);
          bayes::LearnOutcome outcome = bayes::LearnOutcome::kAlreadyKnown;
          const std::string e = store.tokens->learn(bayes::tokenize(message), *label,
                                                    bayes::message_digest(message), outcome);
          if (!e.empty()) {
            error = fmt::format("{}: {}", origin, e);
            return;
          }
          if (outcome == bayes::LearnOutcome::kLearned) ++learned;
          if (outcome == bayes::LearnOutcome::kRelearned) ++relearned;
          if (outcome == bayes::LearnOutcome::kAlreadyKnown) ++known;
          if (store.sqlite != nullptr && ++in_batch == kBatch) {
            in_batch = 0;
            error = store.sqlite->end_batch();
          }
        });
    if (error.empty() && !walk_error.empty()) error = walk_error;
    if (!error.empty()) break;
  }
  // What was learned before an error is kept (each message is whole or absent).
  if (store.sqlite != nullptr) {
    const std::string e = store.sqlite->end_batch();
    if (error.empty()) error = e;
  }
  bayes::Totals totals;
  const std::string totals_error = store.tokens->totals(totals);
  if (!error.empty()) return fail(ctx, error);
  if (!totals_error.empty()) return fail(ctx, totals_error);
  const char* what = *label == bayes::Label::kSpam ? "spam" : "ham";
  if (ctx.json) {
    nlohmann::json j = {{"ok", true},
                        {"label", what},
                        {"learned", learned},
                        {"relearned", relearned},
                        {"already_known", known},
                        {"store", store.tokens->describe()},
                        {"total_spam", totals.spam},
                        {"total_ham", totals.ham}};
    ctx.out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    ctx.out << fmt::format(
        "learned {} message(s) as {} ({} moved from the other class, {} already known); "
        "{} now holds {} spam and {} ham\n",
        learned + relearned, what, relearned, known, store.tokens->describe(), totals.spam,
        totals.ham);
  }
  return kExitOk;
}

int run_classify(Context& ctx, const Args& args) {
  int exit = kExitOk;
  OpenedStore store = open_store(ctx, args, /*for_learning=*/false, &exit);
  if (!store.tokens) return exit;
  bayes::Params params = store.settings.params;
  if (auto v = cutoff(ctx, args, "--spam-cutoff", 0.5, 1.0, &exit)) params.spam_cutoff = *v;
  if (exit != kExitOk) return exit;
  if (auto v = cutoff(ctx, args, "--ham-cutoff", 0.0, 0.5, &exit)) params.ham_cutoff = *v;
  if (exit != kExitOk) return exit;
  if (params.ham_cutoff >= params.spam_cutoff)
    return usage_error(ctx, "--ham-cutoff must be below --spam-cutoff");

  nlohmann::json results = nlohmann::json::array();
  std::string error;
  for (const std::string& path : args.positional()) {
    const std::string walk_error = bayes::for_each_message(path, [&](const std::string& origin,
                                                                     std::string_view raw) {
      if (!error.empty()) return;
      bayes::Classification c;
      const std::string e =
          bayes::classify(*store.tokens, bayes::tokenize(bayes::parse_message(raw)), params, c);
      if (!e.empty()) {
        error = fmt::format("{}: {}", origin, e);
        return;
      }
      if (ctx.json) {
        nlohmann::json clues = nlohmann::json::array();
        for (std::size_t i = 0; i < c.clues.size() && i < 10; ++i)
          clues.push_back({{"token", c.clues[i].token}, {"probability", c.clues[i].probability}});
        results.push_back({{"file", origin},
                           {"probability", c.probability},
                           {"verdict", bayes::verdict_name(c.verdict)},
                           {"clues", clues}});
      } else {
        ctx.out << fmt::format("{}: probability {:.4f} {}\n", origin, c.probability,
                               bayes::verdict_name(c.verdict));
      }
    });
    if (error.empty() && !walk_error.empty()) error = walk_error;
    if (!error.empty()) break;
  }
  if (!error.empty()) return fail(ctx, error);
  if (ctx.json) {
    bayes::Totals totals;
    store.tokens->totals(totals);
    nlohmann::json j = {{"store", store.tokens->describe()}, {"total_spam", totals.spam},
                        {"total_ham", totals.ham},           {"spam_cutoff", params.spam_cutoff},
                        {"ham_cutoff", params.ham_cutoff},   {"results", results}};
    ctx.out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return kExitOk;
}

}  // namespace mailgate::ctl
