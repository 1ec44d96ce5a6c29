// relay/smtp_client_codec.h — the I/O-free half of the SMTP client towards the backend: reply
// parsing, EHLO capability parsing, xtext (RFC 3461), building XCLIENT / XFORWARD / MAIL command
// lines, and dot-stuffing of the outgoing message (RFC 5321 §4.5.2).
// Owns: pure functions and small state machines over bytes; relay/upstream.cc drives them.
// Must not touch: sockets, timers, the pool, logging. Everything here is unit-tested alone.
// Thread-safety: plain values; one instance per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "relay/backend.h"
#include "smtp/command.h"
#include "smtp/reply.h"
#include "util/expected.h"

namespace mailgate::relay {

// Bounds on what the backend may send us as one reply. Anything beyond is garbage: the
// connection is treated as broken.
struct ReplyLimits {
  size_t max_line = 4096;  // octets per reply line, CRLF included
  size_t max_lines = 200;  // lines per (multi-line) reply
};

// Incremental reader of one SMTP reply ("250-a" ... "250 z"). Feed it whatever arrived; it
// consumes whole lines only and keeps what it has seen between calls.
class ReplyParser {
 public:
  enum class Status {
    kNeedMore,  // no final line yet; keep the unconsumed tail and feed more
    kComplete,  // reply() holds the full reply; bytes after it were not consumed
    kError,     // garbage or over a limit; error() says what
  };

  explicit ReplyParser(ReplyLimits limits = {}) : limits_(limits) {}

  // Consumes complete lines from the front of `input`, stopping after the final line of a
  // reply. `*consumed` receives the number of bytes used (the caller drops them). Lines end
  // in CRLF; a bare LF is tolerated as a line end (the CR is then absent).
  Status parse(std::string_view input, size_t* consumed);

  const smtp::Reply& reply() const { return reply_; }
  smtp::Reply take_reply();
  const std::string& error() const { return error_; }
  // Forgets any partial reply and error, for the next reply.
  void reset();

 private:
  Status fail(std::string message);

  ReplyLimits limits_;
  smtp::Reply reply_;
  bool done_ = false;
  std::string error_;
};

// What the backend announced in its EHLO reply (RFC 5321 §4.1.1.1 and the extensions).
struct Capabilities {
  bool esmtp = false;  // EHLO was accepted (false after a HELO fallback)
  bool pipelining = false;
  bool size = false;
  uint64_t size_limit = 0;  // SIZE argument; 0 means announced without a fixed limit
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool starttls = false;
  bool enhanced_status_codes = false;
  bool chunking = false;
  bool dsn = false;
  bool auth = false;
  std::vector<std::string> auth_mechanisms;  // upper case, as listed: PLAIN LOGIN ...
  bool xclient = false;
  std::vector<std::string> xclient_attrs;  // upper case, as listed: NAME ADDR PORT ...
  bool xforward = false;
  std::vector<std::string> xforward_attrs;  // upper case, as listed

  bool xclient_offers(std::string_view attr) const;
  bool xforward_offers(std::string_view attr) const;
  bool auth_offers(std::string_view mechanism) const;
};

// Parses a positive EHLO reply. The first line is the server's name and is skipped; keywords
// are case-insensitive; unknown keywords are ignored.
Capabilities parse_ehlo_reply(const smtp::Reply& reply);

// RFC 3461 §4 xtext: '+', '=' and octets outside 33..126 become "+HH" (upper-case hex).
std::string xtext_encode(std::string_view value);

// SMTP limits a command line to 512 octets including CRLF (RFC 5321 §4.5.3.1.4).
inline constexpr size_t kMaxCommandOctets = 512;

// XCLIENT command lines (without CRLF) introducing `client`, using only the attributes the
// backend listed (of NAME, ADDR, PORT, PROTO, HELO, LOGIN). Unknown or empty values are sent as
// "[UNAVAILABLE]"; an IPv6 ADDR as "IPV6:addr". Split into several commands when one would
// exceed `max_octets` (CRLF included); NAME and ADDR go last, because the backend checks its
// XCLIENT authorisation against the client identity currently in effect. Empty when the
// backend listed none of these attributes.
std::vector<std::string> build_xclient_commands(const ClientInfo& client,
                                                const std::vector<std::string>& offered,
                                                size_t max_octets = kMaxCommandOctets);

// XFORWARD command lines (without CRLF): NAME ADDR PORT PROTO HELO SOURCE=REMOTE, restricted to
// the attributes the backend listed, split like XCLIENT.
std::vector<std::string> build_xforward_commands(const ClientInfo& client,
                                                 const std::vector<std::string>& offered,
                                                 size_t max_octets = kMaxCommandOctets);

// "MAIL FROM:<addr>" plus SIZE=, BODY= and SMTPUTF8 only where the backend announced the
// extension. Returns the gateway's reply instead when the message cannot be relayed to this
// backend at all (SMTPUTF8 needed but not offered; BINARYMIME, which needs BDAT).
Expected<std::string, smtp::Reply> build_mail_command(const smtp::MailArgs& mail,
                                                      const Capabilities& caps);

// "RCPT TO:<addr>".
std::string build_rcpt_command(std::string_view address);

// True when `name` can stand as the argument of our EHLO: 1..255 octets of printable ASCII
// without spaces (the client's HELO name is re-sent after XCLIENT when it passes this).
bool usable_helo_argument(std::string_view name);

// Two ClientInfo values describe the same client identity (every attribute XCLIENT carries).
bool same_client(const ClientInfo& a, const ClientInfo& b);

// Dot-stuffs a message on its way out: a '.' at the start of a line gets a second '.'. The
// message arrives in chunks split anywhere; state is kept between feed() calls. A line starts
// at the beginning of the message and after every LF (bare LFs should not occur in the
// canonical spool, but stuffing after them too means no backend can ever see a premature
// end of data).
class DotStuffer {
 public:
  // Appends the stuffed form of `chunk` to `out`.
  void feed(std::string_view chunk, std::string& out);
  // Appends the end of data: CRLF first when the content so far is non-empty and does not end
  // in CRLF, then ".\r\n". The object is then ready for a new message.
  void finish(std::string& out);

 private:
  bool at_line_start_ = true;
  bool empty_ = true;
  char last_ = 0;
  char before_last_ = 0;
};

}  // namespace mailgate::relay
