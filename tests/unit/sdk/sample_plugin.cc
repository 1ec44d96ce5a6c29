// sample_plugin.cc — a plugin built as a real .so (sdk/CMakeLists.txt, target
// mailgate_sdk_sample_plugin, in C++17) for the SDK's dlopen() tests: it goes through
// MAILGATE_PLUGIN and touches every service of the host table once.
#include <mailgate/plugin.hpp>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

struct Seen {
  int recipients = 0;
};

class Sample final : public mailgate::Plugin {
 public:
  explicit Sample(const mailgate::PluginContext& context) : Plugin(context) {
    if (settings_json() == "bad") throw std::runtime_error("settings are not JSON");
    log(mailgate::LogLevel::kInfo, "sample created");
  }

  mailgate::Action on_connect(mailgate::Session& s) override {
    const mailgate::DnsResult ptr = s.dns(
        std::string(s.get(mailgate::Item::kClientAddr)) + ".in-addr.test", mailgate::DnsType::kPtr);
    if (ptr.ok()) s.add_symbol("SAMPLE_PTR", 0.0, ptr.texts().front());
    return mailgate::Action::kContinue;
  }

  mailgate::Action on_mail(mailgate::Session& s, std::string_view sender) override {
    if (sender == "throw@example.test") throw std::runtime_error("sample asked to throw");
    if (s.mail_param("SMTPUTF8")) s.add_symbol("SAMPLE_UTF8", 0.5);
    s.set_data(std::make_unique<Seen>());
    return mailgate::Action::kContinue;
  }

  mailgate::Action on_rcpt(mailgate::Session& s, std::string_view recipient) override {
    const std::optional<std::string> route = policy_lookup("routes", recipient);
    if (route) s.rcpt_rewrite(*route);
    const std::optional<std::int64_t> count = counter_add("sample:rcpt", 1, 60000);
    if (count && *count > 3) return s.tempfail(451, "4.7.1", "slow down");
    if (Seen* seen = s.data<Seen>()) ++seen->recipients;
    return mailgate::Action::kContinue;
  }

  mailgate::Action on_eom(mailgate::Session& s) override {
    const Seen* seen = s.data<Seen>();
    s.header_add("X-Sample", std::to_string(seen != nullptr ? seen->recipients : -1));
    s.log(mailgate::LogLevel::kDebug, "sample eom");
    return mailgate::Action::kContinue;
  }
};

}  // namespace

MAILGATE_PLUGIN(Sample, "sample", "1.2.3", 0);
