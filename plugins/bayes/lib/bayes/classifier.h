// plugins/bayes/lib/bayes/classifier.h — from token counts to a spam probability, the way
// SpamBayes does it:
//   - Robinson's f(w): a token's spam probability p(w) = (s/nspam) / (s/nspam + h/nham), pulled
//     towards the prior x by the strength s of that prior: f(w) = (s·x + n·p(w)) / (s + n),
//     n = the number of learned messages that had the token;
//   - the clues: the tokens with |f(w) − 0.5| ≥ min_strength, at most max_discriminators of
//     them, strongest first;
//   - Fisher's combining: H = C⁻¹(−2·Σ ln f(w), 2n) and S = C⁻¹(−2·Σ ln(1 − f(w)), 2n), where
//     C⁻¹ is the chi-square survival function; the spam probability is (1 + (1 − S) − (1 − H))/2
//     = (1 + H − S) / 2: near 1 when the clues are spammy, near 0 when hammy, 0.5 when they
//     disagree or there are none.
// Owns: the formulas and the verdict's cut-offs. Must not touch storage beyond
// TokenStore::lookup().
// Threading: pure functions; classify() uses the store as its threading rules allow.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "bayes/token_store.h"

namespace mailgate::bayes {

struct Params {
  double prior_strength = 0.45;  // Robinson's s
  double prior = 0.5;            // Robinson's x
  double min_strength = 0.1;     // a clue's |f(w) − 0.5| at least
  std::size_t max_discriminators = 150;
  double ham_cutoff = 0.20;   // probability ≤ this: ham
  double spam_cutoff = 0.90;  // probability ≥ this: spam
};

enum class Verdict { kHam, kUnsure, kSpam };
const char* verdict_name(Verdict v);  // "ham", "unsure", "spam"

struct Clue {
  std::string token;
  double probability;  // f(w)
};

struct Classification {
  double probability = 0.5;
  Verdict verdict = Verdict::kUnsure;
  std::vector<Clue> clues;  // strongest first
  Totals totals;            // what the store had learned
};

// Robinson's f(w).
double token_probability(const TokenCounts& counts, const Totals& totals, const Params& params);

// The chi-square survival function Q(x2, v) = P(X ≥ x2) for an even number of degrees of
// freedom v, computed in log space so that large arguments do not underflow to garbage.
double chi2_survival(double x2, std::size_t v);

// Fisher's combining of clue probabilities: (1 + H − S) / 2 as above; 0.5 without clues.
double combine(const std::vector<double>& probabilities);

// The verdict for a probability.
Verdict verdict_for(double probability, const Params& params);

// Picks the clues from the tokens' counts and combines them.
Classification classify_counts(const std::vector<std::string>& tokens,
                               const std::vector<TokenCounts>& counts, const Totals& totals,
                               const Params& params);

// Looks the tokens up in `store` and classifies. Returns "" or the store's error.
std::string classify(TokenStore& store, const std::vector<std::string>& tokens,
                     const Params& params, Classification& out);

}  // namespace mailgate::bayes
