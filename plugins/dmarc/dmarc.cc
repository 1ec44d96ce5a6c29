// plugins/dmarc/dmarc.cc — the `dmarc` plugin: Domain-based Message Authentication, Reporting
// and Conformance (RFC 7489) for the mail it receives. Records are parsed by libopendmarc
// (policy_record.cc) after being fetched through the host's resolver; the SPF and DKIM
// results are the ones the spf and dkim plugins recorded earlier in the chain (ABI 1.1
// authentication results).
//
// Owns: the settings, the order of the evaluation at EOM, what each result scores, the
// action (reject / quarantine header / tempfail), the "dmarc" authentication result, the log
// line and the history row. Where:
//
//   EOM   clients in relay_networks and authenticated clients are skipped (when so set);
//         the From domain (from_domain.h) → policy discovery (policy_record.h, at most two
//         TXT lookups) → SPF/DKIM identities and alignment (evaluation.h) → pct sampling →
//         the configured action; then the symbol, auth_result_add("dmarc", ...), one log
//         line, and one history row (history_db.h) when "history_db" is set.
//
// Replies: disposition reject with reject_action "reject" → 550 5.7.1; a temporary DNS
// failure of the record lookup with tempfail_on_dns_error → 451 4.7.1; no/several From
// addresses with reject_bad_from → 550 5.7.1.
//
// Settings: see README.md (unknown keys or wrong types fail create()).
//
// Threads: blocking (DNS), not MG_PLUGIN_NONBLOCKING, but tried on the I/O thread first with
// DNS from the resolver's cache (MG_PLUGIN_TRY_INLINE): the policy is looked up before
// anything is written, and a record not cached sends EOM to the worker pool. The settings and the
// public suffix list are read-only after construction; the history database serialises its
// writes under its own mutex; the pct roll uses a per-thread generator.
#include <ctime>
#include <mailgate/plugin.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/settings.hpp"
#include "evaluation.h"
#include "from_domain.h"
#include "history_db.h"
#include "policy_record.h"
#include "public_suffix.h"

namespace {

using mailgate::Action;
using mailgate::DnsStatus;
using mailgate::DnsType;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;
namespace dm = mailgate::dmarc;

constexpr const char* kDefaultPublicSuffixList = "/usr/share/publicsuffix/public_suffix_list.dat";

struct Scores {
  double pass = -0.5;
  double fail_reject = 4.0;
  double fail_quarantine = 3.0;
  double fail_none = 0.5;
  double none = 0.0;
  double temperror = 0.0;
  double permerror = 0.0;
};

// What the plugin does for a disposition the policy asks for.
enum class Act { kReject, kQuarantine, kNone };

Act parse_act(const nlohmann::json& value, const std::string& key, bool allow_reject) {
  if (value.is_string()) {
    const std::string v = value.get<std::string>();
    if (v == "reject" && allow_reject) return Act::kReject;
    if (v == "quarantine") return Act::kQuarantine;
    if (v == "none") return Act::kNone;
  }
  throw std::invalid_argument("setting \"" + key + "\" must be " +
                              (allow_reject ? "\"reject\", " : "") + "\"quarantine\" or \"none\"");
}

bool valid_header_name(const std::string& name) {
  if (name.empty() || name.size() > 76) return false;
  for (char c : name)
    if (c <= ' ' || c > '~' || c == ':') return false;
  return true;
}

int pct_roll() {
  thread_local std::mt19937 generator{std::random_device{}()};
  return std::uniform_int_distribution<int>(0, 99)(generator);
}

// Text safe inside an authentication result's reason and the log (no CR/LF/';', printable).
std::string clean(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ';' || c == '"') continue;
    out += c;
  }
  return out;
}

class Dmarc final : public mailgate::Plugin {
 public:
  explicit Dmarc(const mailgate::PluginContext& context) : Plugin(context) {
    if (!MG_HOST_HAS(context.host, auth_result_at))
      throw std::runtime_error(
          "dmarc: this gateway has no authentication results (plugin ABI 1.1 needed): the "
          "dmarc plugin cannot read the spf and dkim results");
    parse_settings();
    psl_ = std::make_unique<dm::PublicSuffixList>(psl_path_);
    if (!history_path_.empty()) history_ = std::make_unique<dm::HistoryDb>(history_path_);
  }

  Action on_eom(Session& s) override {
    if (skip_authenticated_ && s.find(Item::kAuthUser).has_value()) {
      s.log(LogLevel::kInfo, "dmarc: not checked (authenticated client)");
      return Action::kContinue;
    }
    const std::string client_ip(s.get(Item::kClientAddr));
    if (skip_relay_networks_ && !client_ip.empty() &&
        policy_lookup("relay_networks", client_ip).has_value()) {
      s.log(LogLevel::kInfo, "dmarc: not checked (client in relay_networks)");
      return Action::kContinue;
    }

    bool spoofed_header = false;
    std::vector<std::string> from_values_owned;
    for (const Session::Header& h : s.headers()) {
      if (mailgate::equal_ignore_case(h.name, "from")) from_values_owned.emplace_back(h.value);
      if (mailgate::equal_ignore_case(h.name, quarantine_header_)) spoofed_header = true;
    }
    const std::vector<std::string_view> from_values(from_values_owned.begin(),
                                                    from_values_owned.end());
    const dm::FromDomain from = dm::from_domain(from_values);
    // A U-label domain would need IDNA conversion before the lookup, which this plugin does
    // not do: no DNS, result none (never a temperror the host's resolver would give for it).
    bool internationalized = false;
    for (const char c : from.domain)
      if (static_cast<unsigned char>(c) >= 0x80) internationalized = true;
    // The policy is looked up before anything is written: a try on the host's I/O thread
    // (MG_PLUGIN_TRY_INLINE) that meets a record not in the resolver's cache leaves no trace.
    std::optional<dm::Discovery> discovery;
    if (from.status == dm::FromStatus::kOk && !internationalized) {
      bool would_block = false;
      discovery = dm::discover_policy(from.domain, *psl_, [&](const std::string& name) {
        return lookup_txt(s, name, would_block);
      });
      if (would_block) return Action::kRetryBlocking;
    }

    // Our own header field is ours alone: drop any the message arrived with.
    if (spoofed_header) s.header_remove(quarantine_header_, 0);
    dm::HistoryRow row = base_row(s);
    if (from.status != dm::FromStatus::kOk) return bad_from(s, from, row);
    row.header_from = from.domain;
    if (internationalized)
      return no_policy(s, from.domain, "none", "DMARC_NONE", scores_.none,
                       "internationalized From domain not looked up", row);

    dm::Verdict verdict;
    std::vector<dm::AuthEntry> results;
    for (const auto& r : s.auth_results())
      results.push_back(
          dm::AuthEntry{std::string(r.method), std::string(r.result), std::string(r.properties)});
    dm::collect_identities(results, verdict);
    fill_identities(verdict, row);

    switch (discovery->status) {
      case dm::Discovery::Status::kNone:
        return no_policy(s, from.domain, "none", "DMARC_NONE", scores_.none, discovery->problem,
                         row);
      case dm::Discovery::Status::kPermError:
        row.policy_domain = discovery->record.domain;
        row.record = discovery->record.text;
        return no_policy(s, from.domain, "permerror", "DMARC_PERMERROR", scores_.permerror,
                         discovery->problem, row);
      case dm::Discovery::Status::kTempError: {
        const Action a = no_policy(s, from.domain, "temperror", "DMARC_TEMPERROR",
                                   scores_.temperror, discovery->problem, row);
        if (tempfail_on_dns_error_)
          return s.tempfail(451, "4.7.1",
                            "DMARC policy of " + from.domain +
                                " cannot be retrieved now (DNS failure), try again later");
        return a;
      }
      case dm::Discovery::Status::kFound:
        break;
    }

    dm::evaluate(from.domain, *discovery, *psl_, pct_roll(), honour_pct_, verdict);
    return apply(s, from.domain, *discovery, verdict, row);
  }

 private:
  // One TXT lookup for discover_policy(); `would_block` is set when a try on the I/O thread
  // met a name not in the resolver's cache (the answer is then a temporary failure).
  static dm::TxtAnswer lookup_txt(Session& s, const std::string& name, bool& would_block) {
    dm::TxtAnswer answer;
    const mailgate::DnsResult result = s.dns(name, DnsType::kTxt);
    switch (result.status()) {
      case DnsStatus::kOk:
        answer.status = dm::TxtAnswer::Status::kOk;
        for (std::string_view text : result.texts()) answer.texts.emplace_back(text);
        break;
      case DnsStatus::kNxDomain:
      case DnsStatus::kNoData:
        answer.status = dm::TxtAnswer::Status::kNoRecord;
        break;
      case DnsStatus::kWouldBlock:
        would_block = true;
        answer.status = dm::TxtAnswer::Status::kTempFail;
        break;
      case DnsStatus::kTempFail:
        answer.status = dm::TxtAnswer::Status::kTempFail;
        break;
      case DnsStatus::kError:
        answer.status = dm::TxtAnswer::Status::kError;
        break;
    }
    return answer;
  }

  dm::HistoryRow base_row(Session& s) const {
    dm::HistoryRow row;
    row.date = static_cast<std::int64_t>(std::time(nullptr));
    row.tx_id = std::string(s.get(Item::kTxId));
    row.source_ip = std::string(s.get(Item::kClientAddr));
    row.helo = std::string(s.get(Item::kHelo));
    row.envelope_from = std::string(s.get(Item::kSender));
    const auto rcpts = s.recipients();
    if (!rcpts.empty()) row.envelope_to = dm::domain_of(rcpts.front());
    row.dkim_aligned = "fail";
    row.spf_aligned = "fail";
    row.disposition = "none";
    row.dkim = "[]";
    return row;
  }

  static void fill_identities(const dm::Verdict& v, dm::HistoryRow& row) {
    nlohmann::json dkim = nlohmann::json::array();
    for (const dm::DkimSignature& sig : v.dkim)
      dkim.push_back({{"domain", sig.domain},
                      {"selector", sig.selector},
                      {"result", sig.result},
                      {"aligned", sig.aligned}});
    row.dkim = dkim.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    row.dkim_aligned = v.dkim_aligned ? "pass" : "fail";
    row.spf_aligned = v.spf_aligned ? "pass" : "fail";
    row.spf_domain = v.spf.domain;
    row.spf_scope = v.spf.scope;
    row.spf_result = v.spf.result;
  }

  void record(Session& s, const dm::HistoryRow& row) {
    if (!history_) return;
    const std::string error = history_->record(row);
    if (!error.empty()) s.log(LogLevel::kWarning, "dmarc: history: " + error);
  }

  // No or several From addresses, or one without a usable domain (RFC 7489 section 6.6.1).
  Action bad_from(Session& s, const dm::FromDomain& from, dm::HistoryRow& row) {
    const bool absent = from.status == dm::FromStatus::kAbsent;
    const char* result = absent ? "none" : "permerror";
    s.add_symbol(absent ? "DMARC_NONE" : "DMARC_PERMERROR",
                 absent ? scores_.none : scores_.permerror, from.problem);
    s.add_auth_result("dmarc", result, clean(from.problem));
    row.result = result;
    s.log(LogLevel::kInfo, std::string("dmarc: result=") + result + " (" + from.problem + ")" +
                               (reject_bad_from_ ? " action=reject" : ""));
    record(s, row);
    if (reject_bad_from_)
      return s.reject(550, "5.7.1",
                      "Message refused: DMARC needs exactly one author address in exactly one "
                      "From header field (" +
                          from.problem + ")");
    return Action::kContinue;
  }

  // none / permerror / temperror: DMARC does not apply.
  Action no_policy(Session& s, const std::string& domain, const char* result, const char* symbol,
                   double score, const std::string& problem, dm::HistoryRow& row) {
    s.add_symbol(symbol, score, "header.from=" + domain + " " + problem);
    s.add_auth_result("dmarc", result, clean(problem), "header.from=" + domain);
    row.result = result;
    s.log(LogLevel::kInfo,
          std::string("dmarc: result=") + result + " header.from=" + domain + " (" + problem + ")");
    record(s, row);
    return Action::kContinue;
  }

  Action apply(Session& s, const std::string& domain, const dm::Discovery& discovery,
               const dm::Verdict& v, dm::HistoryRow& row) {
    const dm::PolicyRecord& rec = discovery.record;
    row.policy_domain = rec.domain;
    row.record = rec.text;
    row.p = dm::policy_name(rec.p);
    row.sp = dm::policy_name(rec.sp);
    row.pct = rec.pct;
    row.adkim = std::string(1, rec.adkim);
    row.aspf = std::string(1, rec.aspf);
    for (const std::string& uri : rec.rua) row.rua += (row.rua.empty() ? "" : ",") + uri;
    row.result = v.result;
    row.policy_requested = dm::policy_name(v.policy);
    fill_identities(v, row);

    // What this gateway does for the disposition the policy asks for.
    char applied = v.disposition;
    if (v.disposition == 'r') {
      applied = reject_act_ == Act::kReject ? 'r' : reject_act_ == Act::kQuarantine ? 'q' : 'n';
    } else if (v.disposition == 'q') {
      applied = quarantine_act_ == Act::kQuarantine ? 'q' : 'n';
    }
    row.disposition = dm::policy_name(applied);
    if (v.sampled_out)
      row.override_reason = "sampled_out";
    else if (applied != v.disposition)
      row.override_reason = "local_policy";

    std::string detail =
        "header.from=" + domain + " policy_domain=" + rec.domain + " p=" + dm::policy_name(rec.p);
    if (rec.sp != '\0') detail += std::string(" sp=") + dm::policy_name(rec.sp);
    detail += " pct=" + std::to_string(rec.pct) + " adkim=" + rec.adkim + " aspf=" + rec.aspf +
              " spf=" + v.spf.result + (v.spf.domain.empty() ? "" : "(" + v.spf.domain + ")") +
              " spf_aligned=" + (v.spf_aligned ? "yes" : "no") + " dkim=";
    if (v.dkim.empty()) detail += "none";
    for (std::size_t i = 0; i < v.dkim.size(); ++i)
      detail += (i ? "," : "") + v.dkim[i].result + "(" + v.dkim[i].domain + ")";
    detail += std::string(" dkim_aligned=") + (v.dkim_aligned ? "yes" : "no");
    if (v.result == "fail")
      detail += std::string(" dis=") + dm::policy_name(v.disposition) +
                (v.sampled_out ? " sampled_out" : "") + " applied=" + dm::policy_name(applied);

    if (v.result == "pass") {
      s.add_symbol("DMARC_PASS", scores_.pass, detail);
    } else if (v.disposition == 'r') {
      s.add_symbol("DMARC_FAIL_REJECT", scores_.fail_reject, detail);
    } else if (v.disposition == 'q') {
      s.add_symbol("DMARC_FAIL_QUARANTINE", scores_.fail_quarantine, detail);
    } else {
      s.add_symbol("DMARC_FAIL_NONE", scores_.fail_none, detail);
    }
    const std::string policy = dm::policy_name(v.policy);
    s.add_auth_result("dmarc", v.result,
                      "p=" + std::string(dm::policy_name(rec.p)) +
                          (rec.sp != '\0' ? std::string(" sp=") + dm::policy_name(rec.sp) : "") +
                          " dis=" + dm::policy_name(applied),
                      "header.from=" + domain);
    s.log(LogLevel::kInfo, "dmarc: result=" + v.result + " " + detail +
                               (discovery.problem.empty() ? "" : " (" + discovery.problem + ")"));
    record(s, row);

    if (applied == 'q') {
      s.header_add(quarantine_header_, "quarantine header.from=" + domain + " policy=" + policy);
    } else if (applied == 'r') {
      return s.reject(550, "5.7.1",
                      "Message rejected by the DMARC policy of " + rec.domain + " (" +
                          (v.subdomain_policy ? "sp=" : "p=") + policy + ") for From domain " +
                          domain + ": no aligned SPF or DKIM pass");
    }
    return Action::kContinue;
  }

  void parse_settings() {
    const nlohmann::json settings = mailgate::plugins::parse_settings_object(settings_json());
    const auto boolean = mailgate::plugins::setting_bool;
    const auto string = [](const nlohmann::json& value, const std::string& key) {
      if (!value.is_string())
        throw std::invalid_argument("setting \"" + key + "\" must be a string");
      return value.get<std::string>();
    };
    for (const auto& [key, value] : settings.items()) {
      if (key == "public_suffix_list") {
        psl_path_ = string(value, key);
        if (psl_path_.empty())
          throw std::invalid_argument("setting \"public_suffix_list\" must name a file");
      } else if (key == "history_db") {
        history_path_ = string(value, key);
      } else if (key == "reject_action") {
        reject_act_ = parse_act(value, key, true);
      } else if (key == "quarantine_action") {
        quarantine_act_ = parse_act(value, key, false);
      } else if (key == "quarantine_header") {
        quarantine_header_ = string(value, key);
        if (!valid_header_name(quarantine_header_))
          throw std::invalid_argument("setting \"quarantine_header\" is not a header field name");
      } else if (key == "honour_pct") {
        honour_pct_ = boolean(value, key);
      } else if (key == "tempfail_on_dns_error") {
        tempfail_on_dns_error_ = boolean(value, key);
      } else if (key == "skip_relay_networks") {
        skip_relay_networks_ = boolean(value, key);
      } else if (key == "skip_authenticated") {
        skip_authenticated_ = boolean(value, key);
      } else if (key == "reject_bad_from") {
        reject_bad_from_ = boolean(value, key);
      } else if (key == "scores") {
        if (!value.is_object()) throw std::invalid_argument("setting \"scores\" must be an object");
        for (const auto& [name, score] : value.items()) {
          if (!score.is_number())
            throw std::invalid_argument("setting \"scores\"." + name + " must be a number");
          const double v = score.get<double>();
          if (name == "pass")
            scores_.pass = v;
          else if (name == "fail_reject")
            scores_.fail_reject = v;
          else if (name == "fail_quarantine")
            scores_.fail_quarantine = v;
          else if (name == "fail_none")
            scores_.fail_none = v;
          else if (name == "none")
            scores_.none = v;
          else if (name == "temperror")
            scores_.temperror = v;
          else if (name == "permerror")
            scores_.permerror = v;
          else
            throw std::invalid_argument(
                "unknown result \"" + name +
                "\" in \"scores\" (known: pass, fail_reject, fail_quarantine, fail_none, none, "
                "temperror, permerror)");
        }
      } else {
        throw std::invalid_argument(
            "unknown setting \"" + key +
            "\" (the dmarc plugin knows public_suffix_list, history_db, reject_action, "
            "quarantine_action, quarantine_header, honour_pct, tempfail_on_dns_error, "
            "skip_relay_networks, skip_authenticated, reject_bad_from, scores)");
      }
    }
  }

  std::string psl_path_ = kDefaultPublicSuffixList;
  std::string history_path_;
  Act reject_act_ = Act::kReject;
  Act quarantine_act_ = Act::kQuarantine;
  std::string quarantine_header_ = "X-Mailgate-DMARC";
  bool honour_pct_ = true;
  bool tempfail_on_dns_error_ = false;
  bool skip_relay_networks_ = true;
  bool skip_authenticated_ = true;
  bool reject_bad_from_ = false;
  Scores scores_;
  std::unique_ptr<dm::PublicSuffixList> psl_;
  std::unique_ptr<dm::HistoryDb> history_;
};

}  // namespace

MAILGATE_PLUGIN(Dmarc, "dmarc", "1.0", MG_PLUGIN_TRY_INLINE);
