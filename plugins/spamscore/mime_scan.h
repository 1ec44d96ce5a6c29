// plugins/spamscore/mime_scan.h — the content the spamscore rules look at, from the message's
// bytes parsed with GMime: the decoded Subject, the decoded text of every text/plain and
// text/html part (transfer encoding undone, charset converted to UTF-8, HTML tags stripped),
// and the URLs in that text and in the HTML links.
// Owns: walking the MIME tree within bounds — at most `max_depth` levels of nesting (multipart
// and message/rfc822 both count), at most `max_parts` leaf parts, at most `max_urls` URLs — and
// saying when a bound cut the walk short. The byte bound is the caller's (it reads at most that
// much of the body). A message with more multipart/message headers than the part bound allows
// is not handed to GMime at all (its parser recurses once per level), only scanned raw.
// A message without MIME structure (no Content-Type or Content-Transfer-Encoding field, so
// RFC 2045's text/plain, us-ascii, 7bit) and with a plain Subject is not handed to GMime
// either: its body is its one text as is, which is what GMime makes of it (the unit test
// compares both).
// Threading: pure function of its input; any thread (GMime is initialised once, gmime_ptr.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::spamscore {

struct ScanLimits {
  std::size_t max_depth = 8;
  std::size_t max_parts = 100;
  std::size_t max_urls = 100;
};

struct ScannedMessage {
  bool parsed = false;             // GMime made a message of it
  bool too_complex = false;        // more multipart/message headers than max_parts: not parsed
  bool too_deep = false;           // a part nested deeper than max_depth was skipped
  bool too_many_parts = false;     // leaf parts after the max_parts-th were skipped
  bool too_many_urls = false;      // URLs after the max_urls-th were dropped
  std::string subject;             // decoded (RFC 2047) UTF-8; empty without a Subject
  std::vector<std::string> texts;  // one per text/plain or text/html part, UTF-8
  std::vector<std::string> urls;   // distinct, in order of appearance
};

// `message` is the whole message as it will be relayed: header fields, empty line, body (or
// the first bytes of the body).
ScannedMessage scan_message(std::string_view message, const ScanLimits& limits);

// The two ways scan_message() takes. scan_unstructured() answers only for a message without
// MIME structure, with a Subject that is absent or one unfolded line of printable ASCII
// without encoded words, and well-formed header fields; nullopt otherwise. scan_with_gmime()
// parses any message.
std::optional<ScannedMessage> scan_unstructured(std::string_view message, const ScanLimits& limits);
ScannedMessage scan_with_gmime(std::string_view message, const ScanLimits& limits);

}  // namespace mailgate::spamscore
