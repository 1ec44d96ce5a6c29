// plugins/greylist/greylist.cc — the `greylist` plugin: temporary refusal of unknown
// (client network, sender, recipient) triplets, so that only senders that retry — real MTAs
// do, most spam engines do not — get through.
//
// Owns: the triplet's life, kept as expiring records in the host's shared store (in memory,
// or Redis shared by several gateways) with times from the host's clock:
//   unknown  -> first attempt: record "p<first-seen ms>" for retry_window; 451 4.7.1
//   pending  -> a retry before `delay` has passed: 451 4.7.1 with the time left
//            -> a retry after `delay` (and within retry_window of the first attempt): passes;
//               the record becomes "ok" for `expiry`, and the client network's count of
//               successful retries goes up
//   ok       -> passes; the record's expiry is renewed
// A client network with auto_pass_after successful retries passes without greylisting for
// `expiry`. The client network is the address masked to ipv4_prefix / ipv6_prefix (/24, /64),
// so a sender's pool of outbound servers counts as one client.
// Never greylisted: authenticated sessions and relay networks (settings skip_authenticated,
// skip_relay_networks), exempt_networks, exempt_senders (address or domain; the null sender
// is "<>"), exempt_recipient_domains.
// Reply: 451 4.7.1 Greylisted, please try again in N seconds
// Store unavailable: "store_fail_mode" open (pass, logged) or tempfail (451 4.3.0); the
// default "gateway" follows --redis_fail_mode.
//
// Settings (JSON object, every key optional; times in seconds):
//   {"delay": 300, "retry_window": 86400, "expiry": 3024000, "auto_pass_after": 5,
//    "ipv4_prefix": 24, "ipv6_prefix": 64, "exempt_networks": [], "exempt_senders": [],
//    "exempt_recipient_domains": [], "skip_relay_networks": true, "skip_authenticated": true,
//    "store_fail_mode": "gateway"}
// Threads: blocks only in the host store (MG_PLUGIN_BLOCKS_ONLY_IN_STORE: on the I/O thread
// while the store is in memory, on the worker pool with Redis); the state is immutable.
#include <algorithm>
#include <cstdint>
#include <mailgate/plugin.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/ip_prefix.hpp"
#include "common/settings.hpp"
#include "common/store_key.hpp"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::KvSetResult;
using mailgate::LogLevel;
using mailgate::Session;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string domain_of(std::string_view address) {
  const std::size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : lower(address.substr(at + 1));
}

std::uint32_t seconds_setting(const nlohmann::json& v, const std::string& key, std::uint32_t lo,
                              std::uint32_t hi) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi)
    throw std::invalid_argument("setting \"" + key + "\" must be an integer from " +
                                std::to_string(lo) + " to " + std::to_string(hi));
  return v.get<std::uint32_t>();
}

std::vector<std::string> string_list(const nlohmann::json& v, const std::string& key) {
  if (!v.is_array()) throw std::invalid_argument("setting \"" + key + "\" must be an array");
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.is_string() || item.get<std::string>().empty())
      throw std::invalid_argument("setting \"" + key + "\" must hold non-empty strings");
    out.push_back(lower(item.get<std::string>()));
  }
  return out;
}

class GreylistPlugin : public mailgate::Plugin {
 public:
  explicit GreylistPlugin(const mailgate::PluginContext& context) : Plugin(context) {
    if (!has_store_services())
      throw std::runtime_error("needs a gateway with plugin ABI 1.2 or later (kv_get/kv_set)");
    nlohmann::json settings = mailgate::plugins::parse_settings_object(context.settings_json);
    for (const auto& [key, value] : settings.items()) {
      if (key == "delay") {
        delay_s_ = seconds_setting(value, key, 0, 86'400);
      } else if (key == "retry_window") {
        retry_window_s_ = seconds_setting(value, key, 60, 30 * 86'400);
      } else if (key == "expiry") {
        expiry_s_ = seconds_setting(value, key, 60, 365 * 86'400);
      } else if (key == "auto_pass_after") {
        auto_pass_after_ = seconds_setting(value, key, 0, 1'000'000);
      } else if (key == "ipv4_prefix") {
        ipv4_prefix_ = static_cast<int>(seconds_setting(value, key, 1, 32));
      } else if (key == "ipv6_prefix") {
        ipv6_prefix_ = static_cast<int>(seconds_setting(value, key, 1, 128));
      } else if (key == "exempt_networks") {
        for (const std::string& n : string_list(value, key)) {
          try {
            exempt_networks_.add(n);
          } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("setting \"exempt_networks\": " + std::string(e.what()));
          }
        }
      } else if (key == "exempt_senders") {
        for (std::string& s : string_list(value, key)) exempt_senders_.insert(std::move(s));
      } else if (key == "exempt_recipient_domains") {
        for (std::string& d : string_list(value, key)) exempt_rcpt_domains_.insert(std::move(d));
      } else if (key == "skip_relay_networks") {
        skip_relay_ = mailgate::plugins::setting_bool(value, key);
      } else if (key == "skip_authenticated") {
        skip_auth_ = mailgate::plugins::setting_bool(value, key);
      } else if (key == "store_fail_mode") {
        const std::string mode = value.is_string() ? value.get<std::string>() : "";
        if (mode != "gateway" && mode != "open" && mode != "tempfail")
          throw std::invalid_argument(
              "setting \"store_fail_mode\" must be \"gateway\", \"open\" or \"tempfail\"");
        fail_mode_ = mode;
      } else {
        throw std::invalid_argument("unknown setting \"" + key + "\"");
      }
    }
    if (retry_window_s_ <= delay_s_)
      throw std::invalid_argument("setting \"retry_window\" must be longer than \"delay\"");
  }

  Action on_rcpt(Session& s, std::string_view recipient) override {
    const std::string_view client = s.get(Item::kClientAddr);
    if (skip_auth_ && !s.get(Item::kAuthUser).empty()) return Action::kContinue;
    if (skip_relay_ && policy_lookup("relay_networks", client)) return Action::kContinue;
    if (exempt_networks_.contains(client)) return Action::kContinue;
    const std::string sender = s.get(Item::kSender).empty() ? "<>" : lower(s.get(Item::kSender));
    if (exempt_senders_.count(sender) || exempt_senders_.count(domain_of(sender)))
      return Action::kContinue;
    const std::string rcpt = lower(recipient);
    if (exempt_rcpt_domains_.count(domain_of(rcpt))) return Action::kContinue;

    const std::string net = mailgate::plugins::client_network(client, ipv4_prefix_, ipv6_prefix_)
                                .value_or(std::string(client));
    const std::uint32_t expiry_ms = expiry_s_ * 1000u;
    if (auto_pass_after_ > 0) {
      auto auto_pass = kv_get("gl:a:" + net);
      if (!auto_pass) return store_failed(s);
      if (auto_pass->has_value()) return Action::kContinue;
    }

    const std::string key = mailgate::plugins::store_key("gl:t:", net + "|" + sender + "|" + rcpt);
    auto record = kv_get(key);
    if (!record) return store_failed(s);
    const std::int64_t now = static_cast<std::int64_t>(now_ms());
    if (!record->has_value()) {
      const KvSetResult r = kv_set(key, "p" + std::to_string(now), retry_window_s_ * 1000u,
                                   /*only_if_absent=*/true);
      if (r == KvSetResult::kUnavailable) return store_failed(s);
      s.log(LogLevel::kInfo, "greylisted new triplet " + net + " " + sender + " -> " + rcpt);
      return refuse(s, delay_s_);
    }
    const std::string& value = **record;
    if (value == "ok") {
      kv_set(key, "ok", expiry_ms, false);  // renew; a failure here only shortens its life
      return Action::kContinue;
    }
    const std::int64_t first = value.size() > 1 ? std::stoll(value.substr(1)) : now;
    const std::int64_t waited_ms = now - first;
    if (waited_ms < std::int64_t{delay_s_} * 1000) {
      const std::int64_t left_ms = std::int64_t{delay_s_} * 1000 - waited_ms;
      return refuse(s, static_cast<std::uint32_t>((left_ms + 999) / 1000));
    }
    if (kv_set(key, "ok", expiry_ms, false) == KvSetResult::kUnavailable) return store_failed(s);
    s.log(LogLevel::kInfo, "greylist passed " + net + " " + sender + " -> " + rcpt + " after " +
                               std::to_string(waited_ms / 1000) + "s");
    if (auto_pass_after_ > 0) {
      auto passes = counter_add("gl:c:" + net, 1, expiry_ms);
      if (passes && *passes >= static_cast<std::int64_t>(auto_pass_after_) &&
          kv_set("gl:a:" + net, "1", expiry_ms, false) == KvSetResult::kStored)
        s.log(LogLevel::kInfo, "greylist: client network " + net +
                                   " passes automatically from now on (" + std::to_string(*passes) +
                                   " successful retries)");
    }
    return Action::kContinue;
  }

 private:
  Action refuse(Session& s, std::uint32_t seconds) const {
    seconds = std::max<std::uint32_t>(seconds, 1);
    return s.tempfail(451, "4.7.1",
                      "Greylisted, please try again in " + std::to_string(seconds) +
                          (seconds == 1 ? " second" : " seconds"));
  }

  Action store_failed(Session& s) const {
    bool open = fail_mode_ == "open";
    if (fail_mode_ == "gateway") open = store_fail_mode() == mailgate::StoreFailMode::kOpen;
    s.log(LogLevel::kWarning, std::string("greylist store unavailable; store fail mode ") +
                                  (open ? "open: not greylisted" : "tempfail"));
    if (open) return Action::kContinue;
    return s.tempfail(451, "4.3.0", "Greylisting service unavailable, try again later");
  }

  std::uint32_t delay_s_ = 300;
  std::uint32_t retry_window_s_ = 86'400;
  std::uint32_t expiry_s_ = 35 * 86'400;
  std::uint32_t auto_pass_after_ = 5;
  int ipv4_prefix_ = 24;
  int ipv6_prefix_ = 64;
  mailgate::plugins::NetworkList exempt_networks_;
  std::set<std::string> exempt_senders_;
  std::set<std::string> exempt_rcpt_domains_;
  bool skip_relay_ = true;
  bool skip_auth_ = true;
  std::string fail_mode_ = "gateway";
};

}  // namespace

MAILGATE_PLUGIN(GreylistPlugin, "greylist", "1.0", MG_PLUGIN_BLOCKS_ONLY_IN_STORE);
