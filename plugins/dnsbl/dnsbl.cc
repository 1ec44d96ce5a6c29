// plugins/dnsbl/dnsbl.cc — the `dnsbl` plugin: the client address, the sender's domain and the
// domains of URLs in the body asked of the DNS blocklists in the policy table dnsbl_zones,
// through the host's resolver, in parallel, each zone bounded by its own timeout.
//
// Owns: when lookups start and what their answers become.
//   CONNECT  the client address is asked of every 'ip' zone (reversed octets / nibbles); the
//            session goes on at once, the answers arrive meanwhile
//   MAIL     the sender's domain (and its last two labels) is asked of every 'domain' zone
//   EOM      the host names of URLs in the body (and their last two labels, at most
//            max_url_domains names) are asked of every 'domain' zone; then the plugin waits
//            for all three batches — never past each query's deadline, its zone's timeout_ms
//            from when the query started — and adds one symbol per listing:
//            the zone's symbol and score, or those of the answer's entry in `codes`; the
//            detail names zone, answer and what was listed ("zen.test 127.0.0.2 client
//            192.0.2.10"). A symbol hit several times keeps its highest score.
// Answers outside 127.0.0.0/8 are ignored and logged (a list answering everything is broken);
// 127.255.255.x without an entry in codes is a list's error code, ignored and logged. A zone
// that does not answer in time is skipped for that message and logged. The plugin only scores:
// it refuses a message (550 5.7.1) only for symbols named in its "reject_on" setting.
//
// Settings: see README.md. Threading: blocking plugin (worker pool); the state is the lookup
// pool (locked inside) and the parsed zones, replaced under a mutex when the policy changes.
// Must not touch: other plugins' symbols, the session beyond this callback (workers never see
// an mg_session).
#include <algorithm>
#include <cstdio>
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
#include "lookup_pool.h"
#include "query_names.h"
#include "zones.h"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Scope;
using mailgate::Session;
using mailgate::dnsbl::AnswerKind;
using mailgate::dnsbl::Batch;
using mailgate::dnsbl::Listing;
using mailgate::dnsbl::LookupPool;
using mailgate::dnsbl::Outcome;
using mailgate::dnsbl::PoolOptions;
using mailgate::dnsbl::Request;
using mailgate::dnsbl::Zone;
using mailgate::dnsbl::ZoneKind;
using mailgate::dnsbl::ZoneList;

struct Settings {
  PoolOptions pool;
  bool check_client = true;
  bool check_sender = true;
  bool check_urls = true;
  std::size_t max_url_domains = 10;
  std::size_t max_body_bytes = 1024 * 1024;
  bool skip_private = true;
  bool skip_authenticated = true;
  bool skip_relay_networks = true;
  std::string header;                  // "" = no header
  std::vector<std::string> reject_on;  // symbols that refuse the message
};

std::uint64_t integer(const nlohmann::json& v, const std::string& key, std::uint64_t lo,
                      std::uint64_t hi) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < static_cast<std::int64_t>(lo) ||
      v.get<std::uint64_t>() > hi)
    throw std::invalid_argument("setting \"" + key + "\" must be an integer in " +
                                std::to_string(lo) + ".." + std::to_string(hi));
  return v.get<std::uint64_t>();
}

Settings parse_settings(std::string_view text) {
  Settings s;
  const nlohmann::json json = mailgate::plugins::parse_settings_object(text);
  using mailgate::plugins::setting_bool;
  for (const auto& [key, v] : json.items()) {
    if (key == "threads")
      s.pool.threads = static_cast<unsigned>(integer(v, key, 1, 64));
    else if (key == "max_queue")
      s.pool.max_queue = integer(v, key, 1, 100000);
    else if (key == "max_per_zone")
      s.pool.max_per_zone = integer(v, key, 1, 1000);
    else if (key == "cache_entries")
      s.pool.cache_entries = integer(v, key, 0, 10000000);
    else if (key == "cache_max_ttl_s")
      s.pool.cache_max_ttl_ms = static_cast<std::uint32_t>(integer(v, key, 0, 86400) * 1000);
    else if (key == "cache_negative_ttl_s")
      s.pool.cache_negative_ttl_ms = static_cast<std::uint32_t>(integer(v, key, 0, 86400) * 1000);
    else if (key == "dead_after")
      s.pool.dead_after = static_cast<unsigned>(integer(v, key, 0, 1000));
    else if (key == "dead_retry_s")
      s.pool.dead_retry_ms = static_cast<std::uint32_t>(integer(v, key, 1, 86400) * 1000);
    else if (key == "check_client")
      s.check_client = setting_bool(v, key);
    else if (key == "check_sender")
      s.check_sender = setting_bool(v, key);
    else if (key == "check_urls")
      s.check_urls = setting_bool(v, key);
    else if (key == "max_url_domains")
      s.max_url_domains = integer(v, key, 0, 100);
    else if (key == "max_body_bytes")
      s.max_body_bytes = integer(v, key, 0, 64u << 20);
    else if (key == "skip_private")
      s.skip_private = setting_bool(v, key);
    else if (key == "skip_authenticated")
      s.skip_authenticated = setting_bool(v, key);
    else if (key == "skip_relay_networks")
      s.skip_relay_networks = setting_bool(v, key);
    else if (key == "header") {
      if (!v.is_string()) throw std::invalid_argument("setting \"header\" must be a string");
      s.header = v.get<std::string>();
      const bool ok = s.header.size() <= 64 && s.header.find_first_not_of(
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                                                   "vwxyz0123456789-") == std::string::npos;
      if (!ok) throw std::invalid_argument("setting \"header\" must be a header field name");
    } else if (key == "reject_on") {
      if (!v.is_array()) throw std::invalid_argument("setting \"reject_on\" must be an array");
      for (const auto& sym : v) {
        if (!sym.is_string() || sym.get<std::string>().empty() ||
            sym.get<std::string>().find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                std::string::npos)
          throw std::invalid_argument("setting \"reject_on\" must list symbols ([A-Z0-9_]+)");
        s.reject_on.push_back(sym.get<std::string>());
      }
    } else {
      throw std::invalid_argument("unknown setting \"" + key + "\"");
    }
  }
  return s;
}

// The client's batch (session scope: every transaction of the connection uses it).
struct SessionState {
  std::shared_ptr<Batch> client;
};
// The sender's batch (transaction scope).
struct TxState {
  std::shared_ptr<Batch> sender;
  std::vector<std::string> sender_names;  // asked already: not asked again for URLs
};

struct Hit {
  std::string symbol;
  double score = 0;
  std::vector<std::string> details;  // "zen.test 127.0.0.2 client 192.0.2.10"
  std::string zone;                  // of the first listing (for a refusal's text)
  std::string subject;
};

class DnsblPlugin : public mailgate::Plugin {
 public:
  explicit DnsblPlugin(const mailgate::PluginContext& context)
      : Plugin(context),
        settings_(parse_settings(context.settings_json)),
        pool_(context.host, settings_.pool) {}

  Action on_connect(Session& s) override {
    if (!settings_.check_client) return Action::kContinue;
    const std::string client(s.get(Item::kClientAddr));
    auto reversed = mailgate::dnsbl::reversed_ip(client);
    if (!reversed) return Action::kContinue;  // not an IP client (a local socket, a test)
    if (settings_.skip_private && mailgate::dnsbl::private_address(client)) {
      s.log(LogLevel::kDebug, "client " + client + " is a private address: not asked");
      return Action::kContinue;
    }
    if (settings_.skip_relay_networks && policy_lookup("relay_networks", client)) {
      s.log(LogLevel::kDebug, "client " + client + " is in relay_networks: not asked");
      return Action::kContinue;
    }
    auto zones = current_zones();
    std::vector<Request> requests;
    for (const Zone& z : zones->zones)
      if (z.kind == ZoneKind::kIp) requests.push_back(Request{z, *reversed, "client " + client});
    if (requests.empty()) return Action::kContinue;
    auto state = std::make_unique<SessionState>();
    state->client = pool_.start(std::move(requests));
    s.set_data(std::move(state), Scope::kSession);
    return Action::kContinue;
  }

  Action on_mail(Session& s, std::string_view sender) override {
    if (!settings_.check_sender || skip_session(s)) return Action::kContinue;
    auto domain = mailgate::dnsbl::address_domain(sender);
    if (!domain) return Action::kContinue;
    auto zones = current_zones();
    auto state = std::make_unique<TxState>();
    state->sender_names = mailgate::dnsbl::domain_candidates(*domain);
    std::vector<Request> requests;
    for (const Zone& z : zones->zones) {
      if (z.kind != ZoneKind::kDomain) continue;
      for (const std::string& name : state->sender_names)
        requests.push_back(Request{z, name, "sender domain " + name});
    }
    if (requests.empty()) return Action::kContinue;
    state->sender = pool_.start(std::move(requests));
    s.set_data(std::move(state), Scope::kTransaction);
    return Action::kContinue;
  }

  Action on_eom(Session& s) override {
    if (!settings_.header.empty()) s.header_remove(settings_.header, 0);  // forged ones
    if (skip_session(s)) return Action::kContinue;
    std::vector<Outcome> outcomes;
    std::shared_ptr<Batch> urls = start_urls(s);
    if (auto* session = s.data<SessionState>(Scope::kSession); session && session->client)
      append(outcomes, session->client->wait());
    if (auto* tx = s.data<TxState>(Scope::kTransaction); tx && tx->sender)
      append(outcomes, tx->sender->wait());
    if (urls) append(outcomes, urls->wait());
    return report(s, outcomes);
  }

 private:
  static void append(std::vector<Outcome>& to, std::vector<Outcome> from) {
    for (Outcome& o : from) to.push_back(std::move(o));
  }

  bool skip_session(Session& s) const {
    return settings_.skip_authenticated && s.find(Item::kAuthUser).has_value();
  }

  // Starts the URL domains' batch; nullptr when there is nothing to ask.
  std::shared_ptr<Batch> start_urls(Session& s) {
    if (!settings_.check_urls || settings_.max_url_domains == 0) return nullptr;
    auto zones = current_zones();
    const bool any = std::any_of(zones->zones.begin(), zones->zones.end(),
                                 [](const Zone& z) { return z.kind == ZoneKind::kDomain; });
    if (!any) return nullptr;
    auto body = s.body(settings_.max_body_bytes);
    if (!body) return nullptr;
    std::vector<std::string> asked;
    if (auto* tx = s.data<TxState>(Scope::kTransaction)) asked = tx->sender_names;
    std::vector<std::string> names;
    for (const std::string& host : mailgate::dnsbl::url_domains(*body, settings_.max_url_domains)) {
      for (const std::string& name : mailgate::dnsbl::domain_candidates(host)) {
        if (names.size() >= settings_.max_url_domains) break;
        if (std::find(asked.begin(), asked.end(), name) != asked.end()) continue;
        if (std::find(names.begin(), names.end(), name) != names.end()) continue;
        names.push_back(name);
      }
    }
    std::vector<Request> requests;
    for (const Zone& z : zones->zones) {
      if (z.kind != ZoneKind::kDomain) continue;
      for (const std::string& name : names)
        requests.push_back(Request{z, name, "url domain " + name});
    }
    if (requests.empty()) return nullptr;
    return pool_.start(std::move(requests));
  }

  Action report(Session& s, const std::vector<Outcome>& outcomes) {
    std::vector<Hit> hits;
    std::vector<std::string> skips;
    for (const Outcome& o : outcomes) {
      const Zone& zone = o.request.zone;
      switch (o.state) {
        case Outcome::State::kAnswered:
          if (o.status == MG_DNS_OK) {
            for (const std::string& address : o.addresses) listing(s, o, address, hits);
          } else if (o.status == MG_DNS_TEMPFAIL || o.status == MG_DNS_ERROR) {
            skips.push_back(zone.name + " (" + o.request.subject + ": DNS " +
                            (o.status == MG_DNS_TEMPFAIL ? "timeout or SERVFAIL" : "error") + ")");
          }
          break;
        case Outcome::State::kTimedOut:
          skips.push_back(zone.name + " (" + o.request.subject + ": no answer within " +
                          std::to_string(zone.timeout_ms) + " ms)");
          break;
        case Outcome::State::kSkipped:
          skips.push_back(zone.name + " (" + o.request.subject + ": not asked, " + o.why + ")");
          break;
        case Outcome::State::kPending:  // wait() never returns one
          break;
      }
    }
    std::string line;
    std::string header;
    const Hit* refusing = nullptr;
    for (const Hit& h : hits) {
      std::string detail;
      for (const std::string& d : h.details) detail += (detail.empty() ? "" : ", ") + d;
      s.add_symbol(h.symbol, h.score, detail);
      const std::string text = h.symbol + "=" + number(h.score) + " (" + detail + ")";
      line += (line.empty() ? "listed " : ", ") + text;
      header += (header.empty() ? "" : "; ") + text;
      if (!refusing && std::find(settings_.reject_on.begin(), settings_.reject_on.end(),
                                 h.symbol) != settings_.reject_on.end())
        refusing = &h;
    }
    if (!skips.empty()) {
      std::string list;
      for (const std::string& k : skips) list += (list.empty() ? "" : ", ") + k;
      line += (line.empty() ? "" : "; ") + std::string("skipped ") + list;
    }
    if (!line.empty())
      s.log(hits.empty() ? LogLevel::kWarning : LogLevel::kInfo, line);
    else if (!outcomes.empty())
      s.log(LogLevel::kDebug, "not listed (" + std::to_string(outcomes.size()) + " queries)");
    if (!settings_.header.empty() && !header.empty()) s.header_add(settings_.header, header);
    if (refusing)
      return s.reject(550, "5.7.1",
                      "Message refused: " + refusing->subject + " is listed by " + refusing->zone);
    return Action::kContinue;
  }

  void listing(Session& s, const Outcome& o, const std::string& address, std::vector<Hit>& hits) {
    const Zone& zone = o.request.zone;
    Listing l;
    switch (mailgate::dnsbl::classify_answer(zone, address, &l)) {
      case AnswerKind::kNotLoopback:
        s.log(LogLevel::kWarning, "zone " + zone.name + " answered " + address + " for " + o.query +
                                      ": not in 127.0.0.0/8, ignored (a list that answers "
                                      "everything is broken)");
        return;
      case AnswerKind::kErrorCode:
        s.log(LogLevel::kWarning, "zone " + zone.name + " answered " + address + " for " + o.query +
                                      ": the list's error code (query refused), ignored");
        return;
      case AnswerKind::kListed:
        break;
    }
    const std::string detail = zone.name + " " + address + " " + o.request.subject;
    auto it =
        std::find_if(hits.begin(), hits.end(), [&](const Hit& h) { return h.symbol == l.symbol; });
    if (it == hits.end()) {
      hits.push_back(Hit{l.symbol, l.score, {detail}, zone.name, o.request.subject});
      return;
    }
    it->score = std::max(it->score, l.score);
    if (std::find(it->details.begin(), it->details.end(), detail) == it->details.end())
      it->details.push_back(detail);
  }

  static std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return buf;
  }

  // The enabled zones; re-parsed only when the policy's answer changed.
  std::shared_ptr<const ZoneList> current_zones() const {
    std::optional<std::string> json = policy_lookup("dnsbl_zones", "*");
    std::lock_guard lock(mu_);
    if (!json) {
      if (!zones_ || !zones_->json.empty()) zones_ = std::make_shared<const ZoneList>();
      return zones_;
    }
    if (zones_ && zones_->json == *json) return zones_;
    std::vector<std::string> bad_rows;
    auto parsed = std::make_shared<const ZoneList>(mailgate::dnsbl::parse_zones(*json, &bad_rows));
    for (const std::string& why : bad_rows) log(LogLevel::kError, why);
    zones_ = parsed;
    return zones_;
  }

  const Settings settings_;
  LookupPool pool_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const ZoneList> zones_;
};

}  // namespace

MAILGATE_PLUGIN(DnsblPlugin, "dnsbl", "1.0", 0);
