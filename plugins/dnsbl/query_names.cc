// plugins/dnsbl/query_names.cc — see query_names.h.
#include "query_names.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace mailgate::dnsbl {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ci(std::string_view text, std::size_t at, std::string_view prefix) {
  if (text.size() - at < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (lower(text[at + i]) != prefix[i]) return false;
  return true;
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Parses `address` as IPv4 (4 bytes) or IPv6 (16 bytes); an IPv4-mapped IPv6 address becomes
// its IPv4 form. Empty on failure.
std::vector<std::uint8_t> parse_ip(std::string_view address) {
  const std::string text(address);
  std::uint8_t buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return {buf, buf + 4};
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(buf, kMapped, sizeof(kMapped)) == 0) return {buf + 12, buf + 16};
    return {buf, buf + 16};
  }
  return {};
}

}  // namespace

std::optional<std::string> reversed_ip(std::string_view address) {
  const std::vector<std::uint8_t> ip = parse_ip(address);
  if (ip.empty()) return std::nullopt;
  std::string out;
  if (ip.size() == 4) {
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(ip[static_cast<std::size_t>(i)]);
      if (i > 0) out += '.';
    }
    return out;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    const std::uint8_t b = ip[static_cast<std::size_t>(i)];
    out += kHex[b & 0xf];
    out += '.';
    out += kHex[b >> 4];
    if (i > 0) out += '.';
  }
  return out;
}

bool private_address(std::string_view address) {
  const std::vector<std::uint8_t> ip = parse_ip(address);
  if (ip.empty()) return true;
  if (ip.size() == 4) {
    const std::uint8_t a = ip[0], b = ip[1];
    return a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) ||
           (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168) ||
           (a == 100 && (b & 0xc0) == 64);
  }
  bool zero_prefix = true;  // :: and ::1
  for (std::size_t i = 0; i < 15; ++i) zero_prefix = zero_prefix && ip[i] == 0;
  if (zero_prefix && ip[15] <= 1) return true;
  if ((ip[0] & 0xfe) == 0xfc) return true;                   // fc00::/7
  if (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) return true;  // fe80::/10
  return false;
}

std::optional<std::string> normalize_domain(std::string_view text, std::size_t max_length) {
  std::string d;
  d.reserve(text.size());
  for (char c : text) d += lower(c);
  while (!d.empty() && d.back() == '.') d.pop_back();
  if (d.empty() || d.size() > max_length) return std::nullopt;
  std::size_t labels = 0;
  std::size_t start = 0;
  std::string_view last;
  for (;;) {
    const std::size_t dot = d.find('.', start);
    const std::string_view label = std::string_view(d).substr(
        start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63) return std::nullopt;
    for (char c : label)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        return std::nullopt;
    if (label.front() == '-' || label.back() == '-') return std::nullopt;
    ++labels;
    last = label;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (labels < 2) return std::nullopt;
  if (std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return d;
}

std::optional<std::string> address_domain(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return normalize_domain(address.substr(at + 1));
}

std::vector<std::string> domain_candidates(const std::string& domain) {
  std::vector<std::string> out{domain};
  const std::size_t last_dot = domain.rfind('.');
  if (last_dot == std::string::npos || last_dot == 0) return out;
  const std::size_t second = domain.rfind('.', last_dot - 1);
  if (second != std::string::npos) out.push_back(domain.substr(second + 1));
  return out;
}

std::vector<std::string> url_domains(std::string_view raw, std::size_t limit) {
  // Join quoted-printable soft line breaks so a URL cut by them is seen whole.
  std::string text;
  text.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '=' && i + 1 < raw.size() && (raw[i + 1] == '\r' || raw[i + 1] == '\n')) {
      i += raw[i + 1] == '\r' && i + 2 < raw.size() && raw[i + 2] == '\n' ? 2 : 1;
      continue;
    }
    text += raw[i];
  }
  std::vector<std::string> out;
  auto add = [&](std::size_t host_start) {
    std::size_t end = host_start;
    while (end < text.size() && host_char(text[end])) ++end;
    // user:password@host: the host comes after the '@' (before any '/').
    if (end < text.size() && (text[end] == '@' || text[end] == ':')) {
      std::size_t stop = text.find_first_of("/?# \t\r\n\"'<>", host_start);
      if (stop == std::string::npos) stop = text.size();
      const std::size_t at = text.rfind('@', stop);
      if (at != std::string::npos && at >= host_start && at < stop) {
        host_start = at + 1;
        end = host_start;
        while (end < text.size() && host_char(text[end])) ++end;
      }
    }
    auto domain = normalize_domain(std::string_view(text).substr(host_start, end - host_start));
    if (domain && std::find(out.begin(), out.end(), *domain) == out.end())
      out.push_back(std::move(*domain));
    return end;
  };
  std::size_t i = 0;
  while (i < text.size() && out.size() < limit) {
    const char c = lower(text[i]);
    if ((c == 'h' || c == 'f') && (i == 0 || !word_char(text[i - 1]))) {
      std::size_t scheme = 0;
      if (starts_with_ci(text, i, "https://"))
        scheme = 8;
      else if (starts_with_ci(text, i, "http://"))
        scheme = 7;
      else if (starts_with_ci(text, i, "ftp://"))
        scheme = 6;
      if (scheme != 0) {
        i = add(i + scheme);
        continue;
      }
    } else if (c == 'w' && (i == 0 || !word_char(text[i - 1])) && starts_with_ci(text, i, "www.")) {
      i = add(i);
      continue;
    }
    ++i;
  }
  return out;
}

}  // namespace mailgate::dnsbl
