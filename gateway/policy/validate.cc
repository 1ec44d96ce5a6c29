// policy/validate.cc — syntax rules for policy values. See validate.h.
#include "policy/validate.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "policy/cidr.h"

namespace mailgate::policy {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_printable(char c) { return c > 0x20 && c < 0x7f; }  // no space, no controls

// SAX handler that accepts any JSON but remembers the first duplicate key and parse error,
// so validation never throws. The parser itself enforces RFC 8259 and UTF-8.
class StrictSax : public nlohmann::json::json_sax_t {
 public:
  bool null() override { return top(false); }
  bool boolean(bool) override { return top(false); }
  bool number_integer(number_integer_t) override { return top(false); }
  bool number_unsigned(number_unsigned_t) override { return top(false); }
  bool number_float(number_float_t, const string_t&) override { return top(false); }
  bool string(string_t&) override { return top(false); }
  bool binary(binary_t&) override { return top(false); }
  bool start_object(std::size_t) override {
    top(true);
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& k) override {
    if (!keys_.back().insert(k).second) {
      duplicate_ = k;
      return false;
    }
    return true;
  }
  bool end_object() override {
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return top(false); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& ex) override {
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at ..."
    if (size_t close = what.find("] "); what.starts_with("[json.") && close != std::string::npos) {
      what.erase(0, close + 2);
    }
    error_ = std::move(what);
    return false;
  }

  std::optional<bool> top_is_object;
  std::optional<std::string> duplicate_;
  std::optional<std::string> error_;

 private:
  bool top(bool object) {
    if (!top_is_object) top_is_object = object;
    return true;
  }
  std::vector<std::set<std::string>> keys_;
};

Problem domain_problem(std::string_view domain) {
  if (domain.empty()) return "is empty";
  if (domain.size() > 253) return "is longer than 253 characters";
  if (domain.back() == '.') return "ends with a dot";
  size_t start = 0;
  std::string_view last_label;
  while (start <= domain.size()) {
    size_t dot = domain.find('.', start);
    if (dot == std::string_view::npos) dot = domain.size();
    std::string_view label = domain.substr(start, dot - start);
    if (label.empty()) return "has an empty label";
    if (label.size() > 63) return fmt::format("label '{}' is longer than 63 characters", label);
    for (char c : label) {
      if (!is_alnum(c) && c != '-') {
        return fmt::format("label '{}' has a character other than a-z, 0-9 and '-'", label);
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return fmt::format("label '{}' starts or ends with '-'", label);
    }
    last_label = label;
    start = dot + 1;
  }
  bool numeric = true;
  for (char c : last_label) numeric = numeric && c >= '0' && c <= '9';
  if (numeric) return "looks like an IP address (its last label is numeric)";
  return std::nullopt;
}

}  // namespace

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Problem check_plugin_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) ok = ok && (is_lower_alnum(c) || c == '_' || c == '-');
  if (ok) return std::nullopt;
  return fmt::format("'{}' is not a valid plugin name: use 1-64 characters of a-z, 0-9, '_', '-'",
                     name);
}

Problem check_plugin_path(std::string_view path) {
  if (path.empty()) return "must not be empty";
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return "must not contain control characters";
    }
  }
  std::string_view file = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  // "x.so", or "x.so.1.2" (a version suffix of digits and dots).
  if (size_t so = file.rfind(".so"); so != std::string_view::npos && so > 0) {
    std::string_view version = file.substr(so + 3);
    bool ok = version.empty() || (version.size() > 1 && version[0] == '.');
    for (char c : version) ok = ok && ((c >= '0' && c <= '9') || c == '.');
    if (ok) return std::nullopt;
  }
  return fmt::format("'{}' does not name a shared object (*.so)", path);
}

Problem check_profile(std::string_view profile) {
  if (profile == "*") return std::nullopt;
  bool ok = !profile.empty() && profile.size() <= 64;
  for (char c : profile) ok = ok && (is_alnum(c) || c == '_' || c == '.' || c == '-');
  if (ok) return std::nullopt;
  return fmt::format(
      "'{}' is not a valid profile: use '*' or 1-64 characters of A-Z, a-z, 0-9, "
      "'_', '.', '-'",
      profile);
}

Problem check_fail_mode(std::string_view mode) {
  if (mode == "open" || mode == "tempfail") return std::nullopt;
  return fmt::format("must be open or tempfail (got '{}')", mode);
}

Problem check_timeout_ms(int64_t ms) {
  if (ms >= kMinTimeoutMs && ms <= kMaxTimeoutMs) return std::nullopt;
  return fmt::format("must be {}..{} milliseconds (got {})", kMinTimeoutMs, kMaxTimeoutMs, ms);
}

Problem check_settings_json(std::string_view json) {
  StrictSax sax;
  bool ok = nlohmann::json::sax_parse(json, &sax, nlohmann::json::input_format_t::json,
                                      /*strict=*/true, /*ignore_comments=*/false);
  if (sax.duplicate_) return fmt::format("has a duplicate key '{}'", *sax.duplicate_);
  if (!ok || sax.error_) {
    return fmt::format("is not valid JSON: {}", sax.error_.value_or("parse error"));
  }
  if (!sax.top_is_object.value_or(false)) return "must be a JSON object";
  return std::nullopt;
}

Problem check_domain(std::string_view domain) {
  if (auto why = domain_problem(domain)) {
    return fmt::format("'{}' is not a valid domain name: {}", domain, *why);
  }
  return std::nullopt;
}

Problem check_address(std::string_view address) {
  auto bad = [&](std::string_view why) {
    return fmt::format("'{}' is not a valid address: {}", address, why);
  };
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return bad("no '@'");
  std::string_view local = address.substr(0, at);
  std::string_view domain = address.substr(at + 1);
  if (local.empty()) return bad("empty local part");
  if (local.size() > 64) return bad("local part longer than 64 characters");
  for (char c : local) {
    if (!is_printable(c) || c == '<' || c == '>') {
      return bad("local part has a space, control or '<>' character");
    }
  }
  if (auto why = domain_problem(domain)) return bad(fmt::format("domain {}", *why));
  return std::nullopt;
}

Problem check_access_stage(std::string_view stage) {
  for (std::string_view s :
       {"client", "helo", "sender", "sender_domain", "recipient", "recipient_domain"}) {
    if (stage == s) return std::nullopt;
  }
  return fmt::format(
      "must be client, helo, sender, sender_domain, recipient or recipient_domain (got '{}')",
      stage);
}

Problem check_access_action(std::string_view action) {
  if (action == "allow" || action == "deny" || action == "tempfail") return std::nullopt;
  return fmt::format("must be allow, deny or tempfail (got '{}')", action);
}

Problem check_access_pattern(std::string_view stage, std::string_view pattern) {
  if (stage == "client") {
    auto p = parse_prefix(pattern);
    if (!p) return p.error();
    return std::nullopt;
  }
  if (stage == "sender" || stage == "recipient") return check_address(pattern);
  if (stage == "sender_domain" || stage == "recipient_domain") {
    std::string_view domain = pattern.starts_with('.') ? pattern.substr(1) : pattern;
    if (auto why = domain_problem(domain)) {
      return fmt::format("'{}' is not a valid domain or .suffix: {}", pattern, *why);
    }
    return std::nullopt;
  }
  if (stage == "helo") {
    if (pattern.starts_with('.')) {
      if (auto why = domain_problem(pattern.substr(1))) {
        return fmt::format("'{}' is not a valid .suffix: {}", pattern, *why);
      }
      return std::nullopt;
    }
    if (pattern.empty() || pattern.size() > 255) {
      return fmt::format("'{}' is not a valid HELO name: must be 1..255 characters", pattern);
    }
    for (char c : pattern) {
      if (!is_printable(c)) {
        return fmt::format("'{}' is not a valid HELO name: has a space or control character",
                           pattern);
      }
    }
    return std::nullopt;
  }
  return fmt::format("stage {}", *check_access_stage(stage));
}

Problem check_access_reply(std::string_view action, std::optional<int64_t> code,
                           const std::optional<std::string>& enhanced,
                           const std::optional<std::string>& text) {
  if (action == "allow") {
    if (code || enhanced || text) return "code, enhanced and text must be NULL for allow";
    return std::nullopt;
  }
  const char cls = action == "deny" ? '5' : '4';
  if (code) {
    int64_t lo = cls == '5' ? 500 : 400;
    if (*code < lo || *code > lo + 99) {
      return fmt::format("code must be {}xx for {} (got {})", cls, action, *code);
    }
  }
  if (enhanced) {
    // class "." subject "." detail, subject and detail 1..3 digits (RFC 3463).
    const std::string& e = *enhanced;
    size_t d1 = e.find('.');
    size_t d2 = d1 == std::string::npos ? d1 : e.find('.', d1 + 1);
    auto digits = [&](size_t from, size_t to) {
      if (to <= from || to - from > 3) return false;
      for (size_t i = from; i < to; ++i) {
        if (e[i] < '0' || e[i] > '9') return false;
      }
      return true;
    };
    bool ok = d1 == 1 && d2 != std::string::npos && digits(2, d2) && digits(d2 + 1, e.size()) &&
              (e[0] == '2' || e[0] == '4' || e[0] == '5');
    if (!ok) return fmt::format("enhanced must look like X.Y.Z, e.g. {}.7.1 (got '{}')", cls, e);
    if (e[0] != cls) {
      return fmt::format("enhanced must start with {}. for {} (got '{}')", cls, action, e);
    }
  }
  if (text) {
    if (text->empty()) return "text must not be empty (use NULL for the default)";
    if (text->size() > kMaxReplyText) {
      return fmt::format("text must be at most {} characters", kMaxReplyText);
    }
    for (char c : *text) {
      if (c < 0x20 || c > 0x7e) return "text must be printable ASCII on one line";
    }
  }
  return std::nullopt;
}

Problem check_settings_domain(std::string_view domain) {
  if (domain == "*") return std::nullopt;
  return check_domain(domain);
}

}  // namespace mailgate::policy
