// plugins/ratelimit/ratelimit.cc — the `ratelimit` plugin: limits from the policy's
// `ratelimits` table, enforced through the host's shared rate-limit service (GCRA, in memory
// or in Redis shared by several gateways).
//
// Owns: when each kind of event is counted and what is answered when a limit is exceeded.
//   CONNECT  connections (cost 1)          RCPT  recipients (cost 1, per recipient)
//   MAIL     messages (cost 1)             EOM   bytes (cost = the message's size)
// Several limits can apply to one event. Each is first asked without spending (dry run); only
// when every one allows is the event spent on all of them, so a refused event costs nothing
// and the limits that did allow keep their room. When some refuse, the tightest decides: a
// 'reject' limit before a 'tempfail' one, then the longest wait. Its name is in the reply and
// in the log line:
//   tempfail  451 4.7.1 Rate limit 'NAME' exceeded, try again in N seconds
//   reject    550 5.7.1 Rate limit 'NAME' exceeded
// (At CONNECT the gateway answers a refusal with 421 / 554 and closes.) Exempt clients —
// ratelimit_exemptions rows of kind network (client IP), sender (address or domain of MAIL
// FROM), auth_user — are never counted.
//
// The store may be unavailable (Redis down or slow): then the plugin applies its store fail
// mode: "open" lets the event through (logged), "tempfail" answers 451 4.3.0. The default,
// "gateway", follows the gateway's --redis_fail_mode (host->store_fail_mode()).
//
// Settings (JSON object, every key optional): {"store_fail_mode": "gateway"|"open"|"tempfail"}.
// Threads: blocks only in the host store (MG_PLUGIN_BLOCKS_ONLY_IN_STORE: the I/O thread runs
// it while the store is in memory, the worker pool with Redis); the state is the parsed
// limits, replaced under a mutex when the policy's row JSON changes, so concurrent sessions
// share it safely.
#include <algorithm>
#include <mailgate/plugin.hpp>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/settings.hpp"
#include "limits.hpp"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;
using mailgate::ratelimit::Event;
using mailgate::ratelimit::Limit;
using mailgate::ratelimit::What;

enum class FailMode { kGateway, kOpen, kTempfail };

class RateLimitPlugin : public mailgate::Plugin {
 public:
  explicit RateLimitPlugin(const mailgate::PluginContext& context) : Plugin(context) {
    if (!has_store_services())
      throw std::runtime_error("needs a gateway with plugin ABI 1.2 or later (rate_limit)");
    nlohmann::json settings = mailgate::plugins::parse_settings_object(context.settings_json);
    for (const auto& [key, value] : settings.items()) {
      if (key == "store_fail_mode") {
        const std::string mode = value.is_string() ? value.get<std::string>() : "";
        if (mode == "gateway")
          fail_mode_ = FailMode::kGateway;
        else if (mode == "open")
          fail_mode_ = FailMode::kOpen;
        else if (mode == "tempfail")
          fail_mode_ = FailMode::kTempfail;
        else
          throw std::invalid_argument(
              "setting \"store_fail_mode\" must be \"gateway\", \"open\" or \"tempfail\"");
      } else {
        throw std::invalid_argument("unknown setting \"" + key + "\"");
      }
    }
  }

  Action on_connect(Session& s) override {
    Event e = event(s);
    return check(s, What::kConnections, 1, e);
  }
  Action on_mail(Session& s, std::string_view sender) override {
    Event e = event(s);
    e.sender = sender;
    return check(s, What::kMessages, 1, e);
  }
  Action on_rcpt(Session& s, std::string_view recipient) override {
    Event e = event(s);
    e.recipient = recipient;
    return check(s, What::kRecipients, 1, e);
  }
  Action on_eom(Session& s) override {
    Event e = event(s);
    const std::uint64_t size = s.message_size();
    return check(s, What::kBytes,
                 static_cast<std::uint32_t>(std::min<std::uint64_t>(size, UINT32_MAX)), e);
  }

 private:
  struct Parsed {
    std::string json;
    std::vector<Limit> limits;
  };

  static Event event(const Session& s) {
    Event e;
    e.client_addr = s.get(Item::kClientAddr);
    e.helo = s.get(Item::kHelo);
    if (auto sender = s.find(Item::kSender)) e.sender = *sender;
    e.auth_user = s.find(Item::kAuthUser);
    return e;
  }

  // The current limits; re-parsed only when the policy's answer changed.
  std::shared_ptr<const Parsed> limits() const {
    std::optional<std::string> json = policy_lookup("ratelimits", "*");
    std::lock_guard lock(mu_);
    if (!json) {
      cached_.reset();
      return nullptr;
    }
    if (cached_ && cached_->json == *json) return cached_;
    auto parsed = std::make_shared<Parsed>();
    std::vector<std::string> skipped;
    parsed->limits = mailgate::ratelimit::parse_limits(*json, &skipped);
    for (const std::string& why : skipped) log(LogLevel::kError, "ratelimits " + why + "; skipped");
    parsed->json = std::move(*json);
    cached_ = parsed;
    return cached_;
  }

  bool exempt(const Event& e) const {
    if (policy_lookup("ratelimit_exemptions:network", e.client_addr)) return true;
    if (e.sender && !e.sender->empty() && policy_lookup("ratelimit_exemptions:sender", *e.sender))
      return true;
    return e.auth_user && !e.auth_user->empty() &&
           policy_lookup("ratelimit_exemptions:auth_user", *e.auth_user).has_value();
  }

  Action store_failed(Session& s, const Limit& limit) const {
    FailMode mode = fail_mode_;
    if (mode == FailMode::kGateway)
      mode = store_fail_mode() == mailgate::StoreFailMode::kOpen ? FailMode::kOpen
                                                                 : FailMode::kTempfail;
    if (mode == FailMode::kOpen) {
      s.log(LogLevel::kWarning, "rate limit store unavailable; limit '" + limit.name +
                                    "' not checked (store fail mode open)");
      return Action::kContinue;
    }
    s.log(LogLevel::kWarning, "rate limit store unavailable; limit '" + limit.name +
                                  "' not checked (store fail mode tempfail)");
    return s.tempfail(451, "4.3.0", "Rate limit service unavailable, try again later");
  }

  Action check(Session& s, What what, std::uint32_t cost, const Event& e) const {
    std::shared_ptr<const Parsed> parsed = limits();
    if (!parsed) return Action::kContinue;
    struct Applicable {
      const Limit* limit;
      std::string key;
    };
    std::vector<Applicable> todo;
    for (const Limit& l : parsed->limits) {
      if (l.what != what) continue;
      if (auto key = mailgate::ratelimit::counting_key(l, e)) todo.push_back({&l, std::move(*key)});
    }
    if (todo.empty() || exempt(e)) return Action::kContinue;

    struct Hit {
      const Applicable* a;
      std::uint32_t retry_ms;
    };
    std::vector<Hit> hits;
    for (const Applicable& a : todo) {
      auto r = ask(*a.limit, a.key, cost, /*dry_run=*/true);
      if (!r) return store_failed(s, *a.limit);
      if (!r->allowed) hits.push_back({&a, r->retry_after_ms});
    }
    if (hits.empty()) {
      for (const Applicable& a : todo) {
        auto r = ask(*a.limit, a.key, cost, /*dry_run=*/false);
        if (!r) return store_failed(s, *a.limit);
        if (!r->allowed) hits.push_back({&a, r->retry_after_ms});  // another session was quicker
      }
    }
    if (hits.empty()) return Action::kContinue;
    const Hit& worst = *std::max_element(hits.begin(), hits.end(), [](const Hit& x, const Hit& y) {
      if (x.a->limit->reject != y.a->limit->reject) return y.a->limit->reject;
      return x.retry_ms < y.retry_ms;
    });
    const Limit& l = *worst.a->limit;
    const std::uint32_t seconds = std::max<std::uint32_t>(1, (worst.retry_ms + 999) / 1000);
    s.log(LogLevel::kInfo, "limit '" + l.name + "' exceeded: " + what_name(what) + " by " +
                               worst.a->key.substr(worst.a->key.find(':', 3) + 1) + ", " +
                               std::to_string(l.rate) + " per " + std::to_string(l.period_s) +
                               "s (burst " + std::to_string(l.burst == 0 ? l.rate : l.burst) +
                               "); " + (l.reject ? "rejected" : "tempfail") + ", retry in " +
                               std::to_string(seconds) + "s");
    if (l.reject) return s.reject(550, "5.7.1", "Rate limit '" + l.name + "' exceeded");
    return s.tempfail(451, "4.7.1",
                      "Rate limit '" + l.name + "' exceeded, try again in " +
                          std::to_string(seconds) + (seconds == 1 ? " second" : " seconds"));
  }

  std::optional<mailgate::RateLimitResult> ask(const Limit& l, const std::string& key,
                                               std::uint32_t cost, bool dry_run) const {
    return rate_limit(key, l.rate, l.period_s * 1000u, l.burst, cost, dry_run);
  }

  FailMode fail_mode_ = FailMode::kGateway;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const Parsed> cached_;
};

}  // namespace

MAILGATE_PLUGIN(RateLimitPlugin, "ratelimit", "1.0", MG_PLUGIN_BLOCKS_ONLY_IN_STORE);
