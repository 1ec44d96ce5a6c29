// relay/upstream.h — one SMTP client connection to the backend MTA.
// Owns: the TCP socket (TCP_NODELAY) and, after STARTTLS (RelayConfig::starttls), the TLS
// layer over it; the per-step deadlines of RelayConfig, reading and
// validating replies, the backend's EHLO capabilities, the client identity last introduced
// with XCLIENT, whether a mail transaction is open, and streaming a spooled message
// dot-stuffed. Any I/O error, timeout or garbage from the backend closes the connection and
// marks it broken: a broken Upstream is never used again nor pooled.
// Must not touch: the client side of the session, the pool's bookkeeping, the spool's storage.
// Thread-safety: used from one coroutine at a time on its io_context's thread. No method throws
// on the data path (failures come back as Failure values).
#pragma once

#include <array>
#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "net/socket_watchdog.h"
#include "relay/backend.h"
#include "relay/relay_config.h"
#include "relay/smtp_client_codec.h"
#include "smtp/reply.h"
#include "util/expected.h"

namespace mailgate::spool {
class Spool;
}

namespace mailgate::relay {

// Why a step ended without a usable reply from the backend.
struct Failure {
  enum class Kind {
    kUnavailable,  // cannot connect, or no proper 220 greeting / EHLO
    kTimeout,      // a deadline passed while waiting for the backend
    kLost,         // the connection broke: EOF, reset, write error
    kProtocol,     // the backend sent something that is not SMTP
    kLocal,        // a local problem, e.g. the spool could not be read
  };
  Kind kind = Kind::kLost;
  std::string detail;  // what failed, for the log
};

// The reply the SMTP client gets for a failure: always a 451 with an enhanced code, so the
// sender retries (kUnavailable 4.4.1, kTimeout and kLost 4.4.2, kProtocol 4.5.0, kLocal 4.3.0).
smtp::Reply gateway_reply(const Failure& failure);

// A backend reply, or why there is none.
using Step = Expected<smtp::Reply, Failure>;

class Upstream {
 public:
  Upstream(asio::any_io_executor executor, std::shared_ptr<const RelayConfig> config);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Resolves and connects (connect_timeout), reads the 220 greeting (greeting_timeout; any
  // other greeting is a kUnavailable failure) and sends EHLO (HELO if EHLO is refused) with
  // config.helo_name; with config.starttls and STARTTLS offered, starts TLS and sends EHLO
  // again. Returns the EHLO/HELO reply; a refusal of both is kUnavailable.
  asio::awaitable<Step> open();

  // Sends EHLO `name`; on a 5xx other than 421 falls back to HELO. Updates caps(). Returns the
  // reply of the last command sent (positive, or the refusal).
  asio::awaitable<Step> hello(std::string_view name);

  // Introduces `client` with XCLIENT (only the attributes the backend listed, split as needed).
  // Each XCLIENT must be answered 220; then EHLO is sent again, with the client's HELO name
  // when it is usable (Postfix takes the HELO name from that EHLO) or config.helo_name.
  // Returns the final EHLO reply (a refusal of it as the backend sent it). A refusal of XCLIENT
  // itself (other than 421) is a gateway problem — the backend does not trust us — and becomes
  // 451 4.3.5; it closes the connection, as the identity in effect is then unknown. On success
  // identity() is `client`.
  asio::awaitable<Step> xclient(const ClientInfo& client);

  // Sends XFORWARD for `client` (attributes the backend listed); each must be answered 250.
  // Returns the last reply: 250, a 421 as sent, or 451 4.3.5 for any other refusal. Valid
  // only outside a transaction; the attributes hold for the next transaction only.
  asio::awaitable<Step> xforward(const ClientInfo& client);

  // The opening of a transaction on a backend that offers PIPELINING: XFORWARD for
  // `xforward_for` (when given; the attributes the backend listed), MAIL and, when given, the
  // first RCPT in one write (RFC 2920 lets them go in one group; Postfix's own smtp client
  // sends them so). The replies are read in order. A refused XFORWARD means what xforward()
  // returns (the connection closes; the rest of the group goes with it) and is returned as
  // `mail`. `rcpt` is the RCPT's reply, read whenever the connection is still open after MAIL
  // (after a refused MAIL the backend answers it with a sequence error), absent otherwise.
  // Nothing is sent when MAIL cannot go to this backend (mail_command()'s refusal).
  struct Opening {
    Step mail = smtp::Reply{};
    std::optional<Step> rcpt;
  };
  asio::awaitable<Opening> open_transaction(const ClientInfo* xforward_for,
                                            const smtp::MailArgs& mail,
                                            std::optional<std::string_view> rcpt);

  // MAIL FROM with the parameters the backend supports. When the message cannot go to this
  // backend (SMTPUTF8 not offered) returns the gateway's 5xx reply without sending anything.
  asio::awaitable<Step> mail(const smtp::MailArgs& mail);
  // The MAIL FROM line for this backend, or the gateway's refusal when the message cannot go
  // to it (logged at debug level; nothing is sent).
  Expected<std::string, smtp::Reply> mail_command(const smtp::MailArgs& mail) const;
  asio::awaitable<Step> rcpt(std::string_view address);

  // DATA (data_init_timeout); on 354 streams `prepend` and the spool — less its first `skip`
  // octets (a header block that `prepend` replaces) — dot-stuffed in large writes
  // (data_block_timeout each), then CRLF.CRLF, and reads the final reply (data_end_timeout).
  // A reply other than 354 is returned as is and leaves the transaction open (the caller
  // resets), as does a `skip` beyond the message (451 4.3.0, nothing sent). After the final
  // reply the transaction is closed.
  asio::awaitable<Step> data(const std::string& prepend, const spool::Spool& message,
                             uint64_t skip = 0);

  // AUTH with the backend (RFC 4954): PLAIN when it lists PLAIN, else LOGIN. Returns the
  // final reply (235 on success, the backend's refusal otherwise); a 504-style 5xx made here,
  // without sending anything, when the backend lists neither mechanism. On 235 the connection
  // is authenticated(): it must never serve another client.
  asio::awaitable<Step> authenticate(const Credentials& credentials);
  bool authenticated() const { return authenticated_; }
  bool tls_active() const { return tls_ != nullptr; }

  asio::awaitable<Step> rset();
  // Sends QUIT (short deadline, failures only logged at debug level) and closes.
  asio::awaitable<void> quit();

  // Sends `line` (without CRLF) and reads the reply within `timeout`. A 421 reply is returned
  // but closes the connection. Used by the steps above; public for tests and diagnostics.
  // A `secret` line (AUTH data) is never logged, not even at debug level.
  asio::awaitable<Step> command(std::string_view line, std::chrono::milliseconds timeout,
                                bool secret = false);

  // Closes the socket now; the connection is broken from then on.
  void close();

  bool broken() const { return broken_; }
  bool in_transaction() const { return in_transaction_; }
  const Capabilities& caps() const { return caps_; }
  // The client last introduced with XCLIENT, if any.
  const std::optional<ClientInfo>& identity() const { return identity_; }
  // The connection can carry a transaction for `client`: nothing introduced yet, the same
  // client, or XCLIENT is still offered to re-introduce (Postfix checks XCLIENT authorisation
  // against the identity in effect, so after introducing an outside client it usually is not).
  bool can_serve(const ClientInfo& client, bool use_xclient) const;
  // Replies read on this connection so far (tells whether a failure hit the first command).
  uint64_t replies() const { return replies_; }
  // Cheap check before reuse: open, not broken, and nothing unsolicited waiting to be read
  // (no EOF, no "421 timeout" the backend sent while the connection sat idle).
  bool probably_alive() const;

  std::chrono::steady_clock::time_point idle_since() const { return idle_since_; }
  void set_idle_since(std::chrono::steady_clock::time_point t) { idle_since_ = t; }
  uint64_t id() const { return id_; }
  // "host:port" of the backend, for logs.
  const std::string& peer() const { return peer_; }

 private:
  using Deadline = std::chrono::steady_clock::time_point;

  // Low-level I/O with a deadline. Each returns a Failure (and closes) or nothing.
  asio::awaitable<std::optional<Failure>> write_all(std::string_view bytes,
                                                    std::chrono::milliseconds timeout,
                                                    std::string_view what);
  // `timeout` is the whole budget `deadline` came from, for the log.
  asio::awaitable<std::optional<Failure>> read_more(Deadline deadline,
                                                    std::chrono::milliseconds timeout,
                                                    std::string_view what);
  asio::awaitable<Step> read_reply(std::chrono::milliseconds timeout, std::string_view what);
  asio::awaitable<std::optional<Failure>> stream_message(const std::string& prepend,
                                                         const spool::Spool& message,
                                                         uint64_t skip);
  // For a reply to XFORWARD: nothing when it is 250 (go on); else what xforward() returns — a
  // failure or a 421 as is, any other refusal warned about, the connection closed, 451 4.3.5.
  std::optional<Step> xforward_refused(const Step& reply);

  // Logs (warning unless quiet_), closes, and returns the failure.
  Failure fail(Failure::Kind kind, std::string detail);
  std::string own_helo_name() const;
  // STARTTLS and the client handshake; a failure closes the connection.
  asio::awaitable<std::optional<Failure>> start_tls();

  std::shared_ptr<const RelayConfig> config_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  asio::steady_timer timer_;
  // Deadline of the read or write in progress (write_all, read_more); connecting,
  // resolving and the TLS handshake race their operation against timer_ instead.
  net::SocketWatchdog watchdog_;  // after socket_, which it watches
  std::string peer_;
  uint64_t id_;
  std::string rbuf_;  // received, not yet parsed
  std::array<char, 8192> in_{};
  ReplyParser parser_;
  Capabilities caps_;
  std::optional<ClientInfo> identity_;
  bool broken_ = false;
  bool in_transaction_ = false;
  bool authenticated_ = false;
  uint64_t replies_ = 0;
  bool quiet_ = false;  // failures during QUIT are not worth a warning
  Deadline idle_since_{};
};

}  // namespace mailgate::relay
