// plugins/spamscore/url_extract.cc — see url_extract.h.
#include "url_extract.h"

#include <algorithm>
#include <cctype>

namespace mailgate::spamscore {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (lower(text[i]) != prefix[i]) return false;
  return true;
}

// Characters that end a URL in running text.
bool url_end(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7F || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' ||
         c == '{' || c == '}' || c == '|' || c == '\\' || c == '^';
}

std::string_view trim(std::string_view url) {
  while (!url.empty() &&
         (url.front() == ' ' || url.front() == '\t' || url.front() == '\r' || url.front() == '\n'))
    url.remove_prefix(1);
  // Sentence punctuation after a link is not part of it; a ')' is kept when the URL opened one.
  while (!url.empty()) {
    const char c = url.back();
    if (c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == ']' ||
        c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      url.remove_suffix(1);
    } else if (c == ')' &&
               std::count(url.begin(), url.end(), '(') < std::count(url.begin(), url.end(), ')')) {
      url.remove_suffix(1);
    } else {
      break;
    }
  }
  return url;
}

bool is_url_start(std::string_view text) {
  return starts_with_ci(text, "http://") || starts_with_ci(text, "https://") ||
         starts_with_ci(text, "www.");
}

}  // namespace

bool add_url(std::string_view url, std::size_t max, std::vector<std::string>* out) {
  url = trim(url);
  if (!is_url_start(url)) return true;
  // Just a scheme or "www." is not a link.
  const std::size_t host = starts_with_ci(url, "www.") ? 4 : url.find("//") + 2;
  if (url.size() <= host) return true;
  if (std::find(out->begin(), out->end(), url) != out->end()) return true;
  if (out->size() >= max) return false;
  out->emplace_back(url);
  return true;
}

bool extract_urls(std::string_view text, std::size_t max, std::vector<std::string>* out) {
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = lower(text[i]);
    // A URL starts at 'h' or 'w' that does not continue a word ("xhttp://" is not one).
    const bool boundary = i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    if ((c == 'h' || c == 'w') && boundary && is_url_start(text.substr(i))) {
      std::size_t end = i;
      while (end < text.size() && !url_end(text[end])) ++end;
      if (!add_url(text.substr(i, end - i), max, out)) return false;
      i = end;
      continue;
    }
    ++i;
  }
  return true;
}

}  // namespace mailgate::spamscore
