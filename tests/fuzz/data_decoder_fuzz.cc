// data_decoder_fuzz.cc — the DATA stream decoder (dot-unstuffing, line endings, end of data)
// on arbitrary bytes, in both bare-EOL modes. Properties: no crash; the decoder consumes no
// more than it was given and, once done, nothing past the end-of-data line; and the result is
// the same whatever the chunking (the whole stream at once, split at a point the input picks,
// and one byte at a time): same bytes consumed, same decoded output, same flags. A decoder that
// read the stream differently depending on TCP segmentation would be an SMTP smuggling hole.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "smtp/data_decoder.h"

namespace {

using mailgate::smtp::BareEolPolicy;
using mailgate::smtp::DataDecoder;

struct StringSink final : mailgate::smtp::DataSink {
  std::string out;
  bool write(std::string_view bytes) override {
    out.append(bytes);
    return true;
  }
};

struct Outcome {
  size_t consumed = 0;
  std::string output;
  bool done, bare_eol, too_long, size_exceeded, has_8bit, has_nul;
  uint64_t size;
  bool operator==(const Outcome&) const = default;
};

// Feeds `input` in pieces ending at each of `cuts` (then the rest), as a session would: each
// call gets what is left of the current piece after the previous call's consumption.
template <typename Cuts>
Outcome run(DataDecoder::Options options, std::string_view input, const Cuts& cuts) {
  DataDecoder decoder(options);
  decoder.reset();
  StringSink sink;
  size_t pos = 0;
  size_t start = 0;
  auto feed_to = [&](size_t end) {
    while (start < end && !decoder.done()) {
      const size_t n = decoder.feed(input.substr(start, end - start), sink);
      FUZZ_CHECK(n <= end - start);
      if (n == 0) break;
      start += n;
    }
  };
  for (size_t cut : cuts) {
    if (cut <= pos || cut > input.size()) continue;
    feed_to(cut);
    pos = cut;
  }
  feed_to(input.size());
  return Outcome{start,
                 std::move(sink.out),
                 decoder.done(),
                 decoder.bare_eol_seen(),
                 decoder.line_too_long(),
                 decoder.size_exceeded(),
                 decoder.has_8bit(),
                 decoder.has_nul(),
                 decoder.size()};
}

// The cuts 1, 2, ..., n: one byte at a time.
struct Every {
  size_t n;
  struct It {
    size_t i;
    size_t operator*() const { return i; }
    It& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const It& o) const { return i != o.i; }
  };
  It begin() const { return {1}; }
  It end() const { return {n + 1}; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first octet picks the options, the second a split point; the rest is the stream.
  const uint8_t knobs = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  DataDecoder::Options options;
  options.bare_eol = (knobs & 1) != 0 ? BareEolPolicy::kNormalize : BareEolPolicy::kReject;
  options.max_line_length = (knobs & 2) != 0 ? 1000 : 16;
  options.max_message_size = (knobs & 4) != 0 ? 0 : 64;

  const size_t none[1] = {0};
  const Outcome whole = run(options, input, none);
  FUZZ_CHECK(whole.consumed <= input.size());
  if (!whole.done) FUZZ_CHECK(whole.consumed == input.size());
  const size_t split[1] = {input.empty() ? 0 : data[1] % (input.size() + 1)};
  FUZZ_CHECK(run(options, input, split) == whole);
  if (input.size() <= 4096) FUZZ_CHECK(run(options, input, Every{input.size()}) == whole);
  return 0;
}
