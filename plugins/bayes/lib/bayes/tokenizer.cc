// plugins/bayes/lib/bayes/tokenizer.cc — the features of a message. See tokenizer.h.
#include "bayes/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string_view>

namespace mailgate::bayes {
namespace {

constexpr std::size_t kMinWord = 3;
constexpr std::size_t kMaxWord = 12;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

bool is_trim_punct(char c) {
  return c != '\0' &&
         std::string_view(".,;:!?\"'()[]{}<>*`|=-_~#").find(c) != std::string_view::npos;
}

std::string_view trim_punct(std::string_view w) {
  while (!w.empty() && is_trim_punct(w.front())) w.remove_prefix(1);
  while (!w.empty() && is_trim_punct(w.back())) w.remove_suffix(1);
  return w;
}

std::vector<std::string_view> split_any(std::string_view s, std::string_view separators) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t end = s.find_first_of(separators, pos);
    if (end == std::string_view::npos) end = s.size();
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// A word as body tokens: short words dropped, long ones summarised.
void add_word(std::string_view word, const std::string& prefix, std::vector<std::string>& out) {
  if (word.size() < kMinWord) return;
  if (word.size() > kMaxWord) {
    const unsigned char first = static_cast<unsigned char>(word.front());
    std::string token = prefix + "skip:";
    token += first < 128 ? static_cast<char>(std::tolower(first)) : '?';
    token += ' ';
    token += std::to_string(word.size() / 10 * 10);
    out.push_back(std::move(token));
    return;
  }
  out.push_back(prefix + ascii_lower(word));
}

void add_url(std::string_view url, std::vector<std::string>& out) {
  std::string_view rest = url;
  const std::size_t scheme_end = rest.find("://");
  if (scheme_end != std::string_view::npos) {
    out.push_back("proto:" + ascii_lower(rest.substr(0, scheme_end)));
    rest.remove_prefix(scheme_end + 3);
  } else {
    out.push_back("proto:none");
  }
  const std::size_t host_end = rest.find_first_of("/?#");
  std::string_view host = rest.substr(0, host_end);
  if (const std::size_t at = host.rfind('@'); at != std::string_view::npos) {
    out.push_back("url:userinfo");
    host.remove_prefix(at + 1);
  }
  host = host.substr(0, host.find(':'));
  const bool numeric =
      !host.empty() && host.find_first_not_of("0123456789.") == std::string_view::npos;
  if (numeric) out.push_back("url:numeric-host");
  for (std::string_view label : split_any(host, "."))
    if (!label.empty() && label.size() <= 40) out.push_back("url:" + ascii_lower(label));
  if (host_end == std::string_view::npos) return;
  std::size_t pieces = 0;
  for (std::string_view piece : split_any(rest.substr(host_end), "/?#&=.-_%+")) {
    if (piece.size() < 2 || piece.size() > 20) continue;
    out.push_back("url-path:" + ascii_lower(piece));
    if (++pieces == 8) break;
  }
}

bool looks_like_url(std::string_view w) {
  const std::string lower = ascii_lower(w.substr(0, std::min<std::size_t>(w.size(), 8)));
  return lower.starts_with("http://") || lower.starts_with("https://") ||
         lower.starts_with("ftp://") || lower.starts_with("www.");
}

void add_address(std::string_view address, const std::string& prefix,
                 std::vector<std::string>& out) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return;
  const std::string_view local = address.substr(0, at);
  if (!local.empty() && local.size() <= 40) out.push_back(prefix + "name:" + ascii_lower(local));
  for (std::string_view label : split_any(address.substr(at + 1), "."))
    if (!label.empty() && label.size() <= 40) out.push_back(prefix + "addr:" + ascii_lower(label));
}

// Address-carrying fields: the display words, local parts and domains.
void tokenize_address_field(const std::string& field, std::string_view value,
                            std::vector<std::string>& out) {
  const std::string prefix = field + ":";
  std::size_t addresses = 0;
  for (std::string_view word : split_any(value, " \t,;")) {
    std::string_view w = word;
    while (!w.empty() && (w.front() == '<' || w.front() == '"' || w.front() == '('))
      w.remove_prefix(1);
    while (!w.empty() && (w.back() == '>' || w.back() == '"' || w.back() == ')'))
      w.remove_suffix(1);
    if (w.find('@') != std::string_view::npos) {
      add_address(w, prefix, out);
      ++addresses;
    } else {
      add_word(trim_punct(w), prefix, out);
    }
  }
  if (addresses == 0) out.push_back(prefix + "no-address");
  if (field == "to" || field == "cc") {
    std::size_t bucket = 1;
    while (bucket < addresses) bucket *= 2;
    out.push_back(prefix + "count:" + std::to_string(addresses == 0 ? 0 : bucket));
  }
}

// "from mail.example.com (mail.example.com [192.0.2.1]) by mx.example.net": host names and
// the client address's /24.
void tokenize_received(std::string_view value, std::vector<std::string>& out) {
  for (std::string_view word : split_any(value, " \t\r\n()[];")) {
    word = trim_punct(word);
    if (word.find('.') == std::string_view::npos || word.find('@') != std::string_view::npos)
      continue;
    const bool ipv4 = word.find_first_not_of("0123456789.") == std::string_view::npos;
    if (ipv4) {
      const std::size_t last_dot = word.rfind('.');
      out.push_back("received:ip:" + std::string(word.substr(0, last_dot)));
      continue;
    }
    const std::vector<std::string_view> labels = split_any(word, ".");
    if (labels.size() < 2) continue;
    // the registrable-ish part and the full name
    out.push_back("received:" + ascii_lower(word));
    out.push_back("received:" + ascii_lower(labels[labels.size() - 2]) + "." +
                  ascii_lower(labels.back()));
  }
}

bool istarts_with_mailto(std::string_view s) {
  return ascii_lower(s.substr(0, std::min<std::size_t>(s.size(), 7))) == "mailto:";
}

bool ignored_field(std::string_view lower_name) {
  return lower_name.starts_with("x-spam-") || lower_name.starts_with("x-mailgate-") ||
         lower_name.starts_with("x-bayes");
}

void tokenize_headers(const Message& message, std::vector<std::string>& out) {
  std::set<std::string> present;  // field names, for the missing-field tokens
  for (const HeaderField& field : message.headers) {
    const std::string name = ascii_lower(field.name);
    if (ignored_field(name) || name.empty() || name.size() > 40) continue;
    present.insert(name);
    const std::string value = decode_header_value(field.value);
    if (name == "subject") {
      for (std::string_view word : split_any(value, " \t")) {
        const std::string_view w = trim_punct(word);
        add_word(w, "subject:", out);
        if (looks_like_url(w)) add_url(w, out);
      }
      // runs of ! and $ say something about a subject
      std::string run;
      for (const char c : value + " ") {
        if (c == '!' || c == '$') {
          run += c;
        } else if (!run.empty()) {
          out.push_back("subject:" + run.substr(0, 4));
          run.clear();
        }
      }
      if (value.empty()) out.push_back("subject:empty");
    } else if (name == "from" || name == "to" || name == "cc" || name == "reply-to" ||
               name == "sender") {
      tokenize_address_field(name, value, out);
    } else if (name == "received") {
      tokenize_received(value, out);
    } else if (name == "message-id") {
      const std::size_t at = value.rfind('@');
      const std::size_t gt = value.rfind('>');
      if (at == std::string::npos || gt == std::string::npos || gt < at) {
        out.push_back("message-id:invalid");
      } else {
        out.push_back("message-id:@" + ascii_lower(value.substr(at + 1, gt - at - 1)));
      }
    } else if (name == "x-mailer" || name == "user-agent") {
      out.push_back(name + ":" + ascii_lower(value.substr(0, 40)));
    } else if (name == "return-path") {
      const std::size_t at = value.rfind('@');
      if (at == std::string::npos) {
        out.push_back("return-path:none");
      } else {
        std::string domain = ascii_lower(value.substr(at + 1));
        while (!domain.empty() && (domain.back() == '>' || domain.back() == ' ')) domain.pop_back();
        out.push_back("return-path:" + domain);
      }
    }
  }
  if (present.count("message-id") == 0) out.push_back("message-id:missing");
  if (present.count("date") == 0) out.push_back("date:missing");
}

}  // namespace

void tokenize_text(std::string_view text, std::vector<std::string>& out) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && is_space(text[pos])) ++pos;
    std::size_t end = pos;
    while (end < text.size() && !is_space(text[end])) ++end;
    const std::string_view raw = text.substr(pos, end - pos);
    pos = end;
    if (raw.empty()) continue;
    const std::string_view word = trim_punct(raw);
    if (word.empty()) continue;
    if (looks_like_url(word)) {
      add_url(word, out);
      continue;
    }
    const std::size_t at = word.find('@');
    if (at != std::string_view::npos && at > 0 && word.find('.', at) != std::string_view::npos) {
      std::string_view address = word;
      if (istarts_with_mailto(address)) address.remove_prefix(7);
      add_address(address, "email ", out);
      continue;
    }
    add_word(word, "", out);
  }
}

std::vector<std::string> tokenize(const Message& message, std::size_t max_text_bytes) {
  std::vector<std::string> out;
  tokenize_headers(message, out);
  const MimeScan scan = scan_mime(message, max_text_bytes);
  for (const std::string& s : scan.structure) out.push_back(s);
  for (const TextPart& part : scan.texts) {
    tokenize_text(part.text, out);
    std::size_t high = 0, upper = 0, letters = 0;
    for (const char c : part.text) {
      if (static_cast<unsigned char>(c) >= 128) ++high;
      if (c >= 'A' && c <= 'Z') ++upper;
      if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) ++letters;
    }
    if (!part.text.empty() && high > 0)
      out.push_back("8bit%:" + std::to_string(high * 100 / part.text.size() / 10 * 10));
    if (letters >= 20) out.push_back("caps%:" + std::to_string(upper * 100 / letters / 10 * 10));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace mailgate::bayes
