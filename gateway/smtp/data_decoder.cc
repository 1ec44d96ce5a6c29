// smtp/data_decoder.cc — see data_decoder.h. Owns the DATA byte-level state machine: the
// end-of-data search (only CR LF "." CR LF), dot-unstuffing, bare CR / bare LF normalisation
// and the per-message flags. No I/O of its own: decoded bytes go to the DataSink.
//
// Output is written in runs: as long as the decoded output equals the input (the common case,
// a canonical CRLF stream without stuffed dots), the bytes are not copied but written as one
// span of the caller's buffer. A run is cut only where output and input differ: a removed
// stuffing dot, a bare CR or LF (replaced by CR LF), the end-of-data line, the end of `input`.
// Pieces shorter than kDirectWrite are gathered in out_ and written together.
//
// Both BareEolPolicy values decode identically (bare CR and bare LF end a line and become
// CR LF, never the end of data) and both set bare_eol_seen(): the session applies the policy.
#include "smtp/data_decoder.h"

#include <algorithm>
#include <cstring>

namespace mailgate::smtp {
namespace {

// Position of the first `c` at or after `from`, or `n` when there is none.
size_t find_byte(const char* p, size_t n, size_t from, char c) {
  if (from >= n) return n;
  const void* hit = std::memchr(p + from, c, n - from);
  return hit == nullptr ? n : static_cast<size_t>(static_cast<const char*>(hit) - p);
}

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLf = "\n";
constexpr std::string_view kDotLine = ".\r\n";  // a "." line that did not end the data

// Runs at least this long are written straight from the input; shorter pieces are gathered
// first, so that a stream of bare-LF lines does not cost two sink writes per line.
constexpr size_t kDirectWrite = 16 * 1024;

}  // namespace

void DataDecoder::reset() {
  state_ = State::kLineStartCrlf;
  line_length_ = 0;
  out_.clear();
  done_ = false;
  size_ = 0;
  bare_eol_seen_ = false;
  line_too_long_ = false;
  size_exceeded_ = false;
  has_8bit_ = false;
  has_nul_ = false;
  sink_failed_ = false;
}

void DataDecoder::emit(std::string_view bytes, DataSink& sink) {
  if (bytes.size() >= kDirectWrite) {
    flush_output(sink);
    deliver(bytes, sink);
    return;
  }
  out_.append(bytes);
  if (out_.size() >= kDirectWrite) flush_output(sink);
}

void DataDecoder::flush_output(DataSink& sink) {
  if (out_.empty()) return;
  deliver(out_, sink);
  out_.clear();  // keeps the capacity
}

void DataDecoder::deliver(std::string_view bytes, DataSink& sink) {
  if (bytes.empty()) return;
  const uint64_t before = size_;
  const uint64_t limit = options_.max_message_size;
  size_ += bytes.size();
  if (limit != 0 && size_ > limit) {
    // Write exactly the first `limit` octets, whatever the split of the input, then nothing.
    size_exceeded_ = true;
    bytes =
        before < limit ? bytes.substr(0, static_cast<size_t>(limit - before)) : std::string_view{};
  }
  if (bytes.empty() || sink_failed_) return;
  if (!sink.write(bytes)) sink_failed_ = true;
}

void DataDecoder::scan_content(std::string_view span) {
  if (span.empty()) return;
  line_length_ += span.size();
  if (options_.max_line_length != 0 && line_length_ + kCrlf.size() > options_.max_line_length) {
    line_too_long_ = true;
  }
  if (!has_nul_ && std::memchr(span.data(), 0, span.size()) != nullptr) has_nul_ = true;
  if (!has_8bit_) {
    unsigned char any = 0;  // OR of all octets: a loop the compiler vectorises
    for (char c : span) any |= static_cast<unsigned char>(c);
    if (any & 0x80) has_8bit_ = true;
  }
}

void DataDecoder::end_line() {
  if (options_.max_line_length != 0 && line_length_ + kCrlf.size() > options_.max_line_length) {
    line_too_long_ = true;
  }
  line_length_ = 0;
}

size_t DataDecoder::feed(std::string_view input, DataSink& sink) {
  if (done_) return 0;
  const char* const p = input.data();
  const size_t n = input.size();
  size_t i = 0;    // next byte to examine
  size_t run = 0;  // input[run, i) is decoded output not yet written
  // The next CR and LF at or after i (n when none). Each is searched again only once passed,
  // so a stream with many LFs and one far CR (or the reverse) stays linear.
  size_t next_cr = find_byte(p, n, 0, '\r');
  size_t next_lf = find_byte(p, n, 0, '\n');
  auto flush = [&](size_t upto) {
    if (upto > run) emit(input.substr(run, upto - run), sink);
    run = upto;
  };

  while (i < n && !done_) {
    const char c = p[i];
    switch (state_) {
      case State::kLineStartCrlf:
      case State::kLineStartBare:
        if (c == '.') {
          // Hold the dot back until the next byte says whether it is stuffing, a content
          // line "." or (after CR LF) the start of the end-of-data line.
          flush(i);
          ++i;
          run = i;
          line_length_ = 1;
          state_ = state_ == State::kLineStartCrlf ? State::kDotCrlf : State::kDotBare;
        } else {
          state_ = State::kText;  // examined again in kText
        }
        break;

      case State::kText: {
        if (next_cr < i) next_cr = find_byte(p, n, i, '\r');
        if (next_lf < i) next_lf = find_byte(p, n, i, '\n');
        const size_t eol = std::min(next_cr, next_lf);
        scan_content(input.substr(i, eol - i));
        i = eol;
        if (i == n) break;
        end_line();
        if (p[i] == '\r') {
          ++i;  // written as is: CR LF or, when bare, CR + an added LF
          state_ = State::kCr;
        } else {
          flush(i);  // bare LF: written as CR LF
          emit(kCrlf, sink);
          ++i;
          run = i;
          bare_eol_seen_ = true;
          state_ = State::kLineStartBare;
        }
        break;
      }

      case State::kCr:
        if (c == '\n') {
          ++i;
          state_ = State::kLineStartCrlf;
        } else {
          flush(i);  // bare CR (already written): add the LF; `c` starts the next line
          emit(kLf, sink);
          bare_eol_seen_ = true;
          state_ = State::kLineStartBare;
        }
        break;

      case State::kDotCrlf:
      case State::kDotBare:
        if (c == '\r') {
          ++i;
          run = i;
          state_ = state_ == State::kDotCrlf ? State::kDotCrlfCr : State::kDotBareCr;
        } else if (c == '\n') {
          // "." ended by a bare LF: a content line ".", never the end (smuggling "\n.\n").
          emit(kDotLine, sink);
          ++i;
          run = i;
          bare_eol_seen_ = true;
          end_line();
          state_ = State::kLineStartBare;
        } else {
          state_ = State::kText;  // stuffing dot dropped: the run starts after it
        }
        break;

      case State::kDotCrlfCr:
        if (c == '\n') {
          // CR LF "." CR LF: the one true end of data. The rest of `input` is not ours.
          ++i;
          run = i;
          line_length_ = 0;
          done_ = true;
          state_ = State::kDone;
        } else {
          // "." ended by a bare CR ("\r\n.\rX"): a content line "."; `c` starts the next line.
          emit(kDotLine, sink);
          bare_eol_seen_ = true;
          end_line();
          state_ = State::kLineStartBare;
        }
        break;

      case State::kDotBareCr:
        // "." CR after a bare line end: a content line "." whatever follows.
        emit(kDotLine, sink);
        end_line();
        if (c == '\n') {
          ++i;
          run = i;
          state_ = State::kLineStartCrlf;
        } else {
          bare_eol_seen_ = true;
          state_ = State::kLineStartBare;
        }
        break;

      case State::kDone:
      default:
        // Unreachable: the loop stops at done_. Treat as the end rather than loop forever.
        done_ = true;
        break;
    }
  }
  flush(i);
  flush_output(sink);
  return i;
}

}  // namespace mailgate::smtp
