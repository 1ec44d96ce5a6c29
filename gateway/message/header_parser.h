// message/header_parser.h — splits a message (canonical CRLF form) into its header fields
// and the offset where its body starts (RFC 5322 §2.2, §3.5).
// Owns: header syntax: field names (printable ASCII but ':'), folded continuation lines,
// where the header section ends (the empty line, or the first line that is neither a field
// nor a continuation: that line starts the body, as Postfix's cleanup treats it).
// Must not touch: spooling, MIME structure (a MIME library does that), header edits.
// Thread-safety: a parser is one message's; not shared.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chain/tx_context.h"

namespace mailgate::message {

class HeaderParser {
 public:
  // Bounds against hostile input: fields beyond these are still consumed but not recorded
  // (truncated() reports it).
  static constexpr size_t kMaxFields = 1000;
  static constexpr size_t kMaxFieldBytes = 64 * 1024;

  // Feeds message bytes from the start, in any chunking. Returns the bytes of `data` that
  // belong to the header section (including the empty separator line); once done(), it
  // consumes nothing more.
  size_t feed(std::string_view data);
  // Call at the end of the message: a header section without a separator ends here.
  void finish();

  bool done() const { return done_; }
  uint64_t body_offset() const { return offset_; }  // valid once done()
  bool truncated() const { return truncated_; }
  bool separator() const { return separator_; }  // the empty line was seen (and consumed)
  std::vector<chain::HeaderField>& fields() { return fields_; }

 private:
  void end_line(std::string_view line);  // one physical line with its CRLF
  void flush_field();

  std::vector<chain::HeaderField> fields_;
  std::string current_;  // raw text of the field being collected
  std::string line_;     // partial physical line across feeds
  uint64_t offset_ = 0;  // bytes consumed in the header section
  bool done_ = false;
  bool truncated_ = false;
  bool separator_ = false;
};

// Splits a raw field ("Name: value\r\n\tmore\r\n") into name and value (milter convention:
// one leading space removed, no final CRLF). Returns false when it has no valid name.
bool split_field(std::string_view raw, std::string* name, std::string* value);

}  // namespace mailgate::message
