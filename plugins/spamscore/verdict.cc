// plugins/spamscore/verdict.cc — see verdict.h.
#include "verdict.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace mailgate::spamscore {
namespace {

std::optional<double> lower_of(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

void by_score(std::vector<ScoredSymbol>* symbols) {
  std::stable_sort(symbols->begin(), symbols->end(),
                   [](const ScoredSymbol& a, const ScoredSymbol& b) {
                     if (a.score != b.score) return a.score > b.score;
                     return a.name < b.name;
                   });
}

std::string header_safe(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '[')
      out.push_back('(');
    else if (c == ']')
      out.push_back(')');
    else if (u < 0x20 || u >= 0x7F)
      out.push_back(u >= 0x80 ? '?' : ' ');
    else
      out.push_back(c);
  }
  return out;
}

}  // namespace

std::optional<double> Thresholds::required() const {
  if (add_header) return add_header;
  return lower_of(tempfail, reject);
}

std::optional<Thresholds> parse_thresholds(std::string_view json) {
  nlohmann::json row = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!row.is_object()) return std::nullopt;
  Thresholds t;
  auto step = [&](const char* key, std::optional<double>* out) {
    auto it = row.find(key);
    if (it == row.end() || it->is_null()) return true;
    if (!it->is_number()) return false;
    *out = it->get<double>();
    return std::isfinite(**out);
  };
  if (!step("add_header", &t.add_header) || !step("tempfail", &t.tempfail) ||
      !step("reject", &t.reject))
    return std::nullopt;
  return t;
}

Thresholds strictest(const Thresholds& a, const Thresholds& b) {
  return Thresholds{lower_of(a.add_header, b.add_header), lower_of(a.tempfail, b.tempfail),
                    lower_of(a.reject, b.reject)};
}

Verdict decide(double score, const Thresholds& t) {
  if (t.reject && score >= *t.reject) return Verdict::kReject;
  if (t.tempfail && score >= *t.tempfail) return Verdict::kTempfail;
  if (t.add_header && score >= *t.add_header) return Verdict::kSpam;
  return Verdict::kHam;
}

std::string format_score(double score) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", score);
  std::string out(buf);
  if (out == "-0.00") out = "0.00";
  if (out.size() > 1 && out.back() == '0') out.pop_back();  // "7.50" -> "7.5", "1.00" -> "1.0"
  return out;
}

std::string status_value(double score, const Thresholds& t, Verdict v) {
  std::string out = v == Verdict::kHam ? "No" : "Yes";
  out += ", score=" + format_score(score);
  if (auto required = t.required()) out += " required=" + format_score(*required);
  return out;
}

std::string symbols_value(std::vector<ScoredSymbol> symbols) {
  by_score(&symbols);
  std::string out;
  for (const ScoredSymbol& s : symbols) {
    if (!out.empty()) out += ",\r\n\t";
    out += s.name + "(" + format_score(s.score) + ")";
    if (!s.detail.empty()) out += "[" + header_safe(s.detail, 120) + "]";
  }
  return out.empty() ? "none" : out;
}

std::string top_symbols(std::vector<ScoredSymbol> symbols, std::size_t max) {
  by_score(&symbols);
  std::string out;
  std::size_t n = 0;
  for (const ScoredSymbol& s : symbols) {
    if (s.score <= 0 || n == max) break;
    if (!out.empty()) out += ", ";
    out += s.name;
    ++n;
  }
  return out;
}

}  // namespace mailgate::spamscore
