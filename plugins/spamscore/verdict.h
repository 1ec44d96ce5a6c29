// plugins/spamscore/verdict.h — from a message's total score to what happens to it, and the
// text that explains it.
// Owns: the thresholds of one message (each recipient domain's spam_thresholds row, the
// strictest step of all of them: a message is one DATA and gets one answer), the decision
// (reject at or above `reject`, else tempfail at or above `tempfail`, else spam at or above
// `add_header`), and the formatting of scores, the X-Spam-* values and the reply's summary.
// Threading: pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::spamscore {

struct Thresholds {
  std::optional<double> add_header;
  std::optional<double> tempfail;
  std::optional<double> reject;
  // The score from which the message counts as spam: add_header, else the lower of the others.
  std::optional<double> required() const;
};

// One policy_lookup("spam_thresholds", DOMAIN) answer; nullopt when it is not the object the
// snapshot makes.
std::optional<Thresholds> parse_thresholds(std::string_view json);
// The lower of each step that either sets.
Thresholds strictest(const Thresholds& a, const Thresholds& b);

enum class Verdict {
  kHam,       // below every step that is set
  kSpam,      // at or above add_header: delivered, marked X-Spam-Status: Yes
  kTempfail,  // at or above tempfail: 451 4.7.1
  kReject,    // at or above reject: 550 5.7.1
};
Verdict decide(double score, const Thresholds& t);

struct ScoredSymbol {
  std::string name;
  double score;
  std::string detail;
};

// "7.5", "-0.25", "1000.0": at most two decimals, at least one.
std::string format_score(double score);
// "Yes, score=7.5 required=5.0" / "No, score=1.0 required=5.0" / "No, score=1.0" (no steps).
std::string status_value(double score, const Thresholds& t, Verdict v);
// Every symbol, highest score first: "GTUBE(1000.0)[GTUBE test string]", folded one symbol a
// line. Details are made header-safe (printable ASCII, no brackets) and cut at 120 characters.
std::string symbols_value(std::vector<ScoredSymbol> symbols);
// The names of the positive symbols, highest first, at most `max`: "GTUBE, MISSING_DATE".
std::string top_symbols(std::vector<ScoredSymbol> symbols, std::size_t max);

}  // namespace mailgate::spamscore
