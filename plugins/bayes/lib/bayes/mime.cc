// plugins/bayes/lib/bayes/mime.cc — message splitting, the MIME walk and the decoders. See
// mime.h.
#include "bayes/mime.h"

#include <algorithm>
#include <cstdint>

namespace mailgate::bayes {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The next line of `text` from `pos` without its line end; advances pos past it.
std::string_view next_line(std::string_view text, std::size_t& pos) {
  const std::size_t start = pos;
  std::size_t end = text.find('\n', start);
  if (end == std::string_view::npos) {
    pos = text.size();
    end = text.size();
  } else {
    pos = end + 1;
  }
  std::string_view line = text.substr(start, end - start);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

const std::string* find_header(const std::vector<HeaderField>& headers, std::string_view name) {
  for (const HeaderField& h : headers)
    if (iequals(h.name, name)) return &h.value;
  return nullptr;
}

// The header block and body of a MIME part (no mbox line here).
Message split_part(std::string_view raw) {
  Message m;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    const std::size_t line_start = pos;
    std::string_view line = next_line(raw, pos);
    if (line.empty()) {
      m.body.assign(raw.substr(pos));
      return m;
    }
    if ((line[0] == ' ' || line[0] == '\t') && !m.headers.empty()) {
      m.headers.back().value.append("\n").append(line);
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      // Not a header line: the header block ended without a blank line (a broken part).
      m.body.assign(raw.substr(line_start));
      return m;
    }
    HeaderField field;
    field.name.assign(trim(line.substr(0, colon)));
    field.value.assign(trim(line.substr(colon + 1)));
    m.headers.push_back(std::move(field));
  }
  return m;
}

class Walker {
 public:
  Walker(MimeScan& out, std::size_t max_bytes) : out_(out), budget_(max_bytes) {}

  void walk(const std::vector<HeaderField>& headers, std::string_view body, int depth,
            bool default_rfc822_text) {
    if (parts_ >= kMaxParts || budget_ == 0) return;
    ++parts_;
    const std::string* ct_value = find_header(headers, "Content-Type");
    ContentType ct = parse_content_type(ct_value ? std::string_view(*ct_value) : "");
    if (ct_value == nullptr && !default_rfc822_text) ct.type = "message/rfc822";
    out_.structure.push_back("content-type:" + ct.type);
    const std::string charset = ascii_lower(ct.param("charset"));
    if (!charset.empty()) out_.structure.push_back("charset:" + charset);
    const std::string* cte_value = find_header(headers, "Content-Transfer-Encoding");
    const std::string cte = cte_value ? ascii_lower(trim(*cte_value)) : std::string();
    if (!cte.empty() && cte != "7bit") out_.structure.push_back("cte:" + cte);
    if (const std::string* cd = find_header(headers, "Content-Disposition")) {
      const ContentType disposition = parse_content_type(*cd);
      std::string filename = disposition.param("filename");
      if (filename.empty()) filename = ct.param("name");
      const std::size_t dot = filename.rfind('.');
      if (dot != std::string::npos && filename.size() - dot <= 6)
        out_.structure.push_back("filename:" + ascii_lower(filename.substr(dot)));
    }

    if (ct.type.starts_with("multipart/")) {
      const std::string boundary = ct.param("boundary");
      if (boundary.empty() || depth >= kMaxDepth) {
        add_text(body, false);
        return;
      }
      for (std::string_view part : split_multipart(body, boundary)) {
        const Message m = split_part(part);
        // In multipart/digest a part without Content-Type is message/rfc822.
        walk(m.headers, m.body, depth + 1, ct.type != "multipart/digest");
      }
      return;
    }
    if (ct.type == "message/rfc822" && depth < kMaxDepth) {
      const Message inner = split_part(body);
      for (const HeaderField& h : inner.headers)
        if (iequals(h.name, "Subject")) add_text(decode_header_value(h.value), false);
      walk(inner.headers, inner.body, depth + 1, true);
      return;
    }
    if (!ct.type.starts_with("text/")) return;
    std::string decoded;
    if (cte == "base64") {
      decoded = decode_base64(body);
    } else if (cte == "quoted-printable") {
      decoded = decode_quoted_printable(body);
    } else {
      decoded.assign(body);
    }
    if (ct.type == "text/html") {
      add_text(html_to_text(decoded), true);
    } else {
      add_text(decoded, false);
    }
  }

 private:
  void add_text(std::string_view text, bool html) {
    if (text.size() > budget_) text = text.substr(0, budget_);
    budget_ -= text.size();
    out_.texts.push_back(TextPart{std::string(text), html});
  }

  // The parts between "--boundary" lines, up to "--boundary--" (the preamble and epilogue
  // are not parts).
  static std::vector<std::string_view> split_multipart(std::string_view body,
                                                       const std::string& boundary) {
    std::vector<std::string_view> parts;
    const std::string delimiter = "--" + boundary;
    std::size_t pos = 0;
    std::size_t part_start = std::string_view::npos;
    while (pos < body.size() && parts.size() < kMaxParts) {
      const std::size_t line_start = pos;
      const std::string_view line = next_line(body, pos);
      if (line.size() < delimiter.size() || line.compare(0, delimiter.size(), delimiter) != 0)
        continue;
      const std::string_view rest = trim(line.substr(delimiter.size()));
      if (!rest.empty() && rest != "--") continue;  // a longer boundary that starts the same
      if (part_start != std::string_view::npos) {
        std::size_t end = line_start;
        // The line end before the delimiter belongs to it.
        if (end > part_start && body[end - 1] == '\n') --end;
        if (end > part_start && body[end - 1] == '\r') --end;
        parts.push_back(body.substr(part_start, end - part_start));
      }
      if (rest == "--") return parts;
      part_start = pos;
    }
    if (part_start != std::string_view::npos && part_start < body.size())
      parts.push_back(body.substr(part_start));  // no closing delimiter: take the rest
    return parts;
  }

  MimeScan& out_;
  std::size_t budget_;
  std::size_t parts_ = 0;
};

// Decodes one RFC 2047 encoded word's text ("Q" or "B").
std::string decode_encoded_text(char encoding, std::string_view text) {
  if (encoding == 'B' || encoding == 'b') return decode_base64(text);
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_') {
      out += ' ';
    } else if (c == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

Message parse_message(std::string_view raw) {
  if (raw.starts_with("From ")) {  // mbox separator line
    const std::size_t eol = raw.find('\n');
    raw = eol == std::string_view::npos ? std::string_view() : raw.substr(eol + 1);
  }
  return split_part(raw);
}

std::string ContentType::param(std::string_view name) const {
  for (const auto& [key, value] : params)
    if (key == name) return value;
  return std::string();
}

ContentType parse_content_type(std::string_view value) {
  ContentType ct;
  const std::size_t semi = value.find(';');
  const std::string type = ascii_lower(trim(value.substr(0, semi)));
  const std::size_t slash = type.find('/');
  const bool valid = slash != std::string::npos && slash > 0 && slash + 1 < type.size() &&
                     type.find_first_of(" \t\"") == std::string::npos;
  ct.type = valid ? type : "text/plain";
  if (semi == std::string_view::npos) return ct;
  std::string_view rest = value.substr(semi + 1);
  while (!rest.empty()) {
    rest = trim(rest);
    const std::size_t eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string name = ascii_lower(trim(rest.substr(0, eq)));
    rest = trim(rest.substr(eq + 1));
    std::string val;
    if (!rest.empty() && rest.front() == '"') {
      std::size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        val += rest[i];
      }
      rest = i < rest.size() ? rest.substr(i + 1) : std::string_view();
      const std::size_t next = rest.find(';');
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    } else {
      const std::size_t next = rest.find(';');
      val.assign(trim(rest.substr(0, next)));
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    }
    if (name.ends_with('*')) name.pop_back();  // RFC 2231 value: kept as written
    ct.params.emplace_back(std::move(name), std::move(val));
  }
  return ct;
}

std::string decode_base64(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+' || c == '-') {
      v = 62;
    } else if (c == '/' || c == '_') {
      v = 63;
    } else if (c == '=') {
      acc = 0;  // padding ends a quantum
      bits = 0;
      continue;
    } else {
      continue;  // line ends and junk
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string decode_quoted_printable(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c != '=') {
      out += c;
      continue;
    }
    if (i + 1 < in.size() && (in[i + 1] == '\n' || in[i + 1] == '\r')) {  // soft line break
      ++i;
      if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
      continue;
    }
    if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
      continue;
    }
    out += c;  // a stray '=' is kept
  }
  return out;
}

std::string decode_header_value(std::string_view value) {
  // Folding: CR/LF and the white space after them become one space.
  std::string unfolded;
  unfolded.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' || value[i] == '\n') {
      while (i + 1 < value.size() && is_space(value[i + 1])) ++i;
      unfolded += ' ';
    } else {
      unfolded += value[i];
    }
  }
  std::string out;
  std::size_t pos = 0;
  bool last_was_word = false;
  while (pos < unfolded.size()) {
    const std::size_t start = unfolded.find("=?", pos);
    if (start == std::string::npos) break;
    // =?charset?E?text?=
    const std::size_t q1 = unfolded.find('?', start + 2);
    const std::size_t q2 = q1 == std::string::npos ? q1 : unfolded.find('?', q1 + 1);
    const std::size_t end = q2 == std::string::npos ? q2 : unfolded.find("?=", q2 + 1);
    if (end == std::string::npos || q2 != q1 + 2) {
      out.append(unfolded, pos, start + 2 - pos);
      pos = start + 2;
      last_was_word = false;
      continue;
    }
    const std::string_view between(unfolded.data() + pos, start - pos);
    // White space between two encoded words is dropped (RFC 2047 section 6.2).
    if (!(last_was_word && trim(between).empty())) out.append(between);
    out += decode_encoded_text(unfolded[q1 + 1],
                               std::string_view(unfolded).substr(q2 + 1, end - q2 - 1));
    pos = end + 2;
    last_was_word = true;
  }
  out.append(unfolded, pos, std::string::npos);
  return out;
}

std::string html_to_text(std::string_view html) {
  std::string text;
  std::string urls;
  text.reserve(html.size() / 2);
  std::size_t i = 0;
  while (i < html.size()) {
    const char c = html[i];
    if (c == '<') {
      std::size_t end = html.find('>', i + 1);
      if (end == std::string_view::npos) end = html.size();
      const std::string_view tag = html.substr(i + 1, end - i - 1);
      if (istarts_with(tag, "!--")) {  // comment: up to "-->"
        const std::size_t close = html.find("-->", i + 4);
        i = close == std::string_view::npos ? html.size() : close + 3;
        text += ' ';
        continue;
      }
      for (const std::string_view attribute :
           {std::string_view("href="), std::string_view("src=")}) {
        const std::string lower_tag = ascii_lower(tag);
        const std::size_t at = lower_tag.find(attribute);
        if (at == std::string::npos) continue;
        std::string_view v = tag.substr(at + attribute.size());
        v = trim(v);
        if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
          const char quote = v.front();
          v.remove_prefix(1);
          v = v.substr(0, v.find(quote));
        } else {
          v = v.substr(0, v.find_first_of(" \t\r\n"));
        }
        urls.append(v).append("\n");
      }
      // script and style content is not text
      for (const std::string_view skip : {std::string_view("script"), std::string_view("style")}) {
        if (istarts_with(tag, skip)) {
          const std::string close = "</" + std::string(skip);
          std::size_t j = end;
          while (j < html.size()) {
            const std::size_t lt = html.find("</", j);
            if (lt == std::string_view::npos) {
              j = html.size();
              break;
            }
            if (istarts_with(html.substr(lt), close)) {
              j = lt;
              break;
            }
            j = lt + 2;
          }
          end = std::min(html.size(), html.find('>', j) == std::string_view::npos
                                          ? html.size()
                                          : html.find('>', j));
        }
      }
      text += ' ';
      i = end == html.size() ? end : end + 1;
      continue;
    }
    if (c == '&') {
      const std::size_t semi = html.find(';', i + 1);
      if (semi != std::string_view::npos && semi - i <= 8) {
        const std::string entity = ascii_lower(html.substr(i + 1, semi - i - 1));
        char replacement = 0;
        if (entity == "nbsp") replacement = ' ';
        if (entity == "amp") replacement = '&';
        if (entity == "lt") replacement = '<';
        if (entity == "gt") replacement = '>';
        if (entity == "quot") replacement = '"';
        if (entity == "apos" || entity == "#39") replacement = '\'';
        if (!entity.empty() && entity[0] == '#' && replacement == 0) {
          // numeric: ASCII ones decoded (spammers spell words with them), others dropped
          long code = 0;
          bool ok = entity.size() > 1;
          if (ok && (entity[1] == 'x')) {
            for (std::size_t k = 2; k < entity.size() && ok; ++k) {
              const int h = hex_value(entity[k]);
              ok = h >= 0 && code < 0x110000;
              code = code * 16 + h;
            }
          } else {
            for (std::size_t k = 1; k < entity.size() && ok; ++k) {
              ok = entity[k] >= '0' && entity[k] <= '9' && code < 0x110000;
              code = code * 10 + (entity[k] - '0');
            }
          }
          replacement = ok && code > 0 && code < 128 ? static_cast<char>(code) : ' ';
        }
        if (replacement != 0) {
          text += replacement;
          i = semi + 1;
          continue;
        }
      }
    }
    text += c;
    ++i;
  }
  if (!urls.empty()) text.append("\n").append(urls);
  return text;
}

MimeScan scan_mime(const Message& message, std::size_t max_bytes) {
  MimeScan scan;
  Walker walker(scan, max_bytes);
  walker.walk(message.headers, message.body, 0, true);
  return scan;
}

}  // namespace mailgate::bayes
