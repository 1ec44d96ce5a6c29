// policy/validate.h — the rules every policy row must satisfy, one function per kind of value.
// Owns: the syntax of names, paths, profiles, domains, addresses, access patterns, SMTP reply
// parts and settings JSON. Used by the snapshot loader (whose errors say "TABLE row KEY: ...")
// and by mailgatectl (whose errors say "--ARGUMENT: ..."), so both refuse exactly the same.
// Each check returns nullopt when the value is acceptable, or a message that reads well after
// a subject (a column or an argument name), e.g. check_fail_mode("x") -> "must be open or
// tempfail (got 'x')". Checks that carry their own subject say so.
// Threading: pure functions. Must not touch: SQLite (values come in as text and numbers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::policy {

using Problem = std::optional<std::string>;

inline constexpr int64_t kMinTimeoutMs = 1;
inline constexpr int64_t kMaxTimeoutMs = 600000;
inline constexpr size_t kMaxReplyText = 400;

// [a-z0-9_-]{1,64}, the SDK's plugin name alphabet.
Problem check_plugin_name(std::string_view name);
// Non-empty, printable, ending in ".so" or with a ".so." version suffix ("libx.so.1").
Problem check_plugin_path(std::string_view path);
// '*' or [A-Za-z0-9_.-]{1,64}.
Problem check_profile(std::string_view profile);
Problem check_fail_mode(std::string_view mode);
Problem check_timeout_ms(int64_t ms);
// Strict JSON (RFC 8259, UTF-8, no comments, no trailing commas) whose top level is an object
// and in which no object repeats a key: "is not valid JSON: <parser message>", "must be a JSON
// object", "has a duplicate key 'k'".
Problem check_settings_json(std::string_view json);

// An LDH domain name (A-labels for IDNs), case-insensitive, no trailing dot, at most 253
// characters, labels 1..63, not an IP address. Message: "'x' is not a valid domain name: why".
Problem check_domain(std::string_view domain);
// local@domain with a printable local part of at most 64 characters and a valid domain.
// Message: "'x' is not a valid address: why".
Problem check_address(std::string_view address);

// Access rule parts. `stage` is the column text; the pattern message carries its own subject
// ("bad CIDR '...': ...", "'x' is not a valid domain name: ...").
Problem check_access_stage(std::string_view stage);
Problem check_access_action(std::string_view action);
Problem check_access_pattern(std::string_view stage, std::string_view pattern);
// code/enhanced/text given the action; messages name the column ("code must be 5xx for deny").
Problem check_access_reply(std::string_view action, std::optional<int64_t> code,
                           const std::optional<std::string>& enhanced,
                           const std::optional<std::string>& text);

// '*' or a valid domain (plugin_settings.domain).
Problem check_settings_domain(std::string_view domain);

// ASCII lower-casing (domains, addresses, patterns are stored and compared lower-case).
std::string to_lower(std::string_view text);

}  // namespace mailgate::policy
