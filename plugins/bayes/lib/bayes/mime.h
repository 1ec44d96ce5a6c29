// plugins/bayes/lib/bayes/mime.h — the message as the Bayes tokenizer sees it: header fields
// and the decoded text of its MIME parts.
//
// Owns: splitting a raw RFC 5322 message (CRLF or LF, an mbox "From " line first is skipped)
// into header fields and body; walking the MIME tree (multipart/*, message/rfc822, nested up
// to kMaxDepth) and decoding text/plain and text/html parts from base64 or quoted-printable
// (HTML reduced to its text, with the URLs of href/src kept); RFC 2047 encoded words in header
// values. Bytes stay bytes: no charset conversion (tokens are compared as bytes).
// Must not: allocate without bound — every decoder works on at most the bytes it is given, and
// scan_mime() stops after max_bytes of decoded text and kMaxParts parts.
// Threading: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::bayes {

struct HeaderField {
  std::string name;   // as written
  std::string value;  // folding kept as received (CRLF or LF + white space)
};

struct Message {
  std::vector<HeaderField> headers;
  std::string body;  // after the blank line
};

// Splits a raw message. A message without a blank line is all header.
Message parse_message(std::string_view raw);

// One decoded text part.
struct TextPart {
  std::string text;  // decoded; for HTML the text without tags, then the tag URLs
  bool html = false;
};

// What the MIME walk found: the text parts, and tokens describing the structure
// ("content-type:image/gif", "cte:base64", "charset:koi8-r", "filename:.exe").
struct MimeScan {
  std::vector<TextPart> texts;
  std::vector<std::string> structure;
};

inline constexpr int kMaxDepth = 8;
inline constexpr std::size_t kMaxParts = 64;

// Walks the body under the message's own Content-Type and Content-Transfer-Encoding.
MimeScan scan_mime(const Message& message, std::size_t max_bytes);

// Content-Type value: lower-case "type/subtype" ("text/plain" when empty or malformed) and the
// parameters (names lower-cased, quoted values unquoted).
struct ContentType {
  std::string type;
  std::vector<std::pair<std::string, std::string>> params;
  std::string param(std::string_view name) const;
};
ContentType parse_content_type(std::string_view value);

// Decoders. Invalid input is skipped, never an error.
std::string decode_base64(std::string_view in);
std::string decode_quoted_printable(std::string_view in);
// Header value: folding removed, RFC 2047 encoded words (B and Q) decoded to their bytes.
std::string decode_header_value(std::string_view value);
// HTML to text: tags removed (script/style content too), common entities decoded, the URLs of
// href= and src= attributes appended on lines of their own.
std::string html_to_text(std::string_view html);

// ASCII lower-case.
std::string ascii_lower(std::string_view s);

}  // namespace mailgate::bayes
