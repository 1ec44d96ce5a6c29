// plugins/access/access.cc — the `access` plugin: access lists and anti-relay.
//
// Owns: the order in which the policy's access tables are asked at each stage, the meaning of
// their answers, and the anti-relay rule. The tables themselves (patterns, CIDR and suffix
// matching, case-insensitivity, precedence within one table) belong to the gateway's policy
// snapshot; this plugin only reads them through host->policy_lookup, like any third-party
// plugin would (it uses the public SDK and nothing else).
//
//   CONNECT  access:client            (client IP)
//   HELO     access:helo              (HELO/EHLO argument)
//   MAIL     access:sender            (full address; skipped for the null sender <>)
//            access:sender_domain     (its domain)
//   RCPT     access:recipient         (full address)
//            access:recipient_domain  (its domain)
//            anti-relay: the recipient's domain must be a local domain, or the client must be
//            in a relay network, or the session must be authenticated; else
//            554 5.7.1 <rcpt>: Relay access denied
//
// Within a stage the first table with a rule decides: "allow" answers ACCEPT (the rest of the
// chain is skipped for this stage; for a recipient it also skips the relay check), "deny"
// REJECT and "tempfail" TEMPFAIL with the rule's reply. No rule: the next table, then
// CONTINUE. A rule value this plugin cannot read answers MG_FAILED (the entry's fail mode).
//
// Settings (JSON object, every key optional): {"relay_check": true}. Unknown keys and wrong
// types make create() fail with a message naming the key.
//
// Threads: MG_PLUGIN_NONBLOCKING — it only does in-memory policy lookups. The state is
// immutable after construction, so concurrent sessions share it safely.
#include <cstdlib>
#include <mailgate/plugin.hpp>
#include <nlohmann/json.hpp>

#include "common/settings.hpp"
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;

// One access rule as the policy snapshot summarises it: "allow", or
// "deny|tempfail CODE [ENHANCED] TEXT" ("deny 554 5.7.1 Access denied").
struct Rule {
  enum class Kind { kAllow, kDeny, kTempfail };
  Kind kind = Kind::kAllow;
  int code = 0;
  std::string enhanced;  // "" when the value has none
  std::string text;
};

std::string_view next_token(std::string_view& rest) {
  const std::size_t start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  const std::size_t end = rest.find(' ');
  const std::string_view token = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return token;
}

bool is_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "X.Y.Z": a class digit, then two groups of 1..3 digits (RFC 3463).
bool is_enhanced_code(std::string_view s) {
  const std::size_t dot1 = s.find('.');
  if (dot1 != 1 || !is_digits(s.substr(0, 1))) return false;
  const std::size_t dot2 = s.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return false;
  const std::string_view subject = s.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view detail = s.substr(dot2 + 1);
  return is_digits(subject) && subject.size() <= 3 && is_digits(detail) && detail.size() <= 3;
}

std::optional<Rule> parse_rule(std::string_view value) {
  std::string_view rest = value;
  const std::string_view action = next_token(rest);
  Rule rule;
  if (action == "allow") return next_token(rest).empty() ? std::optional<Rule>(rule) : std::nullopt;
  if (action == "deny") {
    rule.kind = Rule::Kind::kDeny;
  } else if (action == "tempfail") {
    rule.kind = Rule::Kind::kTempfail;
  } else {
    return std::nullopt;
  }
  const std::string_view code = next_token(rest);
  if (code.size() != 3 || !is_digits(code)) return std::nullopt;
  rule.code = std::atoi(std::string(code).c_str());
  const char want = rule.kind == Rule::Kind::kDeny ? '5' : '4';
  if (code[0] != want) return std::nullopt;
  std::string_view after_code = rest;
  const std::string_view maybe_enhanced = next_token(rest);
  if (is_enhanced_code(maybe_enhanced) && maybe_enhanced[0] == want) {
    rule.enhanced = std::string(maybe_enhanced);
  } else {
    rest = after_code;  // no enhanced code: everything after the code is text
  }
  const std::size_t text_start = rest.find_first_not_of(' ');
  if (text_start != std::string_view::npos) rule.text = std::string(rest.substr(text_start));
  return rule;
}

// The domain of an address: after the last '@', without a trailing root dot. "" when none.
std::string_view domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view domain = address.substr(at + 1);
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  return domain;
}

class Access final : public mailgate::Plugin {
 public:
  explicit Access(const mailgate::PluginContext& context) : Plugin(context) {
    const nlohmann::json settings = mailgate::plugins::parse_settings_object(settings_json());
    for (const auto& [key, value] : settings.items()) {
      if (key == "relay_check") {
        relay_check_ = mailgate::plugins::setting_bool(value, key);
      } else {
        throw std::invalid_argument("unknown setting \"" + key +
                                    "\" (the access plugin knows only \"relay_check\")");
      }
    }
    if (!relay_check_)
      log(LogLevel::kWarning,
          "access: relay_check is off: this gateway does not refuse relaying itself, the "
          "backend must");
  }

  Action on_connect(Session& s) override {
    const std::optional<std::string_view> client = s.find(Item::kClientAddr);
    if (!client || client->empty()) return Action::kContinue;
    return decide(s, "access:client", *client).value_or(Action::kContinue);
  }

  Action on_helo(Session& s, std::string_view helo) override {
    if (helo.empty()) return Action::kContinue;
    return decide(s, "access:helo", helo).value_or(Action::kContinue);
  }

  Action on_mail(Session& s, std::string_view sender) override {
    if (sender.empty()) return Action::kContinue;  // the null sender <> has nothing to match
    if (auto action = decide(s, "access:sender", sender)) return *action;
    const std::string_view domain = domain_of(sender);
    if (domain.empty()) return Action::kContinue;
    return decide(s, "access:sender_domain", domain).value_or(Action::kContinue);
  }

  Action on_rcpt(Session& s, std::string_view recipient) override {
    if (auto action = decide(s, "access:recipient", recipient)) return *action;
    const std::string_view domain = domain_of(recipient);
    if (!domain.empty()) {
      if (auto action = decide(s, "access:recipient_domain", domain)) return *action;
    }
    if (relay_check_ && !may_relay(s, recipient))
      return s.reject(554, "5.7.1", "<" + std::string(recipient) + ">: Relay access denied");
    return Action::kContinue;
  }

 private:
  // The access rule of `table` for `key` as an action (after setting the reply), or nullopt
  // when the table has no rule for it.
  std::optional<Action> decide(Session& s, std::string_view table, std::string_view key) const {
    const std::optional<std::string> value = policy_lookup(table, key);
    if (!value) return std::nullopt;
    const std::optional<Rule> rule = parse_rule(*value);
    if (!rule) {
      s.log(LogLevel::kError, std::string(table) + " rule for '" + std::string(key) +
                                  "' has a value this plugin cannot read: '" + *value +
                                  "'; the plugin's fail mode applies");
      return Action::kFailed;
    }
    s.log(LogLevel::kDebug, std::string(table) + " rule for '" + std::string(key) + "': " + *value);
    switch (rule->kind) {
      case Rule::Kind::kAllow:
        return Action::kAccept;
      case Rule::Kind::kDeny:
        return s.reject(rule->code, rule->enhanced, rule->text);
      case Rule::Kind::kTempfail:
        return s.tempfail(rule->code, rule->enhanced, rule->text);
    }
    return Action::kFailed;
  }

  // Whether `recipient` may be accepted from this client: its domain is a local domain, or the
  // client is in a relay network, or the session is authenticated.
  bool may_relay(Session& s, std::string_view recipient) const {
    if (is_local_destination(recipient)) return true;
    const std::optional<std::string_view> user = s.find(Item::kAuthUser);
    if (user && !user->empty()) return true;
    const std::optional<std::string_view> client = s.find(Item::kClientAddr);
    if (client && !client->empty() && policy_lookup("relay_networks", *client)) return true;
    s.log(LogLevel::kInfo, "relay access denied: <" + std::string(recipient) + "> from client " +
                               std::string(client.value_or("?")) +
                               " (not a local domain, not a relay network, not authenticated)");
    return false;
  }

  // A recipient this gateway's backend delivers itself: its domain is a local domain. A
  // recipient without a domain (only <postmaster> gets that far) is local. A local part with
  // '@', '%' or '!' asks for sender-specified routing ("user%remote@local"), which a backend
  // may honour: like Postfix (allow_untrusted_routing = no), it is not a local destination.
  bool is_local_destination(std::string_view recipient) const {
    const std::size_t at = recipient.rfind('@');
    if (at == std::string_view::npos) return true;
    if (recipient.substr(0, at).find_first_of("@%!") != std::string_view::npos) return false;
    const std::string_view domain = domain_of(recipient);
    return !domain.empty() && policy_lookup("local_domains", domain).has_value();
  }

  bool relay_check_ = true;
};

}  // namespace

MAILGATE_PLUGIN(Access, "access", "1.0.0", MG_PLUGIN_NONBLOCKING);
