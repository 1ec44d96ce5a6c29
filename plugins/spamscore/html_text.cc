// plugins/spamscore/html_text.cc — see html_text.h.
#include "html_text.h"

#include <cstdint>

namespace mailgate::spamscore {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ci(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (lower(text[i]) != prefix[i]) return false;
  return true;
}

std::size_t find_ci(std::string_view text, std::string_view needle, std::size_t from) {
  for (std::size_t i = from; i + needle.size() <= text.size(); ++i)
    if (starts_with_ci(text.substr(i), needle)) return i;
  return std::string_view::npos;
}

void append_utf8(std::uint32_t cp, std::string* out) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the entity at text[0] == '&' into *out; returns the characters consumed (1 when it
// is not an entity we know, and the '&' is kept as is).
std::size_t decode_entity(std::string_view text, std::string* out) {
  struct Named {
    std::string_view name;
    std::uint32_t cp;
  };
  static constexpr Named kNamed[] = {{"amp", '&'},   {"lt", '<'},      {"gt", '>'},
                                     {"quot", '"'},  {"apos", '\''},   {"nbsp", 0xA0},
                                     {"copy", 0xA9}, {"reg", 0xAE},    {"euro", 0x20AC},
                                     {"shy", 0xAD},  {"zwnj", 0x200C}, {"zwj", 0x200D}};
  const std::size_t semi = text.substr(0, 12).find(';');
  if (semi == std::string_view::npos || semi < 2) {
    out->push_back('&');
    return 1;
  }
  const std::string_view body = text.substr(1, semi - 1);
  if (body[0] == '#') {
    std::uint32_t cp = 0;
    const bool hex = body.size() > 1 && (body[1] == 'x' || body[1] == 'X');
    std::size_t i = hex ? 2 : 1;
    if (i >= body.size()) {
      out->push_back('&');
      return 1;
    }
    for (; i < body.size(); ++i) {
      const char c = lower(body[i]);
      int digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (hex && c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else {
        out->push_back('&');
        return 1;
      }
      cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(digit);
      if (cp > 0x10FFFF) cp = 0x110000;  // stays invalid, no overflow
    }
    append_utf8(cp, out);
    return semi + 1;
  }
  for (const Named& n : kNamed) {
    if (body.size() == n.name.size() && starts_with_ci(body, n.name)) {
      append_utf8(n.cp, out);
      return semi + 1;
    }
  }
  out->push_back('&');
  return 1;
}

std::string decode_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '&') {
      i += decode_entity(text.substr(i), &out);
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

// The value of attribute `name` inside one tag's text (between '<' and '>'), if present.
bool attribute(std::string_view tag, std::string_view name, std::string* value) {
  std::size_t i = 0;
  while (i < tag.size() && !is_space(tag[i])) ++i;  // the tag name
  while (i < tag.size()) {
    while (i < tag.size() && (is_space(tag[i]) || tag[i] == '/')) ++i;
    const std::size_t name_start = i;
    while (i < tag.size() && !is_space(tag[i]) && tag[i] != '=' && tag[i] != '/') ++i;
    const std::string_view attr = tag.substr(name_start, i - name_start);
    while (i < tag.size() && is_space(tag[i])) ++i;
    std::string_view val;
    if (i < tag.size() && tag[i] == '=') {
      ++i;
      while (i < tag.size() && is_space(tag[i])) ++i;
      if (i < tag.size() && (tag[i] == '"' || tag[i] == '\'')) {
        const char quote = tag[i++];
        const std::size_t end = tag.find(quote, i);
        const std::size_t stop = end == std::string_view::npos ? tag.size() : end;
        val = tag.substr(i, stop - i);
        i = stop == tag.size() ? stop : stop + 1;
      } else {
        const std::size_t start = i;
        while (i < tag.size() && !is_space(tag[i])) ++i;
        val = tag.substr(start, i - start);
      }
    }
    if (attr.empty()) {
      if (i < tag.size()) ++i;  // a stray character: step over it
      continue;
    }
    if (attr.size() == name.size() && starts_with_ci(attr, name)) {
      *value = decode_entities(val);
      return true;
    }
  }
  return false;
}

// White space as a browser renders it: each run becomes one space, or one line break when the
// run holds one.
std::string collapse_space(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (!is_space(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    bool newline = false;
    for (; i < text.size() && is_space(text[i]); ++i) {
      if (text[i] == '\n') newline = true;
    }
    out.push_back(newline ? '\n' : ' ');
  }
  return out;
}

bool is_block_tag(std::string_view name) {
  static constexpr std::string_view kBlocks[] = {"br", "p",  "div",        "tr",    "li", "table",
                                                 "h1", "h2", "h3",         "h4",    "h5", "h6",
                                                 "hr", "td", "blockquote", "title", "ul", "ol"};
  for (std::string_view b : kBlocks)
    if (name.size() == b.size() && starts_with_ci(name, b)) return true;
  return false;
}

}  // namespace

HtmlText html_to_text(std::string_view html) {
  HtmlText out;
  std::string raw_text;  // text with entities still encoded, decoded at the end
  raw_text.reserve(html.size());
  std::size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c != '<') {
      raw_text.push_back(c);
      ++i;
      continue;
    }
    if (starts_with_ci(html.substr(i), "<!--")) {
      const std::size_t end = html.find("-->", i + 4);
      i = end == std::string_view::npos ? html.size() : end + 3;
      continue;
    }
    const std::size_t close = html.find('>', i + 1);
    if (close == std::string_view::npos) break;  // an unterminated tag ends the text
    const std::string_view tag = html.substr(i + 1, close - i - 1);
    i = close + 1;
    std::string_view name = tag;
    if (!name.empty() && name[0] == '/') name.remove_prefix(1);
    std::size_t name_end = 0;
    while (name_end < name.size() && !is_space(name[name_end]) && name[name_end] != '/') ++name_end;
    name = name.substr(0, name_end);
    const bool closing = !tag.empty() && tag[0] == '/';
    if (!closing && (starts_with_ci(name, "script") || starts_with_ci(name, "style")) &&
        (name.size() == 6 || name.size() == 5)) {
      const std::string end_tag = name.size() == 6 ? "</script" : "</style";
      const std::size_t end = find_ci(html, end_tag, i);
      if (end == std::string_view::npos) break;
      const std::size_t gt = html.find('>', end);
      i = gt == std::string_view::npos ? html.size() : gt + 1;
      continue;
    }
    if (!closing && name.size() == 1 && lower(name[0]) == 'a') {
      std::string href;
      if (attribute(tag, "href", &href)) out.hrefs.push_back(std::move(href));
    }
    // An inline tag renders as nothing ("<b>Che</b>ap" reads "Cheap"), a block as a line break.
    if (is_block_tag(name)) raw_text.push_back('\n');
  }
  out.text = collapse_space(decode_entities(raw_text));
  return out;
}

}  // namespace mailgate::spamscore
