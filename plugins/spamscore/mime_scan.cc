// plugins/spamscore/mime_scan.cc — see mime_scan.h.
#include "mime_scan.h"

#include <dlfcn.h>

#include <mutex>

#include <mailgate/plugin.hpp>

#include "gmime_ptr.h"
#include "html_text.h"
#include "url_extract.h"

namespace mailgate::spamscore {

void gmime_ready() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The gateway unloads a plugin when a new policy replaces the chain and loads it again.
    // GMime registers its GObject types once per process (in libgobject, never unloaded) but
    // counts its own initialisation in libgmime: unloaded and reloaded, it would register them
    // again and fail. So libgmime stays loaded for the life of the process.
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&g_mime_init), &info) != 0 && info.dli_fname != nullptr)
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);  // a pin, never closed
    g_mime_init();
  });
}

namespace {

// Occurrences of "multipart/" or "message/" after "content-type:" in the raw bytes: an upper
// bound on the containers GMime would recurse into.
std::size_t container_headers(std::string_view raw) {
  std::size_t count = 0;
  static constexpr std::string_view kNeedle = "content-type:";
  for (std::size_t i = 0; i + kNeedle.size() < raw.size(); ++i) {
    if ((raw[i] | 0x20) != 'c') continue;
    bool match = true;  // ASCII case-insensitive ('-' and ':' are unchanged by | 0x20)
    for (std::size_t k = 0; k < kNeedle.size() && match; ++k)
      match = static_cast<char>(raw[i + k] | 0x20) == kNeedle[k];
    if (!match) continue;
    std::size_t j = i + kNeedle.size();
    while (j < raw.size() && (raw[j] == ' ' || raw[j] == '\t' || raw[j] == '\r' || raw[j] == '\n'))
      ++j;
    const std::string_view rest = raw.substr(j, 10);
    std::string lowered(rest);
    for (char& c : lowered) c = static_cast<char>(c | 0x20);
    if (lowered.starts_with("multipart/") || lowered.starts_with("message/")) ++count;
    i = j;
  }
  return count;
}

// The part's content with the transfer encoding undone and converted to UTF-8 from its charset
// (left as is when the charset is unknown to iconv).
std::string decoded_text(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);  // owned by the part
  if (content == nullptr) return {};
  GObjectPtr<GMimeStream> memory(g_mime_stream_mem_new());
  GObjectPtr<GMimeStream> filtered(g_mime_stream_filter_new(memory.get()));
  const char* charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
  if (charset != nullptr && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
      g_ascii_strcasecmp(charset, "us-ascii") != 0) {
    GObjectPtr<GMimeFilter> convert(g_mime_filter_charset_new(charset, "utf-8"));
    if (convert) g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), convert.get());
  }
  g_mime_data_wrapper_write_to_stream(content, filtered.get());
  g_mime_stream_flush(filtered.get());
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(memory.get()));
  if (bytes == nullptr || bytes->len == 0) return {};
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

// One text of the message, with its URLs (within `max_urls`).
void add_text(std::string text, std::size_t max_urls, ScannedMessage* out) {
  if (!extract_urls(text, max_urls, &out->urls)) out->too_many_urls = true;
  out->texts.push_back(std::move(text));
}

class Walker {
 public:
  Walker(const ScanLimits& limits, ScannedMessage* out) : limits_(limits), out_(out) {}

  void walk(GMimeObject* object, std::size_t depth) {
    if (object == nullptr) return;
    if (depth > limits_.max_depth) {
      out_->too_deep = true;
      return;
    }
    if (GMIME_IS_MULTIPART(object)) {
      GMimeMultipart* multipart = GMIME_MULTIPART(object);
      const int count = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < count; ++i) walk(g_mime_multipart_get_part(multipart, i), depth + 1);
      return;
    }
    if (GMIME_IS_MESSAGE_PART(object)) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
      if (inner != nullptr) walk(g_mime_message_get_mime_part(inner), depth + 1);
      return;
    }
    if (!GMIME_IS_PART(object)) return;
    GMimeContentType* type = g_mime_object_get_content_type(object);
    const bool plain = type == nullptr || g_mime_content_type_is_type(type, "text", "plain");
    const bool html = type != nullptr && g_mime_content_type_is_type(type, "text", "html");
    if (!plain && !html) return;
    if (out_->texts.size() >= limits_.max_parts) {
      out_->too_many_parts = true;
      return;
    }
    std::string text = decoded_text(GMIME_PART(object));
    if (html) {
      HtmlText converted = html_to_text(text);
      for (const std::string& href : converted.hrefs)
        if (!add_url(href, limits_.max_urls, &out_->urls)) out_->too_many_urls = true;
      text = std::move(converted.text);
    }
    add_text(std::move(text), limits_.max_urls, out_);
  }

 private:
  const ScanLimits& limits_;
  ScannedMessage* out_;
};

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<ScannedMessage> scan_unstructured(std::string_view message,
                                                const ScanLimits& limits) {
  std::optional<std::string_view> subject;
  bool in_subject = false;  // the last field seen is the Subject
  std::size_t pos = 0;
  for (;;) {
    const std::size_t lf = message.find('\n', pos);
    if (lf == std::string_view::npos) return std::nullopt;  // no end of the header block
    std::string_view line = message.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = lf + 1;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      if (in_subject) return std::nullopt;  // a folded Subject
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    const std::string_view name = line.substr(0, colon);
    for (char c : name)
      if (c <= ' ' || c > '~') return std::nullopt;
    if (mailgate::equal_ignore_case(name, "content-type") || mailgate::equal_ignore_case(name, "content-transfer-encoding"))
      return std::nullopt;
    in_subject = mailgate::equal_ignore_case(name, "subject");
    if (!in_subject) continue;
    if (subject) return std::nullopt;  // two of them
    const std::string_view value = trim_blanks(line.substr(colon + 1));
    for (char c : value)
      if (c < ' ' || c > '~') return std::nullopt;
    if (value.find("=?") != std::string_view::npos) return std::nullopt;
    subject = value;
  }
  ScannedMessage out;
  out.parsed = true;
  if (subject) out.subject = std::string(*subject);
  add_text(std::string(message.substr(pos)), limits.max_urls, &out);
  return out;
}

ScannedMessage scan_message(std::string_view message, const ScanLimits& limits) {
  if (std::optional<ScannedMessage> plain = scan_unstructured(message, limits))
    return std::move(*plain);
  return scan_with_gmime(message, limits);
}

ScannedMessage scan_with_gmime(std::string_view message, const ScanLimits& limits) {
  ScannedMessage out;
  if (container_headers(message) > limits.max_parts) {
    out.too_complex = true;
    return out;
  }
  gmime_ready();
  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(message.data(), message.size()));
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GObjectPtr<GMimeMessage> parsed(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!parsed) return out;
  out.parsed = true;
  if (const char* subject = g_mime_message_get_subject(parsed.get())) out.subject = subject;
  Walker(limits, &out).walk(g_mime_message_get_mime_part(parsed.get()), 0);
  return out;
}

}  // namespace mailgate::spamscore
