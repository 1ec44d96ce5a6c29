// plugins/bayes/lib/bayes/tokenizer.h — a message's tokens, the features the classifier counts.
//
// Owns: which features are taken and how they are spelled (the stored counts depend on it:
// changing a spelling makes old counts useless for it, so kTokenizerVersion goes up):
//   body words   lower-cased words of 3..12 bytes from the decoded text parts, punctuation
//                trimmed; longer words as "skip:<first byte> <length rounded to 10>"
//   URLs         "proto:http", "url:<each label of the host>", "url-path:<pieces>"
//   addresses    in text: "email name:<local part>", "email addr:<each domain label>"
//   structure    "content-type:...", "charset:...", "cte:...", "filename:.ext" per MIME part
//   headers      "subject:<word>" (and runs of !$ in it), "from:"/"to:"/"cc:"/"reply-to:"
//                name words, local parts and domains, "received:<host labels>" and
//                "received:ip:<a.b.c>", "message-id:@<domain>", "x-mailer:<value>",
//                "return-path:<domain>", "message-id:missing", "date:missing" (a count of
//                each field name was tried and dropped: it cost recall on the benchmark)
//   8-bit        "8bit%:<percent of bytes above 127, rounded to 10>" per text part
//   capitals     "caps%:<percent of letters in upper case, rounded to 10>" per text part
// Fields the gateway's own scorers write (X-Spam-*, X-Mailgate-*, X-Bayes-*) are ignored, so
// a learned verdict never teaches itself.
// Each token appears once per message (the classifier counts messages, not occurrences).
// Threading: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "bayes/mime.h"

namespace mailgate::bayes {

inline constexpr int kTokenizerVersion = 2;
// Decoded body text looked at, by default.
inline constexpr std::size_t kDefaultMaxTextBytes = 256 * 1024;

// The distinct tokens of `message`, sorted.
std::vector<std::string> tokenize(const Message& message,
                                  std::size_t max_text_bytes = kDefaultMaxTextBytes);

// The tokens of one piece of text (body text), appended to `out` (not de-duplicated).
void tokenize_text(std::string_view text, std::vector<std::string>& out);

}  // namespace mailgate::bayes
