// util/ascii.h — ASCII case-insensitive comparison for protocol tokens (SMTP verbs and
// parameters, header field names, DNS type names, SASL mechanisms). Only A-Z and a-z are
// folded: no locale, and no other byte is ever equal to a different one.
#pragma once

#include <cstddef>
#include <string_view>

namespace mailgate {

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

}  // namespace mailgate
