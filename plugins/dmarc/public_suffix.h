// plugins/dmarc/public_suffix.h — the Public Suffix List (publicsuffix.org, Debian's
// publicsuffix package) read once into memory, and the organizational domain of a name
// (RFC 7489 section 3.2) computed from it.
//
// Owns: reading the list file (rules, wildcard rules "*.", exception rules "!"; comments and
// blank lines skipped; ICANN and PRIVATE sections both used) and the longest-match lookup.
// Must not: do DNS, or keep any per-message state. Immutable after construction, so any
// number of threads may call organizational_domain() at once.
// Names are compared in lower case without a trailing dot; non-ASCII rules are kept as the
// list spells them (UTF-8), so an A-label ("xn--") name only matches the default rule "*".
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>

namespace mailgate::dmarc {

class PublicSuffixList {
 public:
  // Reads `path`; throws std::runtime_error naming the file when it cannot be read or holds
  // no rule.
  explicit PublicSuffixList(const std::string& path);
  // From rule lines already read (for tests): the same syntax as the file.
  static PublicSuffixList from_text(std::string_view text);

  // The public suffix of `domain` (lower case, no trailing dot): the longest matching rule,
  // an exception rule winning, "*" (the last label) when nothing matches.
  std::string public_suffix(std::string_view domain) const;
  // The organizational domain: the public suffix plus one label; `domain` itself (normalised)
  // when it is a public suffix or has a single label.
  std::string organizational_domain(std::string_view domain) const;
  std::size_t rule_count() const { return rules_.size() + wildcards_.size() + exceptions_.size(); }

 private:
  PublicSuffixList() = default;
  void add_line(std::string_view line);

  std::unordered_set<std::string> rules_;       // "co.uk"
  std::unordered_set<std::string> wildcards_;   // "*.ck" stored as "ck"
  std::unordered_set<std::string> exceptions_;  // "!www.ck" stored as "www.ck"
};

// Lower case ASCII letters, drop one trailing dot.
std::string normalize_domain(std::string_view domain);

}  // namespace mailgate::dmarc
