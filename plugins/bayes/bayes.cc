// plugins/bayes/bayes.cc — the `bayes` plugin: at end of message, the Bayes classifier's spam
// probability for the message as a score symbol, and (optionally) learning from clear cases.
//
// Owns: the EOM stage's use of the classifier (mailgate_bayes_core, shared with mailgatectl's
// `learn` and `classify`):
//   - the message (header fields as received, the body up to max_body_bytes) is tokenized and
//     its tokens looked up in the token store: SQLite (backend "sqlite", the file "db") or the
//     gateway's shared counters (backend "store": memory, or Redis shared by several gateways);
//   - with fewer than min_spam / min_ham messages learned it adds nothing (logged at debug);
//   - else one symbol: BAYES_SPAM (p ≥ spam_cutoff), BAYES_HAM (p ≤ ham_cutoff) or BAYES_UNSURE,
//     scored as README.md says, with the probability and the strongest clues as its detail;
//   - autolearn (off by default): a message whose probability is beyond the autolearn margin
//     and whose other symbols agree is learned, once (the store remembers its digest).
// Never refuses mail: a store that fails (SQLite busy past its timeout, Redis down) is logged
// and the message goes on without a Bayes symbol.
// Threads: blocking (SQLite or Redis I/O); the SQLite store serialises on its own mutex, the
// counter store on the host's thread-safe counters. Immutable after construction otherwise.
#include <algorithm>
#include <cstdio>
#include <mailgate/plugin.hpp>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "bayes/classifier.h"
#include "bayes/counter_store.h"
#include "bayes/settings.h"
#include "bayes/sqlite_store.h"
#include "bayes/tokenizer.h"

namespace {

using mailgate::Action;
using mailgate::LogLevel;
using mailgate::Session;
namespace bayes = mailgate::bayes;

// Clue tokens may hold any byte: keep printable ASCII for the detail.
std::string printable(std::string_view token) {
  std::string out;
  for (const char c : token.substr(0, 40)) {
    const unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x21 && u < 0x7f && c != ';' && c != ',') ? c : '?';
  }
  return out;
}

std::string format_probability(double p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", p);
  return buf;
}

// From half of `full` at the cut-off to all of it at certainty.
double scaled(double full, double distance_past_cutoff, double range) {
  const double t = range > 0 ? std::min(1.0, std::max(0.0, distance_past_cutoff / range)) : 1.0;
  const double v = full * (0.5 + 0.5 * t);
  return static_cast<double>(static_cast<long long>(v * 1000.0 + (v >= 0 ? 0.5 : -0.5))) / 1000.0;
}

class BayesPlugin : public mailgate::Plugin {
 public:
  explicit BayesPlugin(const mailgate::PluginContext& context)
      : Plugin(context), settings_(bayes::parse_settings(context.settings_json)) {
    if (settings_.backend == bayes::Settings::Backend::kSqlite) {
      store_ = std::make_unique<bayes::SqliteTokenStore>(settings_.db, settings_.busy_timeout_ms);
    } else {
      const mg_host* h = host();
      store_ = std::make_unique<bayes::CounterTokenStore>(
          [h](std::string_view key, std::int64_t delta) -> std::optional<std::int64_t> {
            std::int64_t value = 0;
            const std::string k(key);
            if (h->counter_add(k.c_str(), delta, 0, &value) != 0) return std::nullopt;
            return value;
          },
          settings_.key_prefix, "store:" + settings_.key_prefix);
    }
    log(LogLevel::kInfo, "bayes: token store " + store_->describe());
  }

  Action on_eom(Session& s) override {
    bayes::Message message;
    for (const Session::Header& h : s.headers())
      message.headers.push_back(bayes::HeaderField{std::string(h.name), std::string(h.value)});
    std::optional<std::string> body = s.body(settings_.max_body_bytes);
    if (!body) {
      s.log(LogLevel::kWarning, "bayes: cannot read the body; no Bayes verdict");
      return Action::kContinue;
    }
    message.body = std::move(*body);
    const std::vector<std::string> tokens = bayes::tokenize(message, settings_.max_text_bytes);

    bayes::Classification c;
    if (std::string e = bayes::classify(*store_, tokens, settings_.params, c); !e.empty()) {
      s.log(LogLevel::kWarning, "bayes: " + e + "; no Bayes verdict");
      return Action::kContinue;
    }
    if (c.totals.spam < settings_.min_spam || c.totals.ham < settings_.min_ham) {
      s.log(LogLevel::kDebug, "bayes: " + std::to_string(c.totals.spam) + " spam and " +
                                  std::to_string(c.totals.ham) + " ham learned, " +
                                  std::to_string(settings_.min_spam) + " and " +
                                  std::to_string(settings_.min_ham) + " needed; no Bayes verdict");
      return Action::kContinue;
    }
    const double others = s.score();  // every symbol so far, before ours
    add_symbol(s, c);
    if (settings_.autolearn) autolearn(s, c, others, message, tokens);
    return Action::kContinue;
  }

 private:
  void add_symbol(Session& s, const bayes::Classification& c) const {
    const bayes::Params& p = settings_.params;
    std::string detail = "p=" + format_probability(c.probability);
    const int shown = std::min<int>(settings_.detail_clues, static_cast<int>(c.clues.size()));
    for (int i = 0; i < shown; ++i) {
      detail += i == 0 ? " clues " : " ";
      detail += printable(c.clues[static_cast<std::size_t>(i)].token) + "=" +
                format_probability(c.clues[static_cast<std::size_t>(i)].probability);
    }
    switch (c.verdict) {
      case bayes::Verdict::kSpam:
        s.add_symbol(
            "BAYES_SPAM",
            scaled(settings_.spam_score, c.probability - p.spam_cutoff, 1.0 - p.spam_cutoff),
            detail);
        break;
      case bayes::Verdict::kHam:
        s.add_symbol("BAYES_HAM",
                     scaled(settings_.ham_score, p.ham_cutoff - c.probability, p.ham_cutoff),
                     detail);
        break;
      case bayes::Verdict::kUnsure:
        s.add_symbol("BAYES_UNSURE", settings_.unsure_score, detail);
        break;
    }
  }

  void autolearn(Session& s, const bayes::Classification& c, double others,
                 const bayes::Message& message, const std::vector<std::string>& tokens) const {
    bayes::Label label;
    if (c.probability >= settings_.autolearn_spam_probability &&
        others >= settings_.autolearn_spam_min_score) {
      label = bayes::Label::kSpam;
    } else if (c.probability <= settings_.autolearn_ham_probability &&
               others <= settings_.autolearn_ham_max_score) {
      label = bayes::Label::kHam;
    } else {
      return;
    }
    bayes::LearnOutcome outcome = bayes::LearnOutcome::kAlreadyKnown;
    const std::string what = label == bayes::Label::kSpam ? "spam" : "ham";
    const std::string e = store_->learn(tokens, label, bayes::message_digest(message), outcome);
    if (!e.empty()) {
      s.log(LogLevel::kWarning, "bayes: autolearn as " + what + " failed: " + e);
    } else if (outcome != bayes::LearnOutcome::kAlreadyKnown) {
      s.log(LogLevel::kInfo,
            "bayes: autolearned as " + what + " (p=" + format_probability(c.probability) + ")");
    }
  }

  bayes::Settings settings_;
  std::unique_ptr<bayes::TokenStore> store_;
};

}  // namespace

MAILGATE_PLUGIN(BayesPlugin, "bayes", "1.0", 0);
