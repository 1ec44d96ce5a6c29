// plugins/spamscore/spamscore.cc — the `spamscore` plugin: content checks of its own, then the
// message's total score (every plugin's symbols, host score()) against the recipient domains'
// spam_thresholds, at end of message. See README.md for settings, symbols and replies.
//
// Owns, at EOM, in this order:
//   1. reading the message through the SDK: header fields (header_at, header_raw_at) and at
//      most max_scan_bytes of the body (body_read); SCAN_TRUNCATED says when there was more;
//   2. its own symbols: header sanity (header_checks.h), GTUBE, MIME bounds, and the
//      spam_rules matches (rule_set.h) on header fields, the decoded Subject, the decoded text
//      parts (mime_scan.h), their URLs and the raw bytes;
//   3. the verdict (verdict.h): 550 5.7.1 at or above `reject`, 451 4.7.1 at or above
//      `tempfail`, else delivered with X-Spam-Score, X-Spam-Status and X-Spam-Symbols (names
//      configurable; fields of those names that came with the message are removed first).
// Run it last among the plugins that add symbols (after spf, dkim, dmarc, dnsbl, bayes), so
// its total sees theirs.
// Threads: blocking (CPU work on the worker pool). The state is the settings (immutable) and
// the compiled rules, replaced under a mutex when the policy's rules change; sessions share a
// compiled set through a shared_ptr. A rules answer that does not compile is logged once,
// naming the row, and the set compiled before stays in use.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mailgate/plugin.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/settings.hpp"
#include "header_checks.h"
#include "mime_scan.h"
#include "rule_set.h"
#include "verdict.h"

namespace {

using mailgate::Action;
using mailgate::LogLevel;
using mailgate::Session;
namespace ss = mailgate::spamscore;

// The SpamAssassin test string: a message holding it is spam by definition.
constexpr std::string_view kGtube =
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

// memmem(3), not std::string::find: find compares at every occurrence of the first
// character, and a body of "XXXX..." lines (smtp-source's) made that quadratic-looking.
bool contains_gtube(std::string_view text) {
  return ::memmem(text.data(), text.size(), kGtube.data(), kGtube.size()) != nullptr;
}

// The plugin's own symbols and their default scores (settings "scores" overrides them).
const std::map<std::string, double, std::less<>>& default_scores() {
  static const std::map<std::string, double, std::less<>> scores = {
      {"GTUBE", 1000.0},       {"MISSING_FROM", 2.0},       {"MULTIPLE_FROM", 2.0},
      {"MALFORMED_FROM", 2.0}, {"MISSING_DATE", 1.0},       {"INVALID_DATE", 1.0},
      {"DATE_IN_FUTURE", 2.0}, {"MISSING_MESSAGE_ID", 1.0}, {"MISSING_SUBJECT", 0.5},
      {"MIME_MALFORMED", 1.0}, {"MIME_TOO_COMPLEX", 1.0},   {"SCAN_TRUNCATED", 0.0},
  };
  return scores;
}

bool valid_header_name(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name)
    if (c < 33 || c > 126 || c == ':') return false;
  return true;
}

struct Settings {
  std::uint64_t max_scan_bytes = 1 << 20;
  ss::ScanLimits limits;
  double future_date_hours = 24;
  std::string score_header = "X-Spam-Score";
  std::string status_header = "X-Spam-Status";
  std::string symbols_header = "X-Spam-Symbols";
  std::map<std::string, double, std::less<>> scores = default_scores();
};

std::int64_t setting_int(const nlohmann::json& v, const std::string& key, std::int64_t lo,
                         std::int64_t hi) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi)
    throw std::invalid_argument("setting \"" + key + "\" must be an integer from " +
                                std::to_string(lo) + " to " + std::to_string(hi));
  return v.get<std::int64_t>();
}

std::string setting_header(const nlohmann::json& v, const std::string& key) {
  if (!v.is_string() || (!v.get<std::string>().empty() && !valid_header_name(v.get<std::string>())))
    throw std::invalid_argument("setting \"" + key +
                                "\" must be a header field name, or \"\" to leave it out");
  return v.get<std::string>();
}

Settings parse_settings(std::string_view text) {
  Settings s;
  const nlohmann::json json = mailgate::plugins::parse_settings_object(text);
  for (const auto& [key, value] : json.items()) {
    if (key == "max_scan_bytes") {
      s.max_scan_bytes = static_cast<std::uint64_t>(setting_int(value, key, 1024, 64 << 20));
    } else if (key == "max_mime_depth") {
      s.limits.max_depth = static_cast<std::size_t>(setting_int(value, key, 1, 100));
    } else if (key == "max_mime_parts") {
      s.limits.max_parts = static_cast<std::size_t>(setting_int(value, key, 1, 10000));
    } else if (key == "max_urls") {
      s.limits.max_urls = static_cast<std::size_t>(setting_int(value, key, 0, 10000));
    } else if (key == "future_date_hours") {
      if (!value.is_number() || !(value.get<double>() > 0) || !std::isfinite(value.get<double>()))
        throw std::invalid_argument("setting \"future_date_hours\" must be a positive number");
      s.future_date_hours = value.get<double>();
    } else if (key == "score_header") {
      s.score_header = setting_header(value, key);
    } else if (key == "status_header") {
      s.status_header = setting_header(value, key);
    } else if (key == "symbols_header") {
      s.symbols_header = setting_header(value, key);
    } else if (key == "scores") {
      if (!value.is_object()) throw std::invalid_argument("setting \"scores\" must be an object");
      for (const auto& [symbol, score] : value.items()) {
        if (!s.scores.count(symbol))
          throw std::invalid_argument("setting \"scores\": unknown symbol \"" + symbol +
                                      "\" (the plugin's own symbols are listed in its README)");
        if (!score.is_number() || !std::isfinite(score.get<double>()))
          throw std::invalid_argument("setting \"scores\": \"" + symbol + "\" must be a number");
        s.scores[symbol] = score.get<double>();
      }
    } else {
      throw std::invalid_argument("unknown setting \"" + key + "\"");
    }
  }
  return s;
}

bool is_subject(std::string_view name) {
  static constexpr std::string_view kSubject = "subject";
  if (name.size() != kSubject.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if ((name[i] | 0x20) != kSubject[i]) return false;
  return true;
}

std::string_view domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

class SpamScorePlugin : public mailgate::Plugin {
 public:
  explicit SpamScorePlugin(const mailgate::PluginContext& context)
      : Plugin(context), settings_(parse_settings(context.settings_json)) {}

  Action on_eom(Session& s) override {
    // 1. The message as it will be relayed, the body bounded.
    std::vector<ss::HeaderField> fields;
    std::string raw;
    const std::size_t n = s.host()->header_count(s.raw());
    for (std::size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      const char* value = nullptr;
      if (s.host()->header_at(s.raw(), i, &name, &value) != 0) continue;
      fields.push_back({name != nullptr ? name : "", value != nullptr ? value : ""});
      if (auto field = s.header_raw(i)) {
        raw.append(*field);
      } else {
        raw.append(fields.back().name).append(": ").append(fields.back().value).append("\r\n");
      }
    }
    raw.append("\r\n");
    const std::size_t header_bytes = raw.size();
    std::optional<std::string> body = s.body(settings_.max_scan_bytes + 1);
    if (!body) {
      s.log(LogLevel::kError, "cannot read the message body; the plugin's fail mode applies");
      return Action::kFailed;
    }
    const bool truncated = body->size() > settings_.max_scan_bytes;
    if (truncated) body->resize(settings_.max_scan_bytes);
    raw.append(*body);
    body.reset();

    // 2. The plugin's own symbols.
    const ss::ScannedMessage scan = ss::scan_message(raw, settings_.limits);
    for (const ss::Finding& f : ss::check_headers(fields, now_ms(), settings_.future_date_hours))
      add(s, f.symbol, f.detail);
    bool gtube = contains_gtube(raw);
    for (const std::string& text : scan.texts) gtube = gtube || contains_gtube(text);
    if (gtube) add(s, "GTUBE", "the GTUBE test string");
    if (scan.too_complex)
      add(s, "MIME_TOO_COMPLEX",
          "more than " + std::to_string(settings_.limits.max_parts) +
              " multipart/message parts: not parsed");
    else if (!scan.parsed)
      add(s, "MIME_MALFORMED", "the message does not parse as MIME");
    else if (scan.too_deep || scan.too_many_parts)
      add(s, "MIME_TOO_COMPLEX",
          scan.too_deep ? "parts nested deeper than " + std::to_string(settings_.limits.max_depth) +
                              " levels were not scanned"
                        : "text parts after the " + std::to_string(settings_.limits.max_parts) +
                              "th were not scanned");
    if (truncated)
      add(s, "SCAN_TRUNCATED",
          "only the first " + std::to_string(settings_.max_scan_bytes) +
              " bytes of the body were scanned");
    match_rules(s, fields, scan, raw, header_bytes);

    // 3. The verdict on every plugin's symbols.
    return verdict(s);
  }

 private:
  void add(Session& s, const std::string& symbol, const std::string& detail) const {
    auto it = settings_.scores.find(symbol);
    s.add_symbol(symbol, it != settings_.scores.end() ? it->second : 0.0, detail);
  }

  // The compiled rules for the policy's current answer; the previous set when it fails.
  std::shared_ptr<const ss::RuleSet> rules() const {
    std::optional<std::string> json = policy_lookup("spam_rules", "*");
    std::lock_guard lock(mu_);
    if (!json) {  // no enabled rule
      rules_json_.clear();
      rules_.reset();
      return nullptr;
    }
    if (*json == rules_json_ || *json == failed_json_) return rules_;
    ss::RuleSet::Compiled compiled = ss::RuleSet::compile(*json);
    if (!compiled.rules) {
      failed_json_ = std::move(*json);
      log(LogLevel::kError, "spamscore: " + compiled.error + "; keeping the " +
                                std::to_string(rules_ ? rules_->rules().size() : 0) +
                                " rules compiled before");
      return rules_;
    }
    log(LogLevel::kInfo,
        "spamscore: compiled " + std::to_string(compiled.rules->rules().size()) + " spam_rules");
    rules_json_ = std::move(*json);
    failed_json_.clear();
    rules_ = std::move(compiled.rules);
    return rules_;
  }

  void match_rules(Session& s, const std::vector<ss::HeaderField>& fields,
                   const ss::ScannedMessage& scan, std::string_view raw,
                   std::size_t header_bytes) const {
    std::shared_ptr<const ss::RuleSet> set = rules();
    if (!set || set->empty()) return;
    std::vector<bool> hits(set->rules().size(), false);
    bool complete = true;
    auto match = [&](ss::RuleKind kind, std::string_view field, std::string_view text) {
      complete = set->match(kind, field, text, &hits) && complete;
    };
    std::optional<std::string_view> raw_subject;
    for (const ss::HeaderField& f : fields) {
      match(ss::RuleKind::kHeader, f.name, f.value);
      if (!raw_subject && is_subject(f.name)) raw_subject = f.value;
    }
    if (set->has(ss::RuleKind::kSubject)) {
      if (scan.parsed)
        match(ss::RuleKind::kSubject, {}, scan.subject);
      else if (raw_subject)
        match(ss::RuleKind::kSubject, {}, *raw_subject);
    }
    if (scan.parsed) {
      for (const std::string& text : scan.texts) match(ss::RuleKind::kBody, {}, text);
    } else {
      match(ss::RuleKind::kBody, {}, raw.substr(header_bytes));  // undecoded, as a last resort
    }
    for (const std::string& url : scan.urls) match(ss::RuleKind::kUrl, {}, url);
    match(ss::RuleKind::kRaw, {}, raw);
    if (!complete)
      s.log(LogLevel::kWarning,
            "spam_rules: RE2 ran out of memory on a part; some rules were "
            "not matched");
    for (std::size_t i = 0; i < hits.size(); ++i) {
      if (!hits[i]) continue;
      const ss::Rule& r = set->rules()[i];
      s.add_symbol(r.name, r.score,
                   r.description.empty() ? "spam_rules row " + r.name : r.description);
    }
  }

  // The strictest thresholds of the recipients' domains (each domain's row, else the '*' row).
  ss::Thresholds thresholds(Session& s, bool* any) const {
    ss::Thresholds t;
    *any = false;
    std::set<std::string> seen;
    std::vector<std::string_view> recipients = s.recipients();
    if (recipients.empty()) recipients.push_back("");  // the '*' row still applies
    for (std::string_view rcpt : recipients) {
      std::string domain(domain_of(rcpt));
      for (char& c : domain)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (!seen.insert(domain).second) continue;
      std::optional<std::string> json =
          policy_lookup("spam_thresholds", domain.empty() ? "*" : domain);
      if (!json) continue;
      std::optional<ss::Thresholds> row = ss::parse_thresholds(*json);
      if (!row) {
        s.log(LogLevel::kError,
              "spam_thresholds answer for '" + domain + "' is not understood: " + *json);
        continue;
      }
      t = *any ? ss::strictest(t, *row) : *row;
      *any = true;
    }
    return t;
  }

  Action verdict(Session& s) const {
    const double score = s.score();
    bool any = false;
    const ss::Thresholds t = thresholds(s, &any);
    const ss::Verdict v = ss::decide(score, t);
    std::vector<ss::ScoredSymbol> symbols;
    for (const Session::Symbol& sym : s.symbols())
      symbols.push_back({std::string(sym.name), sym.score, std::string(sym.detail)});
    const std::string summary = ss::top_symbols(symbols, 5);
    const std::string status = ss::status_value(score, t, v);
    s.log(LogLevel::kInfo, "spam score " + ss::format_score(score) + " (" + status + ") " +
                               (v == ss::Verdict::kReject     ? "reject"
                                : v == ss::Verdict::kTempfail ? "tempfail"
                                : v == ss::Verdict::kSpam     ? "marked as spam"
                                                              : "delivered") +
                               "; symbols: " + (summary.empty() ? "none" : summary));
    const std::string because = summary.empty() ? "" : " (" + summary + ")";
    if (v == ss::Verdict::kReject)
      return s.reject(550, "5.7.1",
                      "Message rejected as spam: score " + ss::format_score(score) + " reaches " +
                          ss::format_score(*t.reject) + because);
    if (v == ss::Verdict::kTempfail)
      return s.tempfail(451, "4.7.1",
                        "Message looks like spam: score " + ss::format_score(score) + " reaches " +
                            ss::format_score(*t.tempfail) + because + "; try again later");
    put_header(s, settings_.score_header, ss::format_score(score));
    put_header(s, settings_.status_header, status);
    put_header(s, settings_.symbols_header, ss::symbols_value(std::move(symbols)));
    return Action::kContinue;
  }

  static void put_header(Session& s, const std::string& name, const std::string& value) {
    if (name.empty()) return;
    s.header_remove(name, 0);  // a forged one from outside (refused when none: fine)
    if (!s.header_add(name, value))
      s.log(LogLevel::kWarning, "could not add the " + name + " header");
  }

  const Settings settings_;
  mutable std::mutex mu_;
  mutable std::string rules_json_;   // the answer rules_ was compiled from
  mutable std::string failed_json_;  // an answer that did not compile (logged once)
  mutable std::shared_ptr<const ss::RuleSet> rules_;
};

}  // namespace

MAILGATE_PLUGIN(SpamScorePlugin, "spamscore", "1.0", 0);
