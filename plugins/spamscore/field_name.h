// plugins/spamscore/field_name.h — header field names compared as RFC 5322 says: ASCII
// letters without regard to case.
// Owns nothing; used by the header checks and the MIME scanner.
#pragma once

#include <cstddef>
#include <string_view>

namespace mailgate::spamscore {

// `name` (as written) is `lower` (a lowercase field name), in any letter case.
inline bool field_name_is(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace mailgate::spamscore
