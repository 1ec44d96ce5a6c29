// plugins/bayes/lib/bayes/classifier.cc — Robinson's f(w) and Fisher's combining. See
// classifier.h.
#include "bayes/classifier.h"

#include <algorithm>
#include <cmath>

namespace mailgate::bayes {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kHam:
      return "ham";
    case Verdict::kUnsure:
      return "unsure";
    case Verdict::kSpam:
      return "spam";
  }
  return "unsure";
}

double token_probability(const TokenCounts& counts, const Totals& totals, const Params& params) {
  const double spam = static_cast<double>(std::max<std::int64_t>(counts.spam, 0));
  const double ham = static_cast<double>(std::max<std::int64_t>(counts.ham, 0));
  const double spam_ratio = totals.spam > 0 ? spam / static_cast<double>(totals.spam) : 0.0;
  const double ham_ratio = totals.ham > 0 ? ham / static_cast<double>(totals.ham) : 0.0;
  const double n = spam + ham;
  if (spam_ratio + ham_ratio <= 0.0) return params.prior;
  const double p = spam_ratio / (spam_ratio + ham_ratio);
  return (params.prior_strength * params.prior + n * p) / (params.prior_strength + n);
}

double chi2_survival(double x2, std::size_t v) {
  if (x2 <= 0.0 || v == 0) return 1.0;
  // Q = e^(−m) · Σ_{i<v/2} m^i / i!, m = x2/2: summed as logs of terms.
  const double m = x2 / 2.0;
  const double log_m = std::log(m);
  double log_term = -m;
  double log_sum = log_term;
  for (std::size_t i = 1; i < v / 2; ++i) {
    log_term += log_m - std::log(static_cast<double>(i));
    // log(e^a + e^b) without overflow
    const double hi = std::max(log_sum, log_term);
    const double lo = std::min(log_sum, log_term);
    log_sum = hi + std::log1p(std::exp(lo - hi));
  }
  return std::min(1.0, std::exp(log_sum));
}

double combine(const std::vector<double>& probabilities) {
  if (probabilities.empty()) return 0.5;
  double sum_log_ham = 0.0;   // Σ ln f(w)
  double sum_log_spam = 0.0;  // Σ ln (1 − f(w))
  for (const double p : probabilities) {
    const double f = std::clamp(p, 1e-12, 1.0 - 1e-12);
    sum_log_ham += std::log(f);
    sum_log_spam += std::log(1.0 - f);
  }
  const std::size_t v = 2 * probabilities.size();
  const double h = chi2_survival(-2.0 * sum_log_ham, v);   // small when the clues are hammy
  const double s = chi2_survival(-2.0 * sum_log_spam, v);  // small when the clues are spammy
  return std::clamp((1.0 + h - s) / 2.0, 0.0, 1.0);
}

Verdict verdict_for(double probability, const Params& params) {
  if (probability >= params.spam_cutoff) return Verdict::kSpam;
  if (probability <= params.ham_cutoff) return Verdict::kHam;
  return Verdict::kUnsure;
}

Classification classify_counts(const std::vector<std::string>& tokens,
                               const std::vector<TokenCounts>& counts, const Totals& totals,
                               const Params& params) {
  Classification out;
  out.totals = totals;
  std::vector<Clue> clues;
  for (std::size_t i = 0; i < tokens.size() && i < counts.size(); ++i) {
    const double f = token_probability(counts[i], totals, params);
    if (std::fabs(f - 0.5) >= params.min_strength) clues.push_back(Clue{tokens[i], f});
  }
  // strongest first; ties by token so the result does not depend on the input order
  std::sort(clues.begin(), clues.end(), [](const Clue& a, const Clue& b) {
    const double sa = std::fabs(a.probability - 0.5);
    const double sb = std::fabs(b.probability - 0.5);
    if (sa != sb) return sa > sb;
    return a.token < b.token;
  });
  if (clues.size() > params.max_discriminators) clues.resize(params.max_discriminators);
  std::vector<double> probabilities;
  probabilities.reserve(clues.size());
  for (const Clue& c : clues) probabilities.push_back(c.probability);
  out.probability = combine(probabilities);
  out.verdict = verdict_for(out.probability, params);
  out.clues = std::move(clues);
  return out;
}

std::string classify(TokenStore& store, const std::vector<std::string>& tokens,
                     const Params& params, Classification& out) {
  std::vector<TokenCounts> counts;
  Totals totals;
  std::string error = store.lookup(tokens, counts, totals);
  if (!error.empty()) return error;
  out = classify_counts(tokens, counts, totals, params);
  return std::string();
}

}  // namespace mailgate::bayes
