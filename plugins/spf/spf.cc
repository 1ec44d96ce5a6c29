// plugins/spf/spf.cc — the `spf` plugin: Sender Policy Framework (RFC 7208) on libspf2, every
// DNS lookup through the host's resolver (spf_dns.h), processing limits per evaluation.
//
// Owns: when identities are checked, what a result scores, which action it gets, the replies,
// the Received-SPF field and the log line. Where:
//
//   MAIL  evaluate, once per transaction (skipped for clients in the policy table
//         relay_networks and for authenticated clients, when so configured):
//           - HELO identity (postmaster@HELO) when helo_check is on and the HELO is a domain
//             name (not an address literal);
//           - MAIL FROM identity; for the null sender <> it is postmaster@HELO, the HELO
//             result is reused.
//         Symbols SPF_<RESULT> (MAIL FROM identity, scored) and SPF_HELO_<RESULT> (score 0),
//         one log line per identity evaluated. MAIL itself is never refused. One "spf"
//         authentication result (ABI 1.1) for the MAIL FROM identity: smtp.mailfrom=<sender>,
//         or smtp.helo=<HELO> for the null sender; DMARC and authres read it.
//   RCPT  the action for the MAIL FROM result, taken per recipient: the recipient domain's
//         entry in "domains" overrides the global one. reject/tempfail refuse that recipient
//         only (the transaction goes on with the others); accept lets it through.
//   EOM   Received-SPF (RFC 7208 section 9.1) inserted at the top.
//
// Replies: fail/softfail rejected → 550 5.7.23 with the SPF explanation; tempfailed → 451
// 4.7.23; temperror → 451 4.7.24 (or 550 5.7.24 if set to reject); permerror → 550 5.7.24
// (451 4.7.24 if set to tempfail).
//
// Settings (JSON object, every key optional; unknown keys or wrong types fail create()):
//   "pass" | "fail" | "softfail" | "neutral" | "none" | "temperror" | "permerror":
//       "reject" | "tempfail" | "accept"    defaults: fail reject, temperror tempfail, others
//                                           accept
//   "scores": {"<result>": number, ...}     defaults: pass -0.5, fail 5, softfail 2,
//                                           neutral 0, none 0, temperror 0, permerror 1
//   "domains": {"example.com": {"<result>": action, ...}, ...}  per recipient domain
//   "skip_relay_networks": true, "skip_authenticated": true, "helo_check": true,
//   "receiver": "mx.example.net"            (default: the host name) for Received-SPF
//
// Threads: MAIL blocks (DNS), but is tried on the I/O thread first with DNS from the
// resolver's cache (MG_PLUGIN_TRY_INLINE) and writes nothing until both identities are
// evaluated; RCPT and EOM only apply its result and run on the I/O thread
// (MG_PLUGIN_INLINE_STAGE). The settings and the SPF_server_t are
// read-only after construction; each evaluation has its own SPF_request_t, SPF_response_t and
// limit counters (spf_dns.h), so concurrent sessions share the plugin.
#include <arpa/inet.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <mailgate/plugin.hpp>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/settings.hpp"
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "spf_dns.h"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;
using mailgate_spf::Evaluation;

// The results of RFC 7208 section 2.6, in the order of the settings' tables.
enum class Result { kPass, kFail, kSoftFail, kNeutral, kNone, kTempError, kPermError };
constexpr std::size_t kResultCount = 7;
constexpr std::array<const char*, kResultCount> kResultNames = {
    "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"};
constexpr std::array<const char*, kResultCount> kSymbols = {
    "SPF_PASS", "SPF_FAIL",      "SPF_SOFTFAIL", "SPF_NEUTRAL",
    "SPF_NONE", "SPF_TEMPERROR", "SPF_PERMERROR"};
constexpr std::array<const char*, kResultCount> kHeloSymbols = {
    "SPF_HELO_PASS", "SPF_HELO_FAIL",      "SPF_HELO_SOFTFAIL", "SPF_HELO_NEUTRAL",
    "SPF_HELO_NONE", "SPF_HELO_TEMPERROR", "SPF_HELO_PERMERROR"};

const char* name_of(Result r) { return kResultNames[static_cast<std::size_t>(r)]; }

enum class Verdict { kAccept, kReject, kTempfail };
using Actions = std::array<Verdict, kResultCount>;

constexpr Actions kDefaultActions = {Verdict::kAccept, Verdict::kReject, Verdict::kAccept,
                                     Verdict::kAccept, Verdict::kAccept, Verdict::kTempfail,
                                     Verdict::kAccept};
constexpr std::array<double, kResultCount> kDefaultScores = {-0.5, 5.0, 2.0, 0.0, 0.0, 0.0, 1.0};

std::optional<std::size_t> result_index(std::string_view name) {
  for (std::size_t i = 0; i < kResultCount; ++i)
    if (name == kResultNames[i]) return i;
  return std::nullopt;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The domain of an address, lower case, without a trailing dot; "" when none.
std::string domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string domain = lower(address.substr(at + 1));
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  return domain;
}

// A HELO argument SPF can check: a domain name with a dot, not an address literal.
bool checkable_helo(std::string_view helo) {
  if (helo.empty() || helo.front() == '[' || helo.find('.') == std::string_view::npos) return false;
  in6_addr a6{};
  in_addr a4{};
  const std::string h(helo);
  return inet_pton(AF_INET, h.c_str(), &a4) != 1 && inet_pton(AF_INET6, h.c_str(), &a6) != 1;
}

Verdict parse_verdict(const nlohmann::json& value, const std::string& where) {
  if (value.is_string()) {
    const std::string v = value.get<std::string>();
    if (v == "reject") return Verdict::kReject;
    if (v == "tempfail") return Verdict::kTempfail;
    if (v == "accept") return Verdict::kAccept;
  }
  throw std::invalid_argument("setting " + where +
                              " must be \"reject\", \"tempfail\" or \"accept\"");
}

// Reads {"<result>": action, ...} into `actions`; other keys are refused.
void parse_actions(const nlohmann::json& object, Actions& actions, const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    const std::optional<std::size_t> i = result_index(key);
    if (!i)
      throw std::invalid_argument("unknown result \"" + key + "\" in " + where +
                                  " (known: pass, fail, softfail, neutral, none, temperror, "
                                  "permerror)");
    actions[*i] = parse_verdict(value, where + "." + key);
  }
}

struct SpfServerDeleter {
  void operator()(SPF_server_t* s) const noexcept { SPF_server_free(s); }
};
struct SpfRequestDeleter {
  void operator()(SPF_request_t* r) const noexcept { SPF_request_free(r); }
};
struct SpfResponseDeleter {
  void operator()(SPF_response_t* r) const noexcept { SPF_response_free(r); }
};

// One identity's outcome.
struct Outcome {
  Result result = Result::kNone;
  std::string identity;     // "mailfrom" or "helo"
  std::string sender;       // the address checked (postmaster@HELO for helo / <>)
  std::string domain;       // the domain whose record was asked
  std::string comment;      // for Received-SPF's comment and the log
  std::string explanation;  // for a fail reply (exp= or our default)
  std::string problem;      // permerror/temperror detail
  int dns_terms = 0;        // for the log line
  int void_lookups = 0;
};

// What MAIL found, for RCPT and EOM.
struct Transaction {
  bool skipped = false;
  std::string skip_reason;
  Outcome mailfrom;
  std::optional<Outcome> helo;
  std::string client_ip;
  std::string helo_name;
  std::string envelope_from;
};

class Spf final : public mailgate::Plugin {
 public:
  explicit Spf(const mailgate::PluginContext& context) : Plugin(context) {
    parse_settings();
    if (receiver_.empty()) {
      char name[256] = "";
      if (gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0')
        receiver_ = name;
      else
        receiver_ = "localhost";
    }
    dns_ = mailgate_spf::make_dns_layer();
    if (!dns_) throw std::runtime_error("spf: out of memory for the DNS layer");
    server_.reset(SPF_server_new_dns(dns_.get(), 0));
    if (!server_) throw std::runtime_error("spf: SPF_server_new_dns failed");
    SPF_server_set_rec_dom(server_.get(), receiver_.c_str());
    SPF_server_set_sanitize(server_.get(), 1);
    SPF_response_t* response = nullptr;
    const SPF_errcode_t err = SPF_server_set_explanation(
        server_.get(), "%{i}%_is%_not%_allowed%_to%_send%_mail%_for%_%{o}", &response);
    if (response != nullptr) SPF_response_free(response);
    if (err != SPF_E_SUCCESS) throw std::runtime_error("spf: cannot set the default explanation");
  }

  ~Spf() override {
    server_.reset();  // before the DNS layer it uses
    dns_.reset();
  }

  Action on_mail(Session& s, std::string_view sender) override {
    auto tx = std::make_unique<Transaction>();
    tx->client_ip = std::string(s.get(Item::kClientAddr));
    tx->helo_name = std::string(s.get(Item::kHelo));
    tx->envelope_from = std::string(sender);
    if (skip_authenticated_ && s.find(Item::kAuthUser).has_value()) {
      tx->skipped = true;
      tx->skip_reason = "authenticated client";
    } else if (skip_relay_networks_ && !tx->client_ip.empty() &&
               policy_lookup("relay_networks", tx->client_ip).has_value()) {
      tx->skipped = true;
      tx->skip_reason = "client in relay_networks";
    } else if (tx->client_ip.empty()) {
      tx->skipped = true;
      tx->skip_reason = "no client address";
    }
    if (tx->skipped) {
      s.log(LogLevel::kInfo, "spf: not checked (" + tx->skip_reason + ")");
      s.set_data(std::move(tx));
      return Action::kContinue;
    }

    // Both identities are evaluated before anything is written (symbols, log lines): a try on
    // the I/O thread that meets an answer not in the cache leaves no trace (MG_PLUGIN_TRY_INLINE).
    const bool helo_ok = checkable_helo(tx->helo_name);
    if (helo_check_ || sender.empty()) {
      if (helo_ok) {
        tx->helo = evaluate(s, *tx, "helo", "postmaster@" + tx->helo_name, tx->helo_name);
        if (!tx->helo) return Action::kRetryBlocking;
      } else {
        Outcome none;
        none.identity = "helo";
        none.sender = "postmaster@" + tx->helo_name;
        none.comment = "HELO " + (tx->helo_name.empty() ? std::string("(none)") : tx->helo_name) +
                       " is not a domain name that SPF can check";
        tx->helo = none;
      }
    }
    if (sender.empty()) {
      tx->mailfrom = *tx->helo;
      tx->mailfrom.identity = "helo";
    } else {
      std::optional<Outcome> mailfrom =
          evaluate(s, *tx, "mailfrom", std::string(sender), domain_of(sender));
      if (!mailfrom) return Action::kRetryBlocking;
      tx->mailfrom = std::move(*mailfrom);
    }
    if (tx->helo) {
      if (helo_ok) log_line(s, *tx->helo, *tx);
      s.add_symbol(kHeloSymbols[static_cast<std::size_t>(tx->helo->result)], 0.0,
                   "postmaster@" + tx->helo_name + ": " + tx->helo->comment);
    }
    if (!sender.empty()) log_line(s, tx->mailfrom, *tx);
    const std::size_t r = static_cast<std::size_t>(tx->mailfrom.result);
    s.add_symbol(kSymbols[r], scores_[r], tx->mailfrom.sender + ": " + tx->mailfrom.comment);
    // One result for the identity that counts (RFC 8601 section 2.7.2): MAIL FROM, or the HELO
    // name for the null sender — what DMARC aligns and Authentication-Results shows.
    const char* spf_result = name_of(tx->mailfrom.result);
    if (sender.empty()) {
      s.add_auth_result("spf", spf_result, {}, "smtp.helo=" + tx->helo_name);
    } else if (!s.add_auth_result("spf", spf_result, {}, "smtp.mailfrom=" + std::string(sender))) {
      // A quoted local part the header cannot carry (';'): the domain is what counts.
      s.add_auth_result("spf", spf_result, {}, "smtp.mailfrom=" + domain_of(sender));
    }
    s.set_data(std::move(tx));
    return Action::kContinue;
  }

  Action on_rcpt(Session& s, std::string_view recipient) override {
    const Transaction* tx = s.data<Transaction>();
    if (tx == nullptr || tx->skipped) return Action::kContinue;
    const Result result = tx->mailfrom.result;
    const std::string rcpt_domain = domain_of(recipient);
    const Actions* actions = &actions_;
    auto it = domain_actions_.find(rcpt_domain);
    if (it != domain_actions_.end()) actions = &it->second;
    const Verdict verdict = (*actions)[static_cast<std::size_t>(result)];
    if (verdict == Verdict::kAccept) return Action::kContinue;

    const std::string what = "SPF " + std::string(name_of(result)) + " for " + tx->mailfrom.sender;
    s.log(LogLevel::kInfo,
          "spf: " + std::string(verdict == Verdict::kReject ? "reject" : "tempfail") + " <" +
              std::string(recipient) + ">: " + what);
    switch (result) {
      case Result::kTempError:
        return verdict == Verdict::kReject
                   ? s.reject(550, "5.7.24", what + ": " + tx->mailfrom.problem)
                   : s.tempfail(451, "4.7.24", what + ": DNS lookup failed, try again later");
      case Result::kPermError:
        return verdict == Verdict::kReject
                   ? s.reject(550, "5.7.24", what + ": " + tx->mailfrom.problem)
                   : s.tempfail(451, "4.7.24", what + ": " + tx->mailfrom.problem);
      default: {
        const std::string text =
            what + ": " +
            (tx->mailfrom.explanation.empty() ? tx->mailfrom.comment : tx->mailfrom.explanation);
        return verdict == Verdict::kReject ? s.reject(550, "5.7.23", text)
                                           : s.tempfail(451, "4.7.23", text);
      }
    }
  }

  Action on_eom(Session& s) override {
    const Transaction* tx = s.data<Transaction>();
    if (tx == nullptr || tx->skipped) return Action::kContinue;
    s.header_insert(0, "Received-SPF", received_spf(*tx));
    return Action::kContinue;
  }

  // Received-SPF's value (RFC 7208 section 9.1), folded.
  std::string received_spf(const Transaction& tx) const {
    const Outcome& o = tx.mailfrom;
    std::string v = name_of(o.result);
    v += " (" + receiver_ + ": " + o.comment + ")";
    v += "\r\n\tclient-ip=" + tx.client_ip + ";";
    v += " envelope-from=\"" + quoted(tx.envelope_from.empty() ? o.sender : tx.envelope_from) +
         "\";";
    if (!tx.helo_name.empty()) v += " helo=" + token(tx.helo_name) + ";";
    v += "\r\n\treceiver=" + token(receiver_) + "; identity=" + o.identity + ";";
    if (!o.problem.empty()) v += " problem=\"" + quoted(o.problem) + "\";";
    return v;
  }

 private:
  void parse_settings() {
    const nlohmann::json settings = mailgate::plugins::parse_settings_object(settings_json());
    const auto boolean = mailgate::plugins::setting_bool;
    for (const auto& [key, value] : settings.items()) {
      if (const std::optional<std::size_t> i = result_index(key)) {
        actions_[*i] = parse_verdict(value, "\"" + key + "\"");
      } else if (key == "scores") {
        if (!value.is_object()) throw std::invalid_argument("setting \"scores\" must be an object");
        for (const auto& [name, score] : value.items()) {
          const std::optional<std::size_t> j = result_index(name);
          if (!j) throw std::invalid_argument("unknown result \"" + name + "\" in \"scores\"");
          if (!score.is_number())
            throw std::invalid_argument("setting \"scores\"." + name + " must be a number");
          scores_[*j] = score.get<double>();
        }
      } else if (key == "domains") {
        if (!value.is_object())
          throw std::invalid_argument("setting \"domains\" must be an object of domain → actions");
      } else if (key == "skip_relay_networks") {
        skip_relay_networks_ = boolean(value, key);
      } else if (key == "skip_authenticated") {
        skip_authenticated_ = boolean(value, key);
      } else if (key == "helo_check") {
        helo_check_ = boolean(value, key);
      } else if (key == "receiver") {
        if (!value.is_string() || value.get<std::string>().empty() ||
            value.get<std::string>().find_first_of(" \t\r\n;\"") != std::string::npos)
          throw std::invalid_argument("setting \"receiver\" must be a host name");
        receiver_ = value.get<std::string>();
      } else {
        throw std::invalid_argument(
            "unknown setting \"" + key +
            "\" (the spf plugin knows pass, fail, softfail, neutral, none, temperror, "
            "permerror, scores, domains, skip_relay_networks, skip_authenticated, helo_check, "
            "receiver)");
      }
    }
    // Per-domain tables start from the global actions, so they are parsed last.
    if (settings.contains("domains")) {
      for (const auto& [domain, table] : settings["domains"].items()) {
        const std::string where = "\"domains\".\"" + domain + "\"";
        if (!table.is_object())
          throw std::invalid_argument("setting " + where + " must be an object");
        std::string key = lower(domain);
        if (!key.empty() && key.back() == '.') key.pop_back();
        if (key.empty()) throw std::invalid_argument("setting \"domains\" has an empty domain");
        Actions actions = actions_;
        parse_actions(table, actions, where);
        domain_actions_[key] = actions;
      }
    }
  }

  // RFC 7208 quoted-string content: backslash and double quote escaped, controls dropped.
  static std::string quoted(std::string_view text) {
    std::string out;
    for (char c : text) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out;
  }
  // A dot-atom-ish token; anything else is quoted.
  static std::string token(std::string_view text) {
    for (char c : text) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
      if (!ok) return "\"" + quoted(text) + "\"";
    }
    return std::string(text);
  }

  // The identity's outcome; nullopt when a try on the I/O thread needed an answer the cache
  // does not have (the host then runs MAIL again on its worker pool).
  std::optional<Outcome> evaluate(Session& s, const Transaction& tx, const std::string& identity,
                                  const std::string& sender, const std::string& domain) const {
    Outcome out;
    out.identity = identity;
    out.sender = sender;
    out.domain = domain;
    Evaluation ev(host(), s.raw());
    std::unique_ptr<SPF_request_t, SpfRequestDeleter> req(SPF_request_new(server_.get()));
    if (!req) throw std::runtime_error("spf: out of memory");
    const bool v6 = tx.client_ip.find(':') != std::string::npos;
    const SPF_errcode_t ip_err = v6 ? SPF_request_set_ipv6_str(req.get(), tx.client_ip.c_str())
                                    : SPF_request_set_ipv4_str(req.get(), tx.client_ip.c_str());
    if (ip_err != SPF_E_SUCCESS) {
      out.result = Result::kNone;
      out.comment = "client address " + tx.client_ip + " is not usable";
      return out;
    }
    if (!tx.helo_name.empty()) SPF_request_set_helo_dom(req.get(), tx.helo_name.c_str());
    if (domain.empty() || SPF_request_set_env_from(req.get(), sender.c_str()) != 0) {
      out.result = Result::kNone;
      out.comment = "no domain to check in " + sender;
      return out;
    }

    SPF_response_t* raw_response = nullptr;
    {
      Evaluation::Scope scope(ev);
      SPF_request_query_mailfrom(req.get(), &raw_response);
    }
    std::unique_ptr<SPF_response_t, SpfResponseDeleter> response(raw_response);
    if (ev.would_block()) return std::nullopt;
    out.dns_terms = ev.dns_terms();
    out.void_lookups = ev.void_lookups();

    if (ev.exceeded()) {
      out.result = Result::kPermError;
      out.problem = ev.exceeded_reason();
      out.comment = "permanent error in processing domain of " + sender + ": " + out.problem;
    } else if (ev.tempfailed()) {
      out.result = Result::kTempError;
      out.problem = "DNS lookup failed while checking " + domain;
      out.comment = "temporary error in processing domain of " + sender + ": " + out.problem;
    } else if (!response) {
      out.result = Result::kTempError;
      out.problem = "SPF evaluation failed";
      out.comment = out.problem;
    } else {
      switch (SPF_response_result(response.get())) {
        case SPF_RESULT_PASS:
          out.result = Result::kPass;
          break;
        case SPF_RESULT_FAIL:
          out.result = Result::kFail;
          break;
        case SPF_RESULT_SOFTFAIL:
          out.result = Result::kSoftFail;
          break;
        case SPF_RESULT_NEUTRAL:
          out.result = Result::kNeutral;
          break;
        case SPF_RESULT_NONE:
          out.result = Result::kNone;
          break;
        case SPF_RESULT_TEMPERROR:
          out.result = Result::kTempError;
          break;
        case SPF_RESULT_PERMERROR:
        case SPF_RESULT_INVALID:
        default:
          out.result = Result::kPermError;
          break;
      }
      const char* comment = SPF_response_get_header_comment(response.get());
      out.comment = comment != nullptr ? comment : "";
      // libspf2 prefixes its comment with the receiver: keep the text after it.
      const std::string prefix = receiver_ + ": ";
      if (out.comment.rfind(prefix, 0) == 0) out.comment.erase(0, prefix.size());
      if (out.result == Result::kFail || out.result == Result::kSoftFail) {
        const char* exp = SPF_response_get_explanation(response.get());
        if (exp != nullptr) out.explanation = exp;
      }
      if (out.result == Result::kTempError || out.result == Result::kPermError) {
        for (int i = 0; i < SPF_response_messages(response.get()); ++i) {
          SPF_error_t* e = SPF_response_message(response.get(), i);
          if (e != nullptr && SPF_error_errorp(e) && SPF_error_message(e) != nullptr) {
            out.problem = SPF_error_message(e);
            break;
          }
        }
        if (out.problem.empty())
          out.problem =
              out.result == Result::kTempError ? "DNS lookup failed" : "invalid SPF record";
      }
      if (out.comment.empty()) out.comment = name_of(out.result);
    }
    return out;
  }

  void log_line(Session& s, const Outcome& o, const Transaction& tx) const {
    std::string line =
        "spf: identity=" + o.identity + " sender=<" + o.sender + "> ip=" + tx.client_ip +
        " helo=" + tx.helo_name + " result=" + name_of(o.result) +
        " dns_terms=" + std::to_string(o.dns_terms) +
        " void_lookups=" + std::to_string(o.void_lookups) + " (" + o.comment + ")";
    if (!o.problem.empty()) line += " problem=\"" + o.problem + "\"";
    s.log(LogLevel::kInfo, line);
  }

  Actions actions_ = kDefaultActions;
  std::array<double, kResultCount> scores_ = kDefaultScores;
  std::map<std::string, Actions> domain_actions_;
  bool skip_relay_networks_ = true;
  bool skip_authenticated_ = true;
  bool helo_check_ = true;
  std::string receiver_;
  mailgate_spf::DnsLayer dns_;
  std::unique_ptr<SPF_server_t, SpfServerDeleter> server_;
};

}  // namespace

// RCPT and EOM only apply the result MAIL found (no DNS): they run on the I/O thread. MAIL is
// tried there too, with DNS from the resolver's cache, and goes to the worker pool only when an
// answer is not cached.
MAILGATE_PLUGIN(Spf, "spf", "1.0",
                MG_PLUGIN_INLINE_STAGE(MG_STAGE_RCPT) | MG_PLUGIN_INLINE_STAGE(MG_STAGE_EOM) |
                    MG_PLUGIN_TRY_INLINE);
