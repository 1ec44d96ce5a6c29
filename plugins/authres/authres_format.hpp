// plugins/authres/authres_format.hpp — reading and writing the Authentication-Results field's
// text (RFC 8601 section 2.2): the authserv-id of an existing field, and a new field's value
// from a list of results, folded one resinfo per line.
// Owns: the syntax only (tokens, quoting, comments, folding). Which fields to remove and which
// results to write belong to authres.cc. Header-only; pure functions, no SDK calls.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::authres {

struct Result {
  std::string method;
  std::string result;
  std::string reason;      // "" when none
  std::string properties;  // "ptype.prop=value ..." or ""
};

// RFC 2045 token characters: printable US-ASCII except SPACE and tspecials.
inline bool is_token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u <= 0x20 || u >= 0x7f) return false;
  return std::string_view("()<>@,;:\\\"/[]?=").find(c) == std::string_view::npos;
}

// An authserv-id we write: a host name or token of letters, digits, '.', '-' and '_'.
inline bool is_authserv_id(std::string_view id) {
  if (id.empty() || id.size() > 255) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// A property value written as is: a token, or [local-part "@"] domain-name (RFC 8601 pvalue).
inline bool is_property_value(std::string_view v) {
  if (v.empty()) return false;
  bool token = true;
  for (char c : v) token = token && is_token_char(c);
  if (token) return true;
  const std::size_t at = v.rfind('@');
  const auto atext = [](std::string_view part) {
    if (part.empty()) return false;
    for (char c : part) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f || std::string_view("()<>[]:;@\\,\"").find(c) !=
                                         std::string_view::npos)
        return false;
    }
    return true;
  };
  const auto domain_name = [](std::string_view part) {
    if (part.empty()) return false;
    for (char c : part) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
      if (!ok) return false;
    }
    return true;
  };
  if (at == std::string_view::npos) return domain_name(v);
  return (at == 0 || atext(v.substr(0, at))) && domain_name(v.substr(at + 1));
}

// `text` as an RFC 5322 quoted-string.
inline std::string quoted_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  out += '"';
  return out;
}

// Skips folding white space and (nested, escaped) comments from `i`.
inline std::size_t skip_cfws(std::string_view v, std::size_t i) {
  while (i < v.size()) {
    const char c = v[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      ++i;
    } else if (c == '(') {
      int depth = 0;
      for (; i < v.size(); ++i) {
        if (v[i] == '\\') {
          ++i;
        } else if (v[i] == '(') {
          ++depth;
        } else if (v[i] == ')' && --depth == 0) {
          ++i;
          break;
        }
      }
    } else {
      break;
    }
  }
  return i;
}

// The authserv-id an existing field claims: its first value (token or quoted-string) after
// comments and white space; "" when there is none.
inline std::string authserv_id_of(std::string_view value) {
  std::size_t i = skip_cfws(value, 0);
  std::string id;
  if (i < value.size() && value[i] == '"') {
    for (++i; i < value.size() && value[i] != '"'; ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) ++i;
      id += value[i];
    }
    return id;
  }
  // RFC 8601 allows any token; host names are what is seen in practice. Stop at what ends it.
  for (; i < value.size(); ++i) {
    const char c = value[i];
    if (c == ';' || c == '(' || c == ' ' || c == '\t' || c == '\r' || c == '\n') break;
    id += c;
  }
  return id;
}

// "ptype.prop=value ..." with each value written as is or quoted, as the grammar requires.
inline std::string format_properties(std::string_view properties) {
  std::string out;
  std::size_t i = 0;
  while (i < properties.size()) {
    while (i < properties.size() && properties[i] == ' ') ++i;
    std::size_t end = properties.find(' ', i);
    if (end == std::string_view::npos) end = properties.size();
    const std::string_view pair = properties.substr(i, end - i);
    i = end;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    if (!out.empty()) out += ' ';
    if (eq == std::string_view::npos) {
      out += pair;  // not a property; kept as the plugin gave it (it holds no ';' or CRLF)
      continue;
    }
    const std::string_view name = pair.substr(0, eq);
    const std::string_view val = pair.substr(eq + 1);
    out += name;
    out += '=';
    out += is_property_value(val) ? std::string(val) : quoted_string(val);
  }
  return out;
}

// The field's value: "id;\r\n\tmethod=result reason=\"...\" props;\r\n\t..." or "id; none".
inline std::string format_field(std::string_view authserv_id, const std::vector<Result>& results) {
  std::string v(authserv_id);
  if (results.empty()) return v + "; none";
  for (const Result& r : results) {
    v += ";\r\n\t";
    v += r.method;
    v += '=';
    v += r.result;
    if (!r.reason.empty()) v += " reason=" + quoted_string(r.reason);
    const std::string props = format_properties(r.properties);
    if (!props.empty()) v += ' ' + props;
  }
  return v;
}

}  // namespace mailgate::authres
