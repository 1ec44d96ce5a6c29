// dns/local_zones.cc — parser of the local-zones file. See local_zones.h.
#include "dns/local_zones.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "dns/names.h"
#include "util/lines.h"

namespace mailgate::dns {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Splits a statement's value into tokens: quoted strings (quotes removed) and bare words.
// Stops at '#' outside quotes.
Expected<std::vector<std::string>, std::string> tokenize(std::string_view value) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < value.size()) {
    char c = value[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (c == '#') break;
    if (c == '"' || c == '\'') {
      size_t close = value.find(c, i + 1);
      if (close == std::string_view::npos)
        return unexpected(std::string("unterminated ") + (c == '"' ? "\"" : "'") + " string");
      tokens.emplace_back(value.substr(i + 1, close - i - 1));
      i = close + 1;
      if (i < value.size() && !is_space(value[i]) && value[i] != '#')
        return unexpected(std::string("text right after a closing quote"));
      continue;
    }
    size_t end = i;
    while (end < value.size() && !is_space(value[end]) && value[end] != '#') ++end;
    tokens.emplace_back(value.substr(i, end - i));
    i = end;
  }
  return tokens;
}

// "IP NAME" or "IP TTL NAME" -> the PTR record.
Expected<std::string, std::string> ptr_record(const std::string& value) {
  std::vector<std::string> words;
  std::istringstream in(value);
  for (std::string w; in >> w;) words.push_back(w);
  if (words.size() != 2 && words.size() != 3)
    return unexpected(std::string("local-data-ptr wants \"IP NAME\" or \"IP TTL NAME\""));
  auto reverse = ptr_name(words[0]);
  if (!reverse) return unexpected("local-data-ptr: " + reverse.error());
  std::string ttl = "3600";
  if (words.size() == 3) {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(words[1].data(), words[1].data() + words[1].size(), n);
    if (ec != std::errc() || p != words[1].data() + words[1].size())
      return unexpected("local-data-ptr: bad TTL '" + words[1] + "'");
    ttl = words[1];
  }
  return *reverse + ". " + ttl + " IN PTR " + words.back();
}

}  // namespace

Expected<std::vector<LocalZoneEntry>, std::string> parse_local_zones(std::string_view text,
                                                                     std::string_view source) {
  std::vector<LocalZoneEntry> out;
  LineCursor lines(text);
  std::string_view line;
  while (lines.next(&line)) {
    const std::string where = std::string(source) + ":" + std::to_string(lines.number());
    auto fail = [&](const std::string& message) { return unexpected(where + ": " + message); };

    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return fail("expected 'local-zone:', 'local-data:' or 'local-data-ptr:'");
    std::string_view keyword = line.substr(0, colon);
    auto tokens = tokenize(line.substr(colon + 1));
    if (!tokens) return fail(tokens.error());

    LocalZoneEntry entry;
    entry.where = where;
    if (keyword == "server") {
      if (!tokens->empty()) return fail("'server:' takes no value");
      continue;
    } else if (keyword == "local-zone") {
      if (tokens->size() != 2) return fail("local-zone wants a name and a type");
      entry.kind = LocalZoneEntry::Kind::kZone;
      entry.name = (*tokens)[0];
      entry.type = (*tokens)[1];
      if (entry.name.empty()) return fail("local-zone with an empty name");
    } else if (keyword == "local-data") {
      if (tokens->size() != 1)
        return fail("local-data wants one record in quotes, e.g. \"a.example. A 192.0.2.1\"");
      entry.data = (*tokens)[0];
      if (entry.data.empty()) return fail("empty local-data");
    } else if (keyword == "local-data-ptr") {
      if (tokens->size() != 1) return fail("local-data-ptr wants one value in quotes");
      auto ptr = ptr_record((*tokens)[0]);
      if (!ptr) return fail(ptr.error());
      entry.data = std::move(*ptr);
    } else {
      return fail("unknown statement '" + std::string(keyword) +
                  "' (want local-zone, local-data or local-data-ptr)");
    }
    out.push_back(std::move(entry));
  }
  return out;
}

Expected<std::vector<LocalZoneEntry>, std::string> load_local_zones_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return unexpected("cannot open local zones file " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return unexpected("cannot read local zones file " + path);
  return parse_local_zones(text.str(), path);
}

}  // namespace mailgate::dns
