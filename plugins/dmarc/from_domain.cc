// plugins/dmarc/from_domain.cc — author addresses of the From field and the From domain (see
// from_domain.h). Pure string functions.
#include "from_domain.h"

#include "public_suffix.h"

namespace mailgate::dmarc {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string trim(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// One mailbox as written (between top-level commas): the addr-spec inside <...> when there
// is one (an obsolete route "@a,@b:" before it dropped), else the whole text; comments
// removed, quoted strings kept with their quotes.
std::string mailbox_address(std::string_view mailbox) {
  std::string plain;  // the mailbox without comments
  std::string angle;  // the text inside the last <...>
  bool in_angle = false;
  bool had_angle = false;
  bool in_quote = false;
  int comment_depth = 0;
  for (std::size_t i = 0; i < mailbox.size(); ++i) {
    const char c = mailbox[i];
    if (comment_depth > 0) {
      if (c == '\\')
        ++i;
      else if (c == '(')
        ++comment_depth;
      else if (c == ')')
        --comment_depth;
      continue;
    }
    if (in_quote) {
      if (c == '\\' && i + 1 < mailbox.size()) {
        (in_angle ? angle : plain) += c;
        (in_angle ? angle : plain) += mailbox[++i];
        continue;
      }
      if (c == '"') in_quote = false;
      (in_angle ? angle : plain) += c;
      continue;
    }
    if (c == '(') {
      ++comment_depth;
      continue;
    }
    if (c == '"') {
      in_quote = true;
      (in_angle ? angle : plain) += c;
      continue;
    }
    if (c == '<' && !in_angle) {
      in_angle = true;
      had_angle = true;
      angle.clear();
      continue;
    }
    if (c == '>' && in_angle) {
      in_angle = false;
      continue;
    }
    (in_angle ? angle : plain) += c;
  }
  std::string address = had_angle ? angle : plain;
  if (had_angle) {
    // obs-route: "@a.example,@b.example:user@c.example"
    const std::string t = trim(address);
    if (!t.empty() && t[0] == '@') {
      const std::size_t colon = t.find(':');
      address = colon == std::string::npos ? t : t.substr(colon + 1);
    }
  }
  // Whitespace inside an unquoted addr-spec is folding (CFWS): drop it.
  std::string out;
  bool quoted = false;
  for (std::size_t i = 0; i < address.size(); ++i) {
    const char c = address[i];
    if (c == '"') quoted = !quoted;
    if (c == '\\' && quoted && i + 1 < address.size()) {
      out += c;
      out += address[++i];
      continue;
    }
    if (!quoted && is_space(c)) continue;
    out += c;
  }
  return out;
}

}  // namespace

std::vector<std::string> from_addresses(std::string_view value) {
  std::vector<std::string> out;
  std::size_t start = 0;
  bool in_quote = false;
  bool in_angle = false;
  int comment_depth = 0;
  const auto flush = [&](std::size_t end) {
    const std::string mailbox = trim(value.substr(start, end - start));
    start = end + 1;
    if (mailbox.empty()) return;  // obs-mbox-list allows empty elements
    out.push_back(mailbox_address(mailbox));
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (comment_depth > 0) {
      if (c == '\\')
        ++i;
      else if (c == '(')
        ++comment_depth;
      else if (c == ')')
        --comment_depth;
      continue;
    }
    if (in_quote) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_quote = false;
      continue;
    }
    if (c == '"')
      in_quote = true;
    else if (c == '(')
      ++comment_depth;
    else if (c == '<')
      in_angle = true;
    else if (c == '>')
      in_angle = false;
    else if (c == ',' && !in_angle)
      flush(i);
  }
  flush(value.size());
  return out;
}

std::string domain_of(std::string_view address_or_domain) {
  std::string_view s = address_or_domain;
  const std::size_t at = s.rfind('@');
  if (at != std::string_view::npos) s = s.substr(at + 1);
  return normalize_domain(trim(s));
}

bool usable_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > 253) return false;
  std::size_t labels = 0;
  std::size_t pos = 0;
  while (pos <= domain.size()) {
    std::size_t dot = domain.find('.', pos);
    if (dot == std::string_view::npos) dot = domain.size();
    const std::string_view label = domain.substr(pos, dot - pos);
    if (label.empty() || label.size() > 63) return false;
    for (char ch : label) {
      const auto c = static_cast<unsigned char>(ch);
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c >= 0x80;
      if (!ok) return false;
    }
    ++labels;
    pos = dot + 1;
  }
  return labels >= 2;
}

FromDomain from_domain(const std::vector<std::string_view>& from_values) {
  FromDomain r;
  if (from_values.empty()) {
    r.status = FromStatus::kAbsent;
    r.problem = "no From header field";
    return r;
  }
  if (from_values.size() > 1) {
    r.status = FromStatus::kMultiple;
    r.problem = std::to_string(from_values.size()) + " From header fields";
    return r;
  }
  const std::vector<std::string> addresses = from_addresses(from_values.front());
  if (addresses.empty()) {
    r.status = FromStatus::kUnparseable;
    r.problem = "From header field without an address";
    return r;
  }
  if (addresses.size() > 1) {
    r.status = FromStatus::kMultiple;
    r.problem = "From header field with " + std::to_string(addresses.size()) + " addresses";
    return r;
  }
  const std::string& address = addresses.front();
  const std::size_t at = address.rfind('@');
  const std::string domain = at == std::string::npos ? std::string() : domain_of(address);
  if (at == 0 || domain.empty() || !usable_domain(domain)) {
    r.status = FromStatus::kUnparseable;
    r.problem = "From address without a usable domain";
    return r;
  }
  r.status = FromStatus::kOk;
  r.domain = domain;
  return r;
}

}  // namespace mailgate::dmarc
