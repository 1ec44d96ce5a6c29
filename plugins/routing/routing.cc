// plugins/routing/routing.cc — the `routing` plugin: envelope routes (an
// address, a wildcard or a domain's catch-all -> one or more addresses, or
// drop) applied at RCPT, and SRS for mail it forwards to other domains and for
// the bounces that come back.
//
// Owns, per recipient at RCPT (nothing of the message changes, only the
// envelope):
//   1. SRS reversal: a recipient at srs_domain whose local part is SRS0=/SRS1=
//   is a bounce of
//      mail this gateway forwarded. Valid hash and age -> the recipient becomes
//      the original sender (SRS1: the previous hop's SRS0 address). Bad hash,
//      expired or malformed -> 550 5.1.1. With srs_reverse_only_bounces (the
//      default) a non-null sender -> 550 5.7.1.
//   2. Route: policy_lookup("routes", recipient) (gateway/policy/routes.h;
//   exact > wildcard >
//      catch-all). forward: the recipient is rewritten to the first destination
//      and the others are added; drop: the recipient is removed (the client
//      gets 250, the backend never sees it; a message left with no recipient is
//      discarded). Routes apply once: a destination is not routed again.
//   3. SRS forward: when a destination's domain is not a local domain
//   (policy_lookup
//      "local_domains"), the sender is not null, and its domain is not local,
//      the envelope sender is set to its SRS form (once per transaction; the
//      session applies it to the whole envelope at the end of data).
// Settings (JSON object; SRS is off without srs_domain):
//   {"srs_domain": "fwd.example.com", "srs_secrets": ["current secret", "older
//   one"],
//    "srs_hash_length": 4, "srs_max_age_days": 21, "srs_reverse_only_bounces":
//    true}
// Threads: non-blocking (policy lookups and HMAC only); the state is immutable.
// Must not touch: the message (headers, body), other plugins' recipients.
#include <cstdint>
#include <mailgate/plugin.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/settings.hpp"
#include "srs.h"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;
using mailgate::routing::Srs;
using mailgate::routing::SrsConfig;
using mailgate::routing::SrsStatus;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char &c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : lower(address.substr(at + 1));
}

int int_setting(const nlohmann::json &v, const std::string &key) {
  if (!v.is_number_integer())
    throw std::invalid_argument("setting \"" + key + "\" must be an integer");
  const auto n = v.get<std::int64_t>();
  if (n < -1'000'000 || n > 1'000'000)
    throw std::invalid_argument("setting \"" + key + "\" is out of range");
  return static_cast<int>(n);
}

// What the plugin remembers in a transaction: the SRS sender it set, if any.
struct TxState {
  std::string srs_sender;
};

class RoutingPlugin : public mailgate::Plugin {
 public:
  explicit RoutingPlugin(const mailgate::PluginContext &context) : Plugin(context) {
    const nlohmann::json settings = mailgate::plugins::parse_settings_object(settings_json());
    SrsConfig srs;
    bool has_srs = false;
    for (const auto &[key, value] : settings.items()) {
      if (key == "srs_domain") {
        if (!value.is_string() || value.get<std::string>().empty())
          throw std::invalid_argument("setting \"srs_domain\" must be a domain name");
        srs.domain = value.get<std::string>();
        has_srs = true;
      } else if (key == "srs_secrets") {
        if (!value.is_array())
          throw std::invalid_argument("setting \"srs_secrets\" must be an array");
        for (const auto &s : value) {
          if (!s.is_string())
            throw std::invalid_argument("setting \"srs_secrets\" must hold strings");
          srs.secrets.push_back(s.get<std::string>());
        }
      } else if (key == "srs_hash_length") {
        srs.hash_length = int_setting(value, key);
      } else if (key == "srs_max_age_days") {
        srs.max_age_days = int_setting(value, key);
      } else if (key == "srs_reverse_only_bounces") {
        reverse_only_bounces_ = mailgate::plugins::setting_bool(value, key);
      } else {
        throw std::invalid_argument("unknown setting \"" + key + "\"");
      }
    }
    if (!has_srs && !srs.secrets.empty())
      throw std::invalid_argument("setting \"srs_secrets\" given without \"srs_domain\"");
    if (has_srs) {
      if (srs.domain.find('@') != std::string::npos || srs.domain.find('.') == std::string::npos)
        throw std::invalid_argument("setting \"srs_domain\" must be a domain name (got '" +
                                    srs.domain + "')");
      srs_ = std::make_unique<Srs>(std::move(srs));  // throws on a bad secret, length, age
    } else {
      log(LogLevel::kInfo,
          "routing: SRS is off (no srs_domain): forwarded "
          "mail keeps its sender");
    }
  }

  Action on_rcpt(Session &s, std::string_view recipient) override {
    const std::string_view sender = s.get(Item::kSender);
    const std::size_t at = recipient.rfind('@');
    if (srs_ && at != std::string_view::npos && Srs::is_srs(recipient.substr(0, at)) &&
        domain_of(recipient) == srs_->config().domain)
      return reverse(s, sender, recipient);

    const std::optional<std::string> value = policy_lookup("routes", recipient);
    if (!value) return Action::kContinue;
    nlohmann::json route;
    try {
      route = nlohmann::json::parse(*value);
    } catch (const nlohmann::json::exception &e) {
      s.log(LogLevel::kError,
            "routing: unreadable routes answer for <" + std::string(recipient) + ">: " + e.what());
      return Action::kFailed;
    }
    const std::string pattern = route.value("pattern", "");
    if (route.value("action", "") == "drop") {
      if (!s.rcpt_remove(recipient)) {
        s.log(LogLevel::kError,
              "routing: the host refused to drop <" + std::string(recipient) + ">");
        return Action::kFailed;
      }
      s.log(LogLevel::kInfo,
            "routing: <" + std::string(recipient) + "> dropped (route '" + pattern + "')");
      return Action::kContinue;
    }
    const auto &destinations = route.at("destinations");
    if (!destinations.is_array() || destinations.empty()) return Action::kFailed;
    std::string list;
    bool external = false;
    for (std::size_t i = 0; i < destinations.size(); ++i) {
      const std::string d = destinations[i].get<std::string>();
      const bool ok = i == 0 ? s.rcpt_rewrite(d) : s.rcpt_add(d);
      if (!ok) {
        s.log(LogLevel::kError,
              "routing: the host refused destination <" + d + "> of route '" + pattern + "'");
        return Action::kFailed;
      }
      if (!policy_lookup("local_domains", domain_of(d))) external = true;
      list += (list.empty() ? "<" : ", <") + d + ">";
    }
    s.log(LogLevel::kInfo,
          "routing: <" + std::string(recipient) + "> -> " + list + " (route '" + pattern + "')");
    if (external) rewrite_sender(s, sender);
    return Action::kContinue;
  }

 private:
  Action reverse(Session &s, std::string_view sender, std::string_view recipient) const {
    if (reverse_only_bounces_ && !sender.empty()) {
      s.log(LogLevel::kInfo, "routing: SRS address <" + std::string(recipient) +
                                 "> refused for non-bounce from <" + std::string(sender) + ">");
      return s.reject(550, "5.7.1", "This address accepts only delivery status notifications");
    }
    const auto r = srs_->reverse(recipient, now_ms() / 1000);
    if (r.status != SrsStatus::kOk) {
      s.log(LogLevel::kInfo, "routing: SRS address <" + std::string(recipient) +
                                 "> refused: " + std::string(to_string(r.status)));
      return s.reject(550, "5.1.1", "Invalid SRS address: " + std::string(to_string(r.status)));
    }
    if (!s.rcpt_rewrite(r.address)) {
      s.log(LogLevel::kError,
            "routing: the host refused the reversed SRS address <" + r.address + ">");
      return Action::kFailed;
    }
    s.log(LogLevel::kInfo,
          "routing: SRS <" + std::string(recipient) + "> reversed to <" + r.address + ">");
    return Action::kContinue;
  }

  void rewrite_sender(Session &s, std::string_view sender) const {
    if (!srs_ || sender.empty()) return;
    const std::string sender_domain = domain_of(sender);
    if (sender_domain.empty() || policy_lookup("local_domains", sender_domain)) return;
    if (s.data<TxState>() != nullptr) return;  // already rewritten in this transaction
    const std::string srs = srs_->forward(sender, now_ms() / 1000);
    if (!s.set_sender(srs)) {
      s.log(LogLevel::kWarning, "routing: the host refused the SRS sender <" + srs + ">");
      return;
    }
    s.set_data(std::make_unique<TxState>(TxState{srs}));
    s.log(LogLevel::kInfo,
          "routing: sender <" + std::string(sender) + "> rewritten to <" + srs + "> (SRS)");
  }

  std::unique_ptr<Srs> srs_;
  bool reverse_only_bounces_ = true;
};

}  // namespace

MAILGATE_PLUGIN(RoutingPlugin, "routing", "1.0", MG_PLUGIN_NONBLOCKING);
