// subject_tag.cc — an example mailgate plugin, built out of tree against the installed SDK.
//
// What it does, each part configurable in its JSON settings:
//   RCPT  refuses (550 5.7.1) recipients whose local part starts with "reject_prefix";
//   EOM   adds "X-Example-Plugin: seen", adds the score symbol EXAMPLE_SEEN with "score", and
//         puts "subject_tag" in front of the Subject (adding a Subject when there is none).
//
//   {"score": 1.5, "reject_prefix": "noreply-", "subject_tag": "[external]"}
//
// Every key is optional (defaults: score 0.1, no prefix, no tag); unknown keys or wrong types
// are refused at load time with a message naming the key, so a typo never goes unnoticed.
// It does no I/O, so it declares MG_PLUGIN_NONBLOCKING and runs on the gateway's I/O threads.
// Its state is read-only after construction: safe for concurrent sessions.
#include <mailgate/plugin.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using mailgate::Action;
using mailgate::Session;

bool starts_with_ignore_case(std::string_view text, std::string_view prefix) {
  if (prefix.size() > text.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = text[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

class SubjectTag final : public mailgate::Plugin {
 public:
  explicit SubjectTag(const mailgate::PluginContext& context) : Plugin(context) {
    // Thrown exceptions become create()'s error: the gateway refuses the new policy and says why.
    const nlohmann::json settings = nlohmann::json::parse(settings_json());
    if (!settings.is_object()) throw std::invalid_argument("settings must be a JSON object");
    for (const auto& [key, value] : settings.items()) {
      if (key == "score") {
        if (!value.is_number()) throw std::invalid_argument("\"score\" must be a number");
        score_ = value.get<double>();
      } else if (key == "reject_prefix") {
        if (!value.is_string()) throw std::invalid_argument("\"reject_prefix\" must be a string");
        reject_prefix_ = value.get<std::string>();
      } else if (key == "subject_tag") {
        if (!value.is_string()) throw std::invalid_argument("\"subject_tag\" must be a string");
        subject_tag_ = value.get<std::string>();
      } else {
        throw std::invalid_argument("unknown setting \"" + key + "\"");
      }
    }
  }

  Action on_rcpt(Session& s, std::string_view recipient) override {
    if (reject_prefix_.empty()) return Action::kContinue;
    const std::string_view local_part = recipient.substr(0, recipient.rfind('@'));
    if (!starts_with_ignore_case(local_part, reject_prefix_)) return Action::kContinue;
    s.log(mailgate::LogLevel::kInfo, "refusing <" + std::string(recipient) + ">");
    return s.reject(550, "5.7.1", "Recipient not accepted here");
  }

  Action on_eom(Session& s) override {
    s.header_add("X-Example-Plugin", "seen");
    s.add_symbol("EXAMPLE_SEEN", score_, "subject_tag saw this message");
    if (!subject_tag_.empty()) {
      const std::optional<std::string_view> subject = s.header("Subject");
      if (!subject) {
        s.header_add("Subject", subject_tag_);
      } else if (!starts_with_ignore_case(*subject, subject_tag_)) {
        s.header_change("Subject", 1, subject_tag_ + " " + std::string(*subject));
      }
    }
    return Action::kContinue;
  }

 private:
  double score_ = 0.1;
  std::string reject_prefix_;
  std::string subject_tag_;
};

}  // namespace

MAILGATE_PLUGIN(SubjectTag, "subject_tag", "1.0.0", MG_PLUGIN_NONBLOCKING);
