// reply_parser_fuzz.cc — the backend reply reader (relay/smtp_client_codec.h) on arbitrary
// bytes: what a broken or hostile backend may send. Properties: no crash; it never consumes
// more than it was given; a complete reply has a code in 200..599 with at most the configured
// number of lines, none holding CR or LF (they are passed through to the client); and the
// outcome does not depend on how the bytes were split (after an error, only that it is one).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "relay/smtp_client_codec.h"

namespace {

using mailgate::relay::ReplyParser;

struct Outcome {
  ReplyParser::Status status;
  size_t consumed;
  int code;
  std::vector<std::string> lines;
  bool operator==(const Outcome&) const = default;
};

// Feeds like the relay does: a buffer that grows by pieces, parsed from its unconsumed front.
Outcome run(std::string_view input, size_t piece) {
  ReplyParser parser;
  std::string buffer;
  size_t fed = 0;
  size_t consumed_total = 0;
  for (;;) {
    const size_t n = std::min(piece, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    size_t consumed = 0;
    const ReplyParser::Status st = parser.parse(buffer, &consumed);
    FUZZ_CHECK(consumed <= buffer.size());
    buffer.erase(0, consumed);
    consumed_total += consumed;
    if (st != ReplyParser::Status::kNeedMore || fed == input.size())
      return Outcome{st, consumed_total, parser.reply().code,
                     st == ReplyParser::Status::kComplete ? parser.reply().lines
                                                          : std::vector<std::string>{}};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Outcome whole = run(input, input.size() + 1);
  if (whole.status == ReplyParser::Status::kComplete) {
    FUZZ_CHECK(whole.code >= 200 && whole.code <= 599);
    FUZZ_CHECK(!whole.lines.empty() && whole.lines.size() <= mailgate::relay::ReplyLimits{}.max_lines);
    for (const auto& l : whole.lines)
      for (char c : l) FUZZ_CHECK(c != '\r' && c != '\n');
  }
  // After an error the connection is dropped: only the verdict must not depend on chunking.
  for (size_t piece : {size_t{1}, size_t{7}}) {
    const Outcome split = run(input, piece);
    if (whole.status == ReplyParser::Status::kError)
      FUZZ_CHECK(split.status == ReplyParser::Status::kError);
    else
      FUZZ_CHECK(split == whole);
  }
  return 0;
}
