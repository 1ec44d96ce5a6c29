// header_parser_fuzz.cc — the message header parser on arbitrary bytes made CRLF-canonical
// as the DATA decoder delivers them. Properties: no crash; the same fields, body offset and flags whatever the chunking
// (whole, split where the input says, one byte at a time); every recorded field re-splits to
// the same name and value; and every field's raw text — what is relayed when plugins edit the
// header — is one field and nothing more: it ends with CRLF and every CRLF inside it is
// followed by white space (a continuation), so no edit can make the gateway relay a header
// field the client did not send as one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "message/header_parser.h"

namespace {

using mailgate::message::HeaderParser;

struct Outcome {
  std::vector<std::string> raws;
  uint64_t body_offset;
  bool done, truncated, separator;
  bool operator==(const Outcome&) const = default;
};

Outcome run(std::string_view input, const std::vector<size_t>& cuts) {
  HeaderParser parser;
  size_t start = 0;
  for (size_t cut : cuts) {
    if (cut <= start || cut > input.size()) continue;
    const size_t n = parser.feed(input.substr(start, cut - start));
    FUZZ_CHECK(n <= cut - start);
    start += n;
    if (parser.done()) break;
    FUZZ_CHECK(start == cut);  // before the end of the header, everything is taken
  }
  if (!parser.done() && start < input.size()) start += parser.feed(input.substr(start));
  if (!parser.done()) parser.finish();
  Outcome o{{}, parser.done() ? parser.body_offset() : 0, parser.done(), parser.truncated(),
            parser.separator()};
  for (const auto& f : parser.fields()) {
    o.raws.push_back(f.raw);
    std::string name;
    std::string value;
    FUZZ_CHECK(mailgate::message::split_field(f.raw, &name, &value));
    FUZZ_CHECK(name == f.name && value == f.value);
    const std::string& raw = f.raw;
    FUZZ_CHECK(raw.size() >= 2 && raw.compare(raw.size() - 2, 2, "\r\n") == 0);
    for (size_t i = raw.find("\r\n"); i + 2 < raw.size(); i = raw.find("\r\n", i + 2))
      FUZZ_CHECK(raw[i + 2] == ' ' || raw[i + 2] == '\t');
  }
  FUZZ_CHECK(o.body_offset <= input.size());
  return o;
}

// What the parser is fed in the gateway: the DATA decoder's output, where every line ends with
// CRLF (bare CR and LF are refused or normalized) and the message ends with one.
std::string canonical(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') {
      out += "\r\n";
      ++i;
    } else if (c == '\r' || c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string canonical_input =
      canonical(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  const std::string_view input(canonical_input);
  const Outcome whole = run(input, {input.size()});
  FUZZ_CHECK(run(input, {data[0] % (input.size() + 1), input.size()}) == whole);
  if (input.size() <= 4096) {
    std::vector<size_t> every;
    for (size_t i = 1; i <= input.size(); ++i) every.push_back(i);
    FUZZ_CHECK(run(input, every) == whole);
  }
  return 0;
}
