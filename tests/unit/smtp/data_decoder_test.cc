// tests/unit/smtp/data_decoder_test.cc — tests gateway/smtp/data_decoder.cc: end-of-data
// detection, dot-unstuffing, SMTP smuggling sequences (CVE-2023-51764) in both bare-EOL
// modes, split invariance, limits, flags and a failing sink. A slow line-based reference
// decoder, written independently of the state machine, checks random streams.
#include "smtp/data_decoder.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::smtp {
namespace {

using namespace std::string_literals;

class StringSink : public DataSink {
 public:
  bool write(std::string_view bytes) override {
    data.append(bytes);
    ++writes;
    return true;
  }
  std::string data;
  size_t writes = 0;
};

// Accepts `capacity` octets in whole writes, then refuses everything.
class FailingSink : public DataSink {
 public:
  explicit FailingSink(size_t capacity) : capacity_(capacity) {}
  bool write(std::string_view bytes) override {
    ++writes;
    if (failed) {
      ++writes_after_failure;
      return false;
    }
    if (data.size() + bytes.size() > capacity_) {
      failed = true;
      return false;
    }
    data.append(bytes);
    return true;
  }
  std::string data;
  size_t writes = 0;
  size_t writes_after_failure = 0;
  bool failed = false;

 private:
  size_t capacity_;
};

// Everything the decoder reports for one stream.
struct Outcome {
  std::string output;
  size_t consumed = 0;
  bool done = false;
  uint64_t size = 0;
  bool bare_eol = false;
  bool line_too_long = false;
  bool size_exceeded = false;
  bool has_8bit = false;
  bool has_nul = false;
  bool sink_failed = false;

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  std::string shown;
  for (char c : o.output) {
    if (c == '\r')
      shown += "\\r";
    else if (c == '\n')
      shown += "\\n";
    else if (c == '\0')
      shown += "\\0";
    else
      shown.push_back(c);
  }
  return os << "{output=\"" << shown << "\" consumed=" << o.consumed << " done=" << o.done
            << " size=" << o.size << " bare=" << o.bare_eol << " long=" << o.line_too_long
            << " exceeded=" << o.size_exceeded << " 8bit=" << o.has_8bit << " nul=" << o.has_nul
            << " sink_failed=" << o.sink_failed << "}";
}

Outcome finish(const DataDecoder& d, std::string output, size_t consumed) {
  Outcome o;
  o.output = std::move(output);
  o.consumed = consumed;
  o.done = d.done();
  o.size = d.size();
  o.bare_eol = d.bare_eol_seen();
  o.line_too_long = d.line_too_long();
  o.size_exceeded = d.size_exceeded();
  o.has_8bit = d.has_8bit();
  o.has_nul = d.has_nul();
  o.sink_failed = d.sink_failed();
  return o;
}

DataDecoder::Options options(BareEolPolicy policy = BareEolPolicy::kReject, size_t max_line = 1000,
                             uint64_t max_size = 0) {
  DataDecoder::Options o;
  o.bare_eol = policy;
  o.max_line_length = max_line;
  o.max_message_size = max_size;
  return o;
}

// Feeds `input` in pieces of the given sizes (cycled), the way a session would: stop at done.
Outcome decode_in_chunks(std::string_view input, DataDecoder::Options opts,
                         const std::vector<size_t>& sizes) {
  DataDecoder d(opts);
  d.reset();
  StringSink sink;
  size_t pos = 0;
  size_t k = 0;
  while (pos < input.size() && !d.done()) {
    size_t len = std::min(sizes[k++ % sizes.size()], input.size() - pos);
    size_t used = d.feed(input.substr(pos, len), sink);
    EXPECT_LE(used, len);
    pos += used;
    if (used < len) {
      EXPECT_TRUE(d.done()) << "a chunk was left unconsumed before the end of data";
      break;
    }
  }
  return finish(d, sink.data, pos);
}

Outcome decode(std::string_view input, DataDecoder::Options opts = options()) {
  return decode_in_chunks(input, opts, {input.size() + 1});
}

// The line-based reference: splits the stream into lines at CR LF, bare CR and bare LF and
// applies RFC 5321 §4.5.2 to each. Written without the decoder's state machine.
Outcome reference_decode(std::string_view in, DataDecoder::Options opts) {
  Outcome o;
  bool previous_crlf = true;  // DATA's own CR LF
  size_t i = 0;
  size_t run_start = 0;
  auto line_end = [&](size_t content_octets) {
    if (opts.max_line_length != 0 && content_octets + 2 > opts.max_line_length)
      o.line_too_long = true;
  };
  while (true) {
    // Find the next terminator: CR LF, CR followed by something else, or LF.
    size_t j = i;
    while (j < in.size() && in[j] != '\r' && in[j] != '\n') ++j;
    if (j == in.size()) break;                       // unterminated: stop here
    if (in[j] == '\r' && j + 1 == in.size()) break;  // CR whose follower is unknown
    bool crlf = in[j] == '\r' && in[j + 1] == '\n';
    size_t next = j + (crlf ? 2 : 1);
    std::string_view content = in.substr(i, j - i);
    if (content == "." && crlf && previous_crlf) {
      o.done = true;
      o.consumed = next;
      break;
    }
    line_end(content.size());
    std::string_view kept = content;
    if (content.size() > 1 && content[0] == '.') kept.remove_prefix(1);
    o.output.append(kept);
    o.output.append("\r\n");
    for (char c : kept) {
      if (static_cast<unsigned char>(c) >= 0x80) o.has_8bit = true;
      if (c == '\0') o.has_nul = true;
    }
    if (!crlf) o.bare_eol = true;
    previous_crlf = crlf;
    i = next;
    run_start = i;
  }
  (void)run_start;
  o.size = o.output.size();
  if (opts.max_message_size != 0 && o.size > opts.max_message_size) {
    o.size_exceeded = true;
    o.output.resize(opts.max_message_size);
  }
  return o;
}

const std::vector<BareEolPolicy> kBothPolicies = {BareEolPolicy::kReject,
                                                  BareEolPolicy::kNormalize};

// ---------------------------------------------------------------------------------------------
// Basics

TEST(DataDecoder, SimpleMessage) {
  Outcome o = decode("Subject: hi\r\n\r\nbody\r\n.\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.output, "Subject: hi\r\n\r\nbody\r\n");
  EXPECT_EQ(o.consumed, 24u);
  EXPECT_EQ(o.size, o.output.size());
  EXPECT_FALSE(o.bare_eol);
  EXPECT_FALSE(o.line_too_long);
  EXPECT_FALSE(o.size_exceeded);
  EXPECT_FALSE(o.has_8bit);
  EXPECT_FALSE(o.has_nul);
  EXPECT_FALSE(o.sink_failed);
}

TEST(DataDecoder, EmptyMessage) {
  // DATA's CR LF is the first CR LF, so "." CR LF right away ends an empty message.
  Outcome o = decode(".\r\nQUIT\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.output, "");
  EXPECT_EQ(o.consumed, 3u);
  EXPECT_EQ(o.size, 0u);
  // One empty line.
  o = decode("\r\n.\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.output, "\r\n");
}

TEST(DataDecoder, StopsRightAfterTheEndAndLeavesTheRest) {
  const std::string input = "line\r\n.\r\nMAIL FROM:<a@b.example>\r\n";
  Outcome o = decode(input);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.consumed, 9u);
  EXPECT_EQ(input.substr(o.consumed), "MAIL FROM:<a@b.example>\r\n");
  EXPECT_EQ(o.output, "line\r\n");
}

TEST(DataDecoder, NotDoneWithoutTheEnd) {
  for (const std::string& partial :
       {"line\r\n"s, "line\r\n."s, "line\r\n.\r"s, "line"s, "line\r"s, ""s, "."s, ".\r"s}) {
    Outcome o = decode(partial);
    EXPECT_FALSE(o.done) << partial;
    EXPECT_EQ(o.consumed, partial.size()) << partial;
  }
}

TEST(DataDecoder, EndSplitAcrossCalls) {
  DataDecoder d(options());
  StringSink sink;
  EXPECT_EQ(d.feed("a\r\n.\r", sink), 5u);
  EXPECT_FALSE(d.done());
  EXPECT_EQ(d.feed("\nNEXT", sink), 1u);
  EXPECT_TRUE(d.done());
  EXPECT_EQ(sink.data, "a\r\n");
  EXPECT_EQ(d.feed("more", sink), 0u);  // after the end nothing more is taken
}

TEST(DataDecoder, DotUnstuffing) {
  EXPECT_EQ(decode("..\r\n.\r\n").output, ".\r\n");
  EXPECT_EQ(decode("...\r\n.\r\n").output, "..\r\n");
  EXPECT_EQ(decode(".x\r\n.\r\n").output, "x\r\n");
  EXPECT_EQ(decode("..x\r\n.\r\n").output, ".x\r\n");
  EXPECT_EQ(decode(". \r\n.\r\n").output, " \r\n");
  EXPECT_EQ(decode("a.b\r\n.a\r\n.\r\n").output, "a.b\r\na\r\n");
  EXPECT_EQ(decode("a\r\n..\r\n.\r\n").output, "a\r\n.\r\n");
  EXPECT_EQ(decode("a\r\n. .\r\n.\r\n").output, "a\r\n .\r\n");
  // Only a dot at a line start is special.
  EXPECT_EQ(decode("a.\r\n.\r\n").output, "a.\r\n");
}

TEST(DataDecoder, CanonicalInputIsWrittenInLargeRuns) {
  std::string input;
  for (int i = 0; i < 1000; ++i) input += "This is a line of the message body.\r\n";
  std::string expected = input;
  input += ".\r\n";
  DataDecoder d(options());
  StringSink sink;
  EXPECT_EQ(d.feed(input, sink), input.size());
  EXPECT_TRUE(d.done());
  EXPECT_EQ(sink.data, expected);
  EXPECT_EQ(sink.writes, 1u);
  // A stuffed dot costs one cut, not one write per byte or per line.
  sink = StringSink{};
  d.reset();
  std::string stuffed = expected + "..dot\r\n" + expected + ".\r\n";
  EXPECT_EQ(d.feed(stuffed, sink), stuffed.size());
  EXPECT_EQ(sink.data, expected + ".dot\r\n" + expected);
  EXPECT_EQ(sink.writes, 2u);
}

TEST(DataDecoder, BareLfLinesAreGatheredIntoFewWrites) {
  std::string input;
  for (int i = 0; i < 1000; ++i) input += "a line ended by a bare LF\n";
  input += "\r\n.\r\n";
  DataDecoder d(options(BareEolPolicy::kNormalize));
  StringSink sink;
  EXPECT_EQ(d.feed(input, sink), input.size());
  EXPECT_TRUE(d.done());
  EXPECT_EQ(sink.data.size(), 1000u * 27 + 2);
  EXPECT_LE(sink.writes, 3u);  // ~27 KB in pieces of at least 16 KB
}

// ---------------------------------------------------------------------------------------------
// Bare CR / bare LF and SMTP smuggling

TEST(DataDecoder, BareLineEndsAreNormalised) {
  for (BareEolPolicy policy : kBothPolicies) {
    Outcome o = decode("a\nb\rc\r\n.\r\n", options(policy));
    EXPECT_TRUE(o.done);
    EXPECT_TRUE(o.bare_eol);
    EXPECT_EQ(o.output, "a\r\nb\r\nc\r\n");
    // CR CR LF: the first CR is bare, then an empty CR LF line.
    o = decode("a\r\r\n.\r\n", options(policy));
    EXPECT_TRUE(o.done);
    EXPECT_TRUE(o.bare_eol);
    EXPECT_EQ(o.output, "a\r\n\r\n");
    // A bare CR right before the end: its line ends, the CR LF after it is an empty line.
    o = decode("a\r\r\n.\r\nX", options(policy));
    EXPECT_TRUE(o.done);
    EXPECT_EQ(o.consumed, 7u);
  }
}

TEST(DataDecoder, DotUnstuffingAfterBareLineEnds) {
  Outcome o = decode("a\n..b\r\n.\r\n", options(BareEolPolicy::kNormalize));
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.output, "a\r\n.b\r\n");
}

// Each smuggling sequence, followed by a smuggled transaction and the true end. The decoder
// must not stop at the sequence: the smuggled commands are message content, the end is the
// one true CR LF "." CR LF, and only what follows it is left unconsumed.
struct SmugglingCase {
  const char* name;
  const char* sequence;
};

void PrintTo(const SmugglingCase& c, std::ostream* os) { *os << c.name; }

class Smuggling : public testing::TestWithParam<std::tuple<SmugglingCase, BareEolPolicy>> {};

TEST_P(Smuggling, NeverEndsTheMessage) {
  const auto& [c, policy] = GetParam();
  const std::string smuggled =
      "MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<x@victim.example>\r\nDATA\r\n"
      "Subject: forged\r\n\r\nforged\r\n";
  const std::string input =
      "Subject: hi\r\n\r\nbody" + std::string(c.sequence) + smuggled + ".\r\n" + "QUIT\r\n";
  Outcome o = decode(input, options(policy));
  EXPECT_TRUE(o.done);
  EXPECT_TRUE(o.bare_eol);
  EXPECT_EQ(input.substr(o.consumed), "QUIT\r\n");
  // The "." of the sequence is content (a line "." the relay will stuff again).
  EXPECT_EQ(o.output, "Subject: hi\r\n\r\nbody\r\n.\r\n" + smuggled);
  EXPECT_EQ(o, reference_decode(input, options(policy)));

  // Without the true end the message never ends, whatever is sent.
  std::string no_end = "Subject: hi\r\n\r\nbody" + std::string(c.sequence) + smuggled;
  Outcome open = decode(no_end, options(policy));
  EXPECT_FALSE(open.done);
  EXPECT_EQ(open.consumed, no_end.size());
  // Byte by byte gives the same.
  EXPECT_EQ(decode_in_chunks(input, options(policy), {1}), o);
}

INSTANTIATE_TEST_SUITE_P(
    AllSequences, Smuggling,
    testing::Combine(testing::Values(SmugglingCase{"LF_dot_LF", "\n.\n"},
                                     SmugglingCase{"CRLF_dot_LF", "\r\n.\n"},
                                     SmugglingCase{"LF_dot_CRLF", "\n.\r\n"},
                                     SmugglingCase{"CR_dot_CRLF", "\r.\r\n"},
                                     SmugglingCase{"CRLF_dot_CR", "\r\n.\r"},
                                     SmugglingCase{"CR_dot_CR", "\r.\r"},
                                     SmugglingCase{"LF_dot_CR", "\n.\r"},
                                     SmugglingCase{"CR_dot_LF", "\r.\n"}),
                     testing::Values(BareEolPolicy::kReject, BareEolPolicy::kNormalize)),
    [](const auto& param_info) {
      return std::string(std::get<0>(param_info.param).name) +
             (std::get<1>(param_info.param) == BareEolPolicy::kReject ? "_Reject" : "_Normalize");
    });

TEST(DataDecoder, CrlfDotCrThenLfIsTheRealEnd) {
  for (BareEolPolicy policy : kBothPolicies) {
    Outcome o = decode("body\r\n.\r\nrest", options(policy));
    EXPECT_TRUE(o.done);
    EXPECT_EQ(o.consumed, 9u);
    EXPECT_FALSE(o.bare_eol);
    // The same bytes delivered as "\r\n.\r" and then "\n".
    DataDecoder d(options(policy));
    StringSink sink;
    EXPECT_EQ(d.feed("body\r\n.\r", sink), 8u);
    EXPECT_FALSE(d.done());
    EXPECT_EQ(d.feed("\nrest", sink), 1u);
    EXPECT_TRUE(d.done());
    EXPECT_FALSE(d.bare_eol_seen());
    EXPECT_EQ(sink.data, "body\r\n");
  }
}

TEST(DataDecoder, EndAfterBareLineNeedsACrlfLineFirst) {
  for (BareEolPolicy policy : kBothPolicies) {
    // "\n.\r\n" is content, but it leaves a CR LF behind: a following ".\r\n" is the end
    // (the stream contains a real CR LF "." CR LF there).
    const std::string input = "a\n.\r\n.\r\nrest";
    Outcome o = decode(input, options(policy));
    EXPECT_TRUE(o.done);
    EXPECT_EQ(input.substr(o.consumed), "rest");
    EXPECT_EQ(o.output, "a\r\n.\r\n");
    // "\r\n.\n.\r\n": the second "." follows a bare LF, so it is content too.
    Outcome open = decode("a\r\n.\n.\r\nrest", options(policy));
    EXPECT_FALSE(open.done);
  }
}

// ---------------------------------------------------------------------------------------------
// Limits and flags

TEST(DataDecoder, LineTooLong) {
  // 10 octets including CR LF is the limit.
  EXPECT_FALSE(decode("12345678\r\n.\r\n", options(BareEolPolicy::kReject, 10)).line_too_long);
  EXPECT_TRUE(decode("123456789\r\n.\r\n", options(BareEolPolicy::kReject, 10)).line_too_long);
  // The stuffing dot counts: the line is that long on the wire.
  EXPECT_TRUE(decode("..2345678\r\n.\r\n", options(BareEolPolicy::kReject, 10)).line_too_long);
  // A bare LF line counts as if it ended in CR LF.
  EXPECT_FALSE(decode("12345678\n.\r\n", options(BareEolPolicy::kReject, 10)).line_too_long);
  EXPECT_TRUE(decode("123456789\n.\r\n", options(BareEolPolicy::kReject, 10)).line_too_long);
  // Many short lines are fine; the end line is not a line of the message.
  EXPECT_FALSE(decode("1234\r\n1234\r\n.\r\n", options(BareEolPolicy::kReject, 6)).line_too_long);
  // 0 means no limit.
  EXPECT_FALSE(decode(std::string(5000, 'x') + "\r\n.\r\n", options(BareEolPolicy::kReject, 0))
                   .line_too_long);
  // The default RFC 5321 limit: 998 octets + CR LF.
  EXPECT_FALSE(decode(std::string(998, 'x') + "\r\n.\r\n").line_too_long);
  EXPECT_TRUE(decode(std::string(999, 'x') + "\r\n.\r\n").line_too_long);
  // The message is still read to its end.
  Outcome o = decode(std::string(2000, 'x') + "\r\n.\r\nQUIT", options());
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.output.size(), 2002u);
}

TEST(DataDecoder, SizeLimit) {
  // Exactly at the limit is fine.
  Outcome at = decode("01234567\r\n.\r\n", options(BareEolPolicy::kReject, 1000, 10));
  EXPECT_TRUE(at.done);
  EXPECT_FALSE(at.size_exceeded);
  EXPECT_EQ(at.output, "01234567\r\n");
  // Over it: flagged, the sink gets exactly the first `limit` octets, reading goes on to the
  // end and size() counts everything.
  const std::string input = "0123456789\r\nmore lines\r\n.\r\nQUIT\r\n";
  for (std::vector<size_t> sizes : {std::vector<size_t>{1000}, {1}, {3, 7}}) {
    Outcome o = decode_in_chunks(input, options(BareEolPolicy::kReject, 1000, 10), sizes);
    EXPECT_TRUE(o.done);
    EXPECT_TRUE(o.size_exceeded);
    EXPECT_EQ(o.output, "0123456789");
    EXPECT_EQ(o.size, 24u);
    EXPECT_EQ(input.substr(o.consumed), "QUIT\r\n");
  }
}

TEST(DataDecoder, EightBitAndNulFlags) {
  Outcome o = decode("caf\xc3\xa9\r\n.\r\n");
  EXPECT_TRUE(o.has_8bit);
  EXPECT_FALSE(o.has_nul);
  o = decode("a\0b\r\n.\r\n"s);
  EXPECT_FALSE(o.has_8bit);
  EXPECT_TRUE(o.has_nul);
  EXPECT_EQ(o.output, "a\0b\r\n"s);
  o = decode(".\xff\r\n.\r\n");
  EXPECT_TRUE(o.has_8bit);
  EXPECT_EQ(o.output, "\xff\r\n");
  // Bytes after the end of data do not count.
  o = decode("plain\r\n.\r\n\xff\0"s);
  EXPECT_FALSE(o.has_8bit);
  EXPECT_FALSE(o.has_nul);
}

TEST(DataDecoder, SinkFailure) {
  const std::string input = "line one\r\nline two\r\n..three\r\nfour\r\n.\r\nQUIT\r\n";
  for (size_t capacity : {0u, 5u, 12u}) {
    DataDecoder d(options());
    FailingSink sink(capacity);
    size_t used = 0;
    // Byte by byte, so that there are many writes after the failure.
    while (used < input.size() && !d.done()) used += d.feed(input.substr(used, 1), sink);
    EXPECT_TRUE(d.done());
    EXPECT_TRUE(d.sink_failed());
    EXPECT_EQ(input.substr(used), "QUIT\r\n");
    EXPECT_EQ(d.size(), decode(input).size);  // counted to the end
    EXPECT_EQ(d.size(), 34u);
    // After the refused write, the decoder did not try again.
    EXPECT_TRUE(sink.failed);
    EXPECT_EQ(sink.writes_after_failure, 0u);
    EXPECT_LE(sink.data.size(), capacity);
    EXPECT_EQ(sink.data, decode(input).output.substr(0, sink.data.size()));
  }
  // The exact number of writes: the refused one is the last.
  DataDecoder d(options());
  FailingSink sink(0);
  d.feed("a\r\n", sink);
  d.feed("b\r\n", sink);
  d.feed(".\r\n", sink);
  EXPECT_TRUE(d.done());
  EXPECT_EQ(sink.writes, 1u);
}

TEST(DataDecoder, ResetStartsANewMessage) {
  DataDecoder d(options(BareEolPolicy::kReject, 5, 4));
  StringSink sink;
  d.feed("abcdef\n\xff\0\r\n.\r\n"s, sink);
  EXPECT_TRUE(d.done());
  EXPECT_TRUE(d.bare_eol_seen());
  EXPECT_TRUE(d.line_too_long());
  EXPECT_TRUE(d.size_exceeded());
  EXPECT_TRUE(d.has_8bit());
  EXPECT_TRUE(d.has_nul());
  d.reset();
  EXPECT_FALSE(d.done());
  EXPECT_EQ(d.size(), 0u);
  EXPECT_FALSE(d.bare_eol_seen() || d.line_too_long() || d.size_exceeded() || d.has_8bit() ||
               d.has_nul() || d.sink_failed());
  StringSink second;
  EXPECT_EQ(d.feed(".\r\n", second), 3u);  // starts at a line start again
  EXPECT_TRUE(d.done());
  EXPECT_EQ(second.data, "");
}

TEST(DataDecoder, ResetInTheMiddleForgetsPendingState) {
  DataDecoder d(options());
  StringSink sink;
  d.feed("abc\r\n.\r", sink);  // pending "." CR
  d.reset();
  StringSink second;
  EXPECT_EQ(d.feed("\nx\r\n.\r\n", second), 7u);
  EXPECT_TRUE(d.done());
  EXPECT_TRUE(d.bare_eol_seen());  // a bare LF at the start of the new message
  EXPECT_EQ(second.data, "\r\nx\r\n");
}

// ---------------------------------------------------------------------------------------------
// Split invariance and agreement with the reference, on fixed and random streams.

std::vector<std::string> interesting_streams() {
  std::vector<std::string> s = {
      "Subject: x\r\n\r\nbody\r\n.\r\n",
      ".\r\n",
      "..\r\n.\r\n",
      "a\n.\nb\r\n.\r\nrest",
      "a\r\n.\nb\r\n.\r\nrest",
      "a\n.\r\nb\r\n.\r\nrest",
      "a\r.\r\nb\r\n.\r\nrest",
      "a\r\n.\rb\r\n.\r\nrest",
      "a\r\n.\r\r\n.\r\nrest",
      "a\r\r\n.\r\n",
      "\r\r\r\n\n\n.\r\n",
      "x\r\n..\r\n...\r\n.\r\n",
      "caf\xc3\xa9\0\r\n.\r\n"s,
      std::string(3000, 'y') + "\r\n.\r\n",
  };
  return s;
}

std::string random_stream(std::mt19937& rng) {
  static const std::vector<std::string> kTokens = {
      "a",    "bc",    "Subject: z", ".",         "..",       "\r",  "\n",
      "\r\n", "\r\n.", ".\r",        "\r\n.\r\n", "\xc3\xa9", "\0"s, " "};
  std::uniform_int_distribution<size_t> pick(0, kTokens.size() - 1);
  std::uniform_int_distribution<int> length(0, 60);
  std::string s;
  for (int n = length(rng); n > 0; --n) s += kTokens[pick(rng)];
  // Half of the streams get an end, so the random part is always checked up to it.
  if (rng() % 2) s += "\r\n.\r\nTAIL";
  return s;
}

std::vector<size_t> random_chunks(std::mt19937& rng) {
  std::uniform_int_distribution<size_t> size(1, 9);
  std::vector<size_t> sizes(17);
  for (size_t& x : sizes) x = size(rng);
  return sizes;
}

void check_split_invariance(const std::string& input, DataDecoder::Options opts,
                            std::mt19937& rng) {
  Outcome whole = decode(input, opts);
  EXPECT_EQ(decode_in_chunks(input, opts, {1}), whole) << testing::PrintToString(input);
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(decode_in_chunks(input, opts, random_chunks(rng)), whole)
        << testing::PrintToString(input);
  }
  // Every two-piece split.
  for (size_t cut = 0; cut <= input.size() && input.size() < 200; ++cut) {
    EXPECT_EQ(decode_in_chunks(input, opts, {cut == 0 ? input.size() + 1 : cut, input.size() + 1}),
              whole)
        << "cut at " << cut << " of " << testing::PrintToString(input);
  }
  if (whole.done) {
    EXPECT_EQ(whole, reference_decode(input, opts)) << testing::PrintToString(input);
  } else {
    EXPECT_EQ(whole.consumed, input.size());
  }
}

TEST(DataDecoder, SplitInvarianceOnInterestingStreams) {
  std::mt19937 rng(12345);
  for (const std::string& input : interesting_streams()) {
    for (BareEolPolicy policy : kBothPolicies) {
      check_split_invariance(input, options(policy), rng);
      check_split_invariance(input, options(policy, 6, 9), rng);
    }
  }
}

TEST(DataDecoder, SplitInvarianceAndReferenceOnRandomStreams) {
  std::mt19937 rng(20231218);
  for (int n = 0; n < 400; ++n) {
    std::string input = random_stream(rng);
    BareEolPolicy policy = n % 2 ? BareEolPolicy::kReject : BareEolPolicy::kNormalize;
    check_split_invariance(input, options(policy, 1 + rng() % 40, rng() % 3 ? 0 : rng() % 80), rng);
    if (HasFailure()) break;  // one readable failure is enough
  }
}

}  // namespace
}  // namespace mailgate::smtp
