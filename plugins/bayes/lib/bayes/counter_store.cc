// plugins/bayes/lib/bayes/counter_store.cc — the shared-counter token store. See
// counter_store.h.
#include "bayes/counter_store.h"

#include <utility>

namespace mailgate::bayes {
namespace {

constexpr std::size_t kMaxKey = 512;

}  // namespace

CounterTokenStore::CounterTokenStore(CounterAdd add, std::string prefix, std::string description)
    : add_(std::move(add)), prefix_(std::move(prefix)), description_(std::move(description)) {}

TokenCounts CounterTokenStore::unpack(std::int64_t packed) {
  // ham lives in the low 32 bits; a correction may take a count briefly below zero, so the
  // split rounds towards the spam part the way the additions made it.
  std::int64_t spam = packed / kSpamUnit;
  std::int64_t ham = packed % kSpamUnit;
  if (ham >= kSpamUnit / 2) {
    ham -= kSpamUnit;
    ++spam;
  } else if (ham < -kSpamUnit / 2) {
    ham += kSpamUnit;
    --spam;
  }
  return TokenCounts{spam, ham};
}

std::string CounterTokenStore::unavailable() const {
  return "Bayes token store " + description_ + " is unavailable";
}

std::string CounterTokenStore::totals(Totals& totals) {
  const std::optional<std::int64_t> n = add_(prefix_ + ":n", 0);
  if (!n) return unavailable();
  const TokenCounts c = unpack(*n);
  totals = Totals{c.spam, c.ham};
  return std::string();
}

std::string CounterTokenStore::lookup(const std::vector<std::string>& tokens,
                                      std::vector<TokenCounts>& counts, Totals& totals) {
  counts.assign(tokens.size(), TokenCounts{});
  if (std::string e = this->totals(totals); !e.empty()) return e;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string key = prefix_ + ":t:" + tokens[i];
    if (key.size() > kMaxKey) continue;
    const std::optional<std::int64_t> v = add_(key, 0);
    if (!v) return unavailable();
    counts[i] = unpack(*v);
  }
  return std::string();
}

std::string CounterTokenStore::add_all(const std::vector<std::string>& tokens, std::int64_t delta) {
  for (const std::string& token : tokens) {
    const std::string key = prefix_ + ":t:" + token;
    if (key.size() > kMaxKey) continue;
    if (!add_(key, delta)) return unavailable();
  }
  if (!add_(prefix_ + ":n", delta)) return unavailable();
  return std::string();
}

std::string CounterTokenStore::learn(const std::vector<std::string>& tokens, Label label,
                                     const std::string& digest, LearnOutcome& outcome) {
  const std::string seen_key = prefix_ + ":seen:" + digest;
  const std::int64_t mark = label == Label::kSpam ? 2 : 1;
  const std::optional<std::int64_t> seen = add_(seen_key, 0);
  if (!seen) return unavailable();
  if (*seen == mark) {
    outcome = LearnOutcome::kAlreadyKnown;
    return std::string();
  }
  const bool relearn = *seen == 1 || *seen == 2;
  const std::int64_t unit = label == Label::kSpam ? kSpamUnit : 1;
  const std::int64_t other_unit = label == Label::kSpam ? 1 : kSpamUnit;
  if (relearn) {
    if (std::string e = add_all(tokens, -other_unit); !e.empty()) return e;
  }
  if (std::string e = add_all(tokens, unit); !e.empty()) return e;
  if (!add_(seen_key, mark - *seen)) return unavailable();
  outcome = relearn ? LearnOutcome::kRelearned : LearnOutcome::kLearned;
  return std::string();
}

}  // namespace mailgate::bayes
