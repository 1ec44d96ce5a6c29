// tests/unit/bayes/classifier_test.cc — plugins/bayes/lib/bayes/classifier.cc: Robinson's f(w),
// the chi-square survival function and Fisher's combining, against values worked by hand.
#include "bayes/classifier.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mailgate::bayes {
namespace {

TEST(BayesClassifier, RobinsonTokenProbability) {
  const Params p;
  const Totals t{100, 200};
  // unseen: the prior
  EXPECT_DOUBLE_EQ(token_probability({0, 0}, t, p), 0.5);
  // 10 of 100 spam, 0 of 200 ham: p(w) = 1, n = 10 -> (0.45*0.5 + 10) / 10.45
  EXPECT_NEAR(token_probability({10, 0}, t, p), (0.225 + 10.0) / 10.45, 1e-12);
  // 1 of 100 spam, 2 of 200 ham: equal ratios -> p(w) = 0.5 whatever n
  EXPECT_NEAR(token_probability({1, 2}, t, p), 0.5, 1e-12);
  // 0 spam, 4 ham: p(w) = 0 -> 0.225 / 4.45
  EXPECT_NEAR(token_probability({0, 4}, t, p), 0.225 / 4.45, 1e-12);
  // one sighting is pulled hard towards the prior
  EXPECT_NEAR(token_probability({1, 0}, t, p), 1.225 / 1.45, 1e-12);
}

TEST(BayesClassifier, ChiSquareSurvival) {
  // v = 2: Q = e^(-x/2)
  EXPECT_NEAR(chi2_survival(2.0, 2), std::exp(-1.0), 1e-12);
  // v = 4: Q = e^(-m) (1 + m), m = x/2
  EXPECT_NEAR(chi2_survival(4.0, 4), std::exp(-2.0) * 3.0, 1e-12);
  // v = 6, x = 10: e^-5 (1 + 5 + 12.5)
  EXPECT_NEAR(chi2_survival(10.0, 6), std::exp(-5.0) * 18.5, 1e-12);
  EXPECT_DOUBLE_EQ(chi2_survival(0.0, 10), 1.0);
  // far in the tail it is tiny but not NaN, and it never exceeds 1
  const double tail = chi2_survival(5000.0, 300);
  EXPECT_FALSE(std::isnan(tail));
  EXPECT_LT(tail, 1e-100);
  EXPECT_LE(chi2_survival(1.0, 300), 1.0);
}

TEST(BayesClassifier, FisherCombining) {
  EXPECT_DOUBLE_EQ(combine({}), 0.5);
  EXPECT_GT(combine(std::vector<double>(20, 0.99)), 0.999);
  EXPECT_LT(combine(std::vector<double>(20, 0.01)), 0.001);
  // evenly split strong evidence: unsure, right in the middle
  std::vector<double> split(10, 0.99);
  split.insert(split.end(), 10, 0.01);
  EXPECT_NEAR(combine(split), 0.5, 1e-9);
  // one clue each way of equal strength cancels too; more spam clues tip it
  EXPECT_NEAR(combine({0.9, 0.1}), 0.5, 1e-9);
  EXPECT_GT(combine({0.9, 0.9, 0.1}), 0.5);
  // symmetry: p -> 1 - p mirrors the result
  EXPECT_NEAR(combine({0.8, 0.7, 0.95}), 1.0 - combine({0.2, 0.3, 0.05}), 1e-12);
}

TEST(BayesClassifier, CluesAreStrongestFirstBoundedAndStrongEnough) {
  Params p;
  p.max_discriminators = 2;
  const Totals totals{10, 10};
  const std::vector<std::string> tokens = {"weak", "spammy", "hammy", "spammier"};
  const std::vector<TokenCounts> counts = {{5, 4}, {6, 0}, {0, 8}, {9, 0}};
  const Classification c = classify_counts(tokens, counts, totals, p);
  ASSERT_EQ(c.clues.size(), 2u);
  EXPECT_EQ(c.clues[0].token, "spammier");  // f = (0.225+9)/9.45 beats hammy's distance
  EXPECT_EQ(c.clues[1].token, "hammy");
  EXPECT_NEAR(c.probability, combine({c.clues[0].probability, c.clues[1].probability}), 1e-12);

  p.max_discriminators = 150;
  const Classification all = classify_counts(tokens, counts, totals, p);
  EXPECT_EQ(all.clues.size(), 3u);  // "weak" (f near 0.55) is not a clue
  EXPECT_GT(all.probability, 0.5);  // two spam clues against one ham clue
}

TEST(BayesClassifier, Verdicts) {
  Params p;
  EXPECT_EQ(verdict_for(0.95, p), Verdict::kSpam);
  EXPECT_EQ(verdict_for(0.9, p), Verdict::kSpam);
  EXPECT_EQ(verdict_for(0.5, p), Verdict::kUnsure);
  EXPECT_EQ(verdict_for(0.2, p), Verdict::kHam);
  EXPECT_STREQ(verdict_name(Verdict::kUnsure), "unsure");
}

}  // namespace
}  // namespace mailgate::bayes
