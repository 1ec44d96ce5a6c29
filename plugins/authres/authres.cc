// plugins/authres/authres.cc — the `authres` plugin: the Authentication-Results header field
// (RFC 8601) that tells the mailbox side what this gateway's checks found.
//
// Owns: this gateway's authserv-id, removing Authentication-Results fields that claim it (so
// a sender cannot forge our verdicts), and writing one field at the top of the message from
// the authentication results the checking plugins recorded (ABI 1.1 auth_result_add: spf,
// dkim, dmarc, ...). It checks nothing itself and never refuses mail.
//
//   EOM   1. every Authentication-Results field whose authserv-id is ours (compared without
//            case, comments and version skipped) is removed — or every one with "remove":
//            "all", for a border gateway that trusts no upstream verdict;
//         2. one field is inserted at the top:
//              Authentication-Results: mx.example.net;
//                      spf=pass smtp.mailfrom=alice@example.org;
//                      dkim=pass header.d=example.org header.s=sel1 header.a=rsa-sha256 ...;
//                      dmarc=pass (p=reject dis=none) header.from=example.org
//            or "mx.example.net; none" when no plugin recorded a result. A session
//            authenticated with SMTP AUTH adds "auth=pass smtp.auth=USER" first.
//
// Place it in the chain after the checking plugins (spf, dkim, dmarc) and before any plugin
// that signs (dkim_sign), whose signature must not cover a field added after it.
//
// Settings (JSON object, every key optional; unknown keys or wrong types fail create()):
//   "authserv_id": "mx.example.net"   default: the gateway's host name
//   "remove": "ours" | "all"          default "ours"
//   "auth": true                      add the auth= result for authenticated sessions
//
// Threads: MG_PLUGIN_NONBLOCKING — no DNS, no I/O; the settings are read-only after create().
#include <cstddef>
#include <mailgate/plugin.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "authres_format.hpp"
#include "common/settings.hpp"

namespace {

using mailgate::Action;
using mailgate::Item;
using mailgate::LogLevel;
using mailgate::Session;
namespace ar = mailgate::authres;

constexpr std::string_view kField = "Authentication-Results";

class AuthRes final : public mailgate::Plugin {
 public:
  explicit AuthRes(const mailgate::PluginContext& context) : Plugin(context) {
    const nlohmann::json settings = mailgate::plugins::parse_settings_object(settings_json());
    for (const auto& [key, value] : settings.items()) {
      if (key == "authserv_id") {
        if (!value.is_string() || !ar::is_authserv_id(value.get<std::string>()))
          throw std::invalid_argument(
              "setting \"authserv_id\" must be a host name or token (letters, digits, '.', '-')");
        authserv_id_ = value.get<std::string>();
      } else if (key == "remove") {
        if (!value.is_string() || (value != "ours" && value != "all"))
          throw std::invalid_argument("setting \"remove\" must be \"ours\" or \"all\"");
        remove_all_ = value == "all";
      } else if (key == "auth") {
        auth_ = mailgate::plugins::setting_bool(value, key);
      } else {
        throw std::invalid_argument("unknown setting \"" + key + "\"");
      }
    }
  }

  Action on_eom(Session& s) override {
    const std::string id = authserv_id(s);
    const std::size_t removed = remove_fields(s, id);

    std::vector<ar::Result> results;
    if (auth_) {
      const std::optional<std::string_view> user = s.find(Item::kAuthUser);
      if (user && !user->empty() && ar::is_property_value(*user))
        results.push_back(ar::Result{"auth", "pass", "", "smtp.auth=" + std::string(*user)});
    }
    for (const Session::AuthResult& r : s.auth_results())
      results.push_back(ar::Result{std::string(r.method), std::string(r.result),
                                   std::string(r.reason), std::string(r.properties)});
    const std::string value = ar::format_field(id, results);
    if (!s.header_insert(0, kField, value)) {
      s.log(LogLevel::kError, "authres: the gateway refused the Authentication-Results field");
      return Action::kFailed;
    }
    std::string line = "authres: authserv-id=" + id + " results=" + std::to_string(results.size());
    if (removed != 0) line += " removed=" + std::to_string(removed);
    s.log(LogLevel::kInfo, line);
    return Action::kContinue;
  }

 private:
  std::string authserv_id(const Session& s) const {
    if (!authserv_id_.empty()) return authserv_id_;
    const std::string_view host = s.get(Item::kHostname);
    return ar::is_authserv_id(host) ? std::string(host) : std::string("localhost");
  }

  // Removes the fields that claim `id` (or all of them); returns how many. Occurrences are
  // counted among the fields of that name, so they are removed from the last one up.
  std::size_t remove_fields(Session& s, const std::string& id) const {
    std::vector<std::size_t> doomed;  // 1-based occurrences
    std::size_t occurrence = 0;
    for (const Session::Header& h : s.headers()) {
      if (!mailgate::detail::equal_ignore_case(h.name, kField)) continue;
      ++occurrence;
      if (remove_all_ || mailgate::detail::equal_ignore_case(ar::authserv_id_of(h.value), id))
        doomed.push_back(occurrence);
    }
    for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
      if (!s.header_remove(kField, *it))
        throw std::runtime_error("authres: the gateway refused to remove a forged field");
    }
    if (!doomed.empty())
      s.log(LogLevel::kInfo, "authres: removed " + std::to_string(doomed.size()) +
                                 " Authentication-Results field(s) claiming " +
                                 (remove_all_ ? std::string("any authserv-id") : id));
    return doomed.size();
  }

  std::string authserv_id_;
  bool remove_all_ = false;
  bool auth_ = true;
};

}  // namespace

MAILGATE_PLUGIN(AuthRes, "authres", "1.0.0", MG_PLUGIN_NONBLOCKING);
