// smtp/data_decoder.h — the DATA stream reader: finds the one true end of data and undoes
// dot-stuffing, producing the message in canonical form (every line ends in CRLF).
// Owns: RFC 5321 §4.1.1.4 / §4.5.2 decoding and the bare CR / bare LF policy (SMTP smuggling,
// CVE-2023-51764). Only <CRLF>.<CRLF> ends a message (the DATA command's own CRLF counts as
// the first CRLF, so "." CRLF as the very first line ends an empty message).
// Must not touch: sockets, the spool's storage, replies to the client.
// Thread-safety: one decoder per session; not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailgate::smtp {

// What to do with a CR not followed by LF, or an LF not preceded by CR.
enum class BareEolPolicy {
  kReject,     // read the whole message to its true end, then refuse it (554 5.6.0)
  kNormalize,  // treat the bare CR or LF as a line end and emit CRLF
};

// Receives decoded message bytes. Implemented by the spool.
class DataSink {
 public:
  virtual ~DataSink() = default;
  // Returns false when the sink can take no more (e.g. disk full); the decoder then keeps
  // consuming input to the end of data but stops writing, and reports sink_failed().
  virtual bool write(std::string_view bytes) = 0;
};

class DataDecoder {
 public:
  struct Options {
    BareEolPolicy bare_eol = BareEolPolicy::kReject;
    size_t max_line_length = 1000;  // octets per line including CRLF (RFC 5321 §4.5.3.1.6)
    uint64_t max_message_size = 0;  // decoded octets; 0 = unlimited
  };

  explicit DataDecoder(Options options) : options_(options) {}

  // Starts a new message (call after sending 354). Clears all flags.
  void reset();

  // Consumes bytes from `input` and writes decoded content to `sink`. Stops right after the
  // end-of-data line; returns how many bytes of `input` were consumed (the rest belongs to
  // the next command). Can be called with arbitrary splits of the stream (one byte at a
  // time must give the same result as the whole stream at once).
  size_t feed(std::string_view input, DataSink& sink);

  bool done() const { return done_; }
  uint64_t size() const { return size_; }                  // decoded octets seen (even past the limit)
  bool bare_eol_seen() const { return bare_eol_seen_; }    // any bare CR or bare LF
  bool line_too_long() const { return line_too_long_; }    // some line > max_line_length
  bool size_exceeded() const { return size_exceeded_; }    // size() > max_message_size
  bool has_8bit() const { return has_8bit_; }              // any octet >= 0x80
  bool has_nul() const { return has_nul_; }                // any NUL octet
  bool sink_failed() const { return sink_failed_; }        // sink refused a write

 private:
  // Where the decoder is in the stream. Nothing is held back between feed() calls but the
  // state itself: a CR is written as soon as it is seen (a CR alone becomes CR LF anyway) and
  // a dot at a line start is written only once the byte after it says what it was.
  enum class State {
    kLineStartCrlf,  // at a line start; the previous line ended in CR LF (or it is the first)
    kLineStartBare,  // at a line start; the previous line ended in a bare CR or bare LF
    kText,           // inside a line
    kCr,             // just after a CR (already written): LF completes it, else it was bare
    kDotCrlf,        // "." at a kLineStartCrlf line start: stuffing, content "." or the end
    kDotCrlfCr,      // "." CR at a kLineStartCrlf line start: LF now means end of data
    kDotBare,        // "." at a kLineStartBare line start: never the end of data
    kDotBareCr,      // "." CR at a kLineStartBare line start: a content line "."
    kDone,           // end of data consumed; feed() consumes nothing more until reset()
  };

  // Queues decoded bytes for the sink: short pieces (the CR LF replacing a bare line end, a
  // short run) are gathered in out_, long runs go straight through after out_.
  void emit(std::string_view bytes, DataSink& sink);
  // Passes out_ to deliver() and empties it. Called at the end of every feed().
  void flush_output(DataSink& sink);
  // Counts decoded bytes and writes them, honouring the size limit and a failed sink.
  void deliver(std::string_view bytes, DataSink& sink);
  // Accounts for a span of line content: line length, 8-bit and NUL flags.
  void scan_content(std::string_view span);
  // Accounts for a line end (the CRLF's two octets) and starts the next line.
  void end_line();

  Options options_;
  State state_ = State::kLineStartCrlf;
  size_t line_length_ = 0;  // octets of the current line so far, a stuffing dot included
  std::string out_;         // short decoded pieces not yet written (empty between feed() calls)
  bool done_ = false;
  uint64_t size_ = 0;
  bool bare_eol_seen_ = false;
  bool line_too_long_ = false;
  bool size_exceeded_ = false;
  bool has_8bit_ = false;
  bool has_nul_ = false;
  bool sink_failed_ = false;
};

}  // namespace mailgate::smtp
