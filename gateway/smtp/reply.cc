// smtp/reply.cc — see reply.h.
#include "smtp/reply.h"

#include <cctype>

namespace mailgate::smtp {
namespace {

// An enhanced status code is class "." subject "." detail: [245].\d{1,3}.\d{1,3} (RFC 3463).
size_t enhanced_length(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
  size_t i = 2;
  auto digits = [&](size_t max) {
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - start < max) ++i;
    return i - start;
  };
  if (digits(3) == 0 || i >= s.size() || s[i] != '.') return 0;
  ++i;
  if (digits(3) == 0) return 0;
  if (i < s.size() && s[i] != ' ') return 0;
  return i;
}

}  // namespace

Reply Reply::make(int code, std::string_view enhanced, std::string_view text) {
  Reply r;
  r.code = code;
  std::string line;
  line.reserve(enhanced.size() + 1 + text.size());
  if (!enhanced.empty()) {
    line.append(enhanced);
    if (!text.empty()) line.push_back(' ');
  }
  line.append(text);
  r.lines.push_back(std::move(line));
  return r;
}

std::string_view Reply::enhanced() const {
  if (lines.empty()) return {};
  std::string_view first = lines.front();
  return first.substr(0, enhanced_length(first));
}

std::string_view Reply::text() const {
  if (lines.empty()) return {};
  std::string_view first = lines.front();
  size_t n = enhanced_length(first);
  if (n > 0 && n < first.size()) ++n;  // the space after the enhanced code
  return first.substr(n);
}

void Reply::append_wire(std::string& out) const {
  char code_text[4] = {static_cast<char>('0' + code / 100 % 10),
                       static_cast<char>('0' + code / 10 % 10), static_cast<char>('0' + code % 10),
                       0};
  if (lines.empty()) {
    out.append(code_text, 3);
    out.append("\r\n");
    return;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    out.append(code_text, 3);
    out.push_back(i + 1 == lines.size() ? ' ' : '-');
    out.append(lines[i]);
    out.append("\r\n");
  }
}

std::string Reply::wire() const {
  std::string out;
  append_wire(out);
  return out;
}

std::string Reply::summary() const {
  std::string out = std::to_string(code);
  for (size_t i = 0; i < lines.size(); ++i) {
    out.append(i == 0 ? " " : " / ");
    out.append(lines[i]);
  }
  return out;
}

}  // namespace mailgate::smtp
