// policy_values_fuzz.cc — the policy row checks (policy/validate.h) and the CIDR parser
// (policy/cidr.h) on arbitrary values, as an admin's hand edit or a script may write them.
// Properties: no crash; a refusal is a message, never an exception; an accepted prefix prints
// canonically and that text parses back to the same prefix (what the snapshot stores is what it
// reads); plugin settings are accepted only when they are a JSON object.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_check.h"
#include "policy/cidr.h"
#include "policy/validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace p = mailgate::policy;
  const std::string_view value(reinterpret_cast<const char*>(data), size);

  if (auto prefix = p::parse_prefix(value)) {
    const std::string text = prefix->to_string();
    auto again = p::parse_prefix(text);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *prefix);
    FUZZ_CHECK(again->to_string() == text);
  }
  (void)p::parse_address(value);

  if (!p::check_settings_json(value)) {
    const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object());
  }
  for (std::string_view stage : {"client", "helo", "sender", "sender_domain", "recipient",
                                 "recipient_domain", "bogus"})
    (void)p::check_access_pattern(stage, value);
  (void)p::check_domain(value);
  (void)p::check_address(value);
  (void)p::check_plugin_name(value);
  (void)p::check_plugin_path(value);
  (void)p::check_profile(value);
  (void)p::check_fail_mode(value);
  (void)p::check_settings_domain(value);
  const std::optional<int64_t> code =
      size > 0 ? std::optional<int64_t>(data[0] * 3) : std::nullopt;
  const std::optional<std::string> enhanced(value.substr(0, value.size() / 2));
  const std::optional<std::string> text(value.substr(value.size() / 2));
  for (std::string_view action : {"allow", "deny", "tempfail"})
    (void)p::check_access_reply(action, code, enhanced, text);
  return 0;
}
