// plugins/dmarc/public_suffix.cc — reading the Public Suffix List and the organizational
// domain lookup (see public_suffix.h). No DNS, no per-message state.
#include "public_suffix.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace mailgate::dmarc {

std::string normalize_domain(std::string_view domain) {
  std::string out;
  out.reserve(domain.size());
  for (char c : domain) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

void PublicSuffixList::add_line(std::string_view line) {
  // A rule is the line up to the first whitespace; "//" starts a comment line.
  std::size_t start = 0;
  while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
  line.remove_prefix(start);
  std::size_t end = 0;
  while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r') ++end;
  line = line.substr(0, end);
  if (line.empty() || line.substr(0, 2) == "//") return;
  if (line[0] == '!') {
    if (line.size() > 1) exceptions_.insert(normalize_domain(line.substr(1)));
  } else if (line.substr(0, 2) == "*.") {
    if (line.size() > 2) wildcards_.insert(normalize_domain(line.substr(2)));
  } else {
    rules_.insert(normalize_domain(line));
  }
}

PublicSuffixList::PublicSuffixList(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the public suffix list \"" + path + "\"");
  std::string line;
  while (std::getline(in, line)) add_line(line);
  if (in.bad()) throw std::runtime_error("error reading the public suffix list \"" + path + "\"");
  if (rule_count() == 0)
    throw std::runtime_error("the public suffix list \"" + path + "\" holds no rule");
}

PublicSuffixList PublicSuffixList::from_text(std::string_view text) {
  PublicSuffixList list;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    list.add_line(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return list;
}

std::string PublicSuffixList::public_suffix(std::string_view domain_in) const {
  const std::string domain = normalize_domain(domain_in);
  if (domain.empty()) return domain;
  // Walk the suffixes from the longest ("a.b.c") to the shortest ("c"). The first suffix that
  // a rule matches is the longest match: exception rules match "the suffix minus its first
  // label"; wildcard "*.x" matches "<label>.x"; a plain rule matches itself.
  std::size_t pos = 0;
  for (;;) {
    const std::string_view suffix = std::string_view(domain).substr(pos);
    if (exceptions_.count(std::string(suffix)) != 0) {
      const std::size_t dot = suffix.find('.');
      return dot == std::string_view::npos ? std::string(suffix)
                                           : std::string(suffix.substr(dot + 1));
    }
    const std::size_t dot = suffix.find('.');
    if (rules_.count(std::string(suffix)) != 0) return std::string(suffix);
    if (dot != std::string_view::npos && wildcards_.count(std::string(suffix.substr(dot + 1))) != 0)
      return std::string(suffix);
    if (dot == std::string_view::npos) return std::string(suffix);  // the default rule "*"
    pos += dot + 1;
  }
}

std::string PublicSuffixList::organizational_domain(std::string_view domain_in) const {
  const std::string domain = normalize_domain(domain_in);
  const std::string suffix = public_suffix(domain);
  if (suffix.size() >= domain.size()) return domain;
  // One more label to the left of the suffix.
  const std::string_view head =
      std::string_view(domain).substr(0, domain.size() - suffix.size() - 1);
  const std::size_t dot = head.rfind('.');
  return dot == std::string_view::npos ? domain : domain.substr(dot + 1);
}

}  // namespace mailgate::dmarc
