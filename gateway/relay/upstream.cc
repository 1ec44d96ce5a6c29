// relay/upstream.cc — see upstream.h. Reads and writes have a watchdog timer (arm/disarm);
// connecting, resolving and the TLS handshake use `co_await (operation || timer)`: whichever
// finishes first cancels the other. Completion tokens redirect errors into std::error_code, so
// nothing here throws on I/O. Every co_await is a statement of its own (never inside &&, ?: or
// an if condition): GCC 12 miscompiles some of those forms in coroutines.
#include "relay/upstream.h"

#include <sys/socket.h>

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/error.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/host_name.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <variant>

#include <openssl/ssl.h>
#include <cerrno>
#include <utility>

#include "log/log.h"
#include "net/connection_write.h"
#include "obs/metrics.h"
#include "smtp/sasl.h"
#include "spool/spool.h"

namespace mailgate::relay {
namespace {

using namespace asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;

constexpr size_t kWriteBlock = 64 * 1024;  // message data goes out in writes of about this size
constexpr std::chrono::milliseconds kQuitTimeout{10'000};

std::atomic<uint64_t> g_next_id{1};

auto redirect(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

// "MAIL FROM:<a@b>" -> "MAIL": what a log line names, without addresses or XCLIENT values.
std::string_view verb_of(std::string_view line) { return line.substr(0, line.find(' ')); }

// The backend would not take the client's identity from us: a configuration problem on the
// backend (e.g. smtpd_authorized_xclient_hosts), never the sender's fault.
smtp::Reply refused_introduction() {
  return smtp::Reply::make(451, "4.3.5",
                           "Backend refused the client introduction, try again later");
}

long long as_ms(std::chrono::milliseconds d) { return static_cast<long long>(d.count()); }

// One client context for every backend connection of the process: TLS 1.2 or newer, no
// certificate check (opportunistic TLS, RFC 7435: better than plaintext, no worse).
asio::ssl::context& client_tls_context() {
  static asio::ssl::context* ctx = [] {
    auto* c = new asio::ssl::context(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(c->native_handle(), TLS1_2_VERSION);
    SSL_CTX_set_options(c->native_handle(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    c->set_verify_mode(asio::ssl::verify_none);
    return c;
  }();
  return *ctx;
}

}  // namespace

smtp::Reply gateway_reply(const Failure& failure) {
  switch (failure.kind) {
    case Failure::Kind::kUnavailable:
      return smtp::Reply::make(451, "4.4.1", "Backend not available, try again later");
    case Failure::Kind::kTimeout:
      return smtp::Reply::make(451, "4.4.2", "Backend timeout");
    case Failure::Kind::kLost:
      return smtp::Reply::make(451, "4.4.2", "Backend connection lost");
    case Failure::Kind::kProtocol:
      return smtp::Reply::make(451, "4.5.0", "Backend protocol error");
    case Failure::Kind::kLocal:
      return smtp::Reply::make(451, "4.3.0", "Local error in processing, try again later");
  }
  return smtp::Reply::make(451, "4.3.0", "Local error in processing, try again later");
}

Upstream::Upstream(asio::any_io_executor executor, std::shared_ptr<const RelayConfig> config)
    : config_(std::move(config)),
      resolver_(executor),
      socket_(executor),
      timer_(executor),
      watchdog_(socket_),
      peer_(fmt::format("{}:{}", config_->host, config_->port)),
      id_(g_next_id.fetch_add(1, std::memory_order_relaxed)) {
}

Upstream::~Upstream() {
  close();
}

Failure Upstream::fail(Failure::Kind kind, std::string detail) {
  if (quiet_) {
    MG_LOG_DEBUG("relay#{} {}: {}", id_, peer_, detail);
  } else {
    MG_LOG_WARNING("relay#{} {}: {}", id_, peer_, detail);
  }
  close();
  obs::count_backend_error(static_cast<int>(kind));
  return Failure{kind, std::move(detail)};
}

void Upstream::close() {
  broken_ = true;
  in_transaction_ = false;
  std::error_code ignored;
  resolver_.cancel();
  timer_.cancel();
  watchdog_.disarm();
  if (socket_.is_open()) {
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
}

std::string Upstream::own_helo_name() const {
  if (!config_->helo_name.empty()) return config_->helo_name;
  std::error_code ec;
  std::string name = asio::ip::host_name(ec);
  return ec || name.empty() ? std::string("localhost") : name;
}

bool Upstream::can_serve(const ClientInfo& client, bool use_xclient) const {
  if (!identity_ || same_client(*identity_, client)) return true;
  return use_xclient && caps_.xclient;
}

bool Upstream::probably_alive() const {
  if (broken_ || !socket_.is_open() || !rbuf_.empty()) return false;
  char byte = 0;
  // asio's native_handle() is non-const; the descriptor is only peeked at, never changed.
  int fd = const_cast<asio::ip::tcp::socket&>(socket_).native_handle();
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// --- low-level I/O -----------------------------------------------------------------------

asio::awaitable<std::optional<Failure>> Upstream::write_all(std::string_view bytes,
                                                            std::chrono::milliseconds timeout,
                                                            std::string_view what) {
  const Deadline deadline = Clock::now() + timeout;
  if (broken_) co_return Failure{Failure::Kind::kLost, "connection already closed"};
  const net::WriteResult written =
      co_await net::write_to_connection(socket_, tls_.get(), bytes, watchdog_, deadline);
  if (written.timed_out) {
    co_return fail(Failure::Kind::kTimeout,
                   fmt::format("timeout sending {} (limit {} ms)", what, as_ms(timeout)));
  }
  if (written.ec) {
    co_return fail(Failure::Kind::kLost,
                   fmt::format("error sending {}: {}", what, written.ec.message()));
  }
  co_return std::nullopt;
}

asio::awaitable<std::optional<Failure>> Upstream::read_more(Deadline deadline,
                                                            std::chrono::milliseconds timeout,
                                                            std::string_view what) {
  if (broken_) co_return Failure{Failure::Kind::kLost, "connection already closed"};
  std::error_code ec;
  size_t n = 0;
  watchdog_.arm(deadline);
  if (tls_) {
    n = co_await tls_->async_read_some(asio::buffer(in_), redirect(ec));
  } else {
    n = co_await socket_.async_read_some(asio::buffer(in_), redirect(ec));
  }
  watchdog_.disarm();
  if (watchdog_.timed_out()) {
    co_return fail(Failure::Kind::kTimeout,
                   fmt::format("timeout waiting for {} (limit {} ms)", what, as_ms(timeout)));
  }
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    co_return fail(Failure::Kind::kLost,
                   fmt::format("connection closed by backend while waiting for {}", what));
  }
  if (ec) {
    co_return fail(Failure::Kind::kLost,
                   fmt::format("error while waiting for {}: {}", what, ec.message()));
  }
  rbuf_.append(in_.data(), n);
  co_return std::nullopt;
}

asio::awaitable<Step> Upstream::read_reply(std::chrono::milliseconds timeout,
                                           std::string_view what) {
  const Deadline deadline = Clock::now() + timeout;
  parser_.reset();
  while (true) {
    size_t consumed = 0;
    ReplyParser::Status status = parser_.parse(rbuf_, &consumed);
    rbuf_.erase(0, consumed);
    if (status == ReplyParser::Status::kComplete) {
      smtp::Reply reply = parser_.take_reply();
      ++replies_;
      obs::metrics().backend_reply_seconds.observe(Clock::now() - (deadline - timeout));
      MG_LOG_DEBUG("relay#{} {} < {}", id_, peer_, reply.summary());
      if (reply.closes()) {
        MG_LOG_WARNING("relay#{} {}: backend closes the connection: {}", id_, peer_,
                       reply.summary());
        close();
      }
      co_return reply;
    }
    if (status == ReplyParser::Status::kError) {
      co_return unexpected(
          fail(Failure::Kind::kProtocol, fmt::format("garbage in {}: {}", what, parser_.error())));
    }
    std::optional<Failure> failure = co_await read_more(deadline, timeout, what);
    if (failure) co_return unexpected(std::move(*failure));
  }
}

// --- SMTP steps --------------------------------------------------------------------------

asio::awaitable<Step> Upstream::command(std::string_view line, std::chrono::milliseconds timeout,
                                       bool secret) {
  if (broken_) co_return unexpected(Failure{Failure::Kind::kLost, "connection already closed"});
  const std::string_view verb = secret ? std::string_view("AUTH data") : verb_of(line);
  MG_LOG_DEBUG("relay#{} {} > {}", id_, peer_, secret ? std::string_view("(AUTH data)") : line);
  std::string out;
  out.reserve(line.size() + 2);
  out.append(line);
  out.append("\r\n");
  std::string what = fmt::format("reply to {}", verb);
  std::optional<Failure> failure = co_await write_all(out, timeout, verb);
  smtp::wipe(out);
  if (failure) {
    co_return unexpected(std::move(*failure));
  }
  co_return co_await read_reply(timeout, what);
}

asio::awaitable<Step> Upstream::open() {
  const RelayConfig& cfg = *config_;
  const Deadline deadline = Clock::now() + cfg.connect_timeout;
  std::error_code ec, timer_ec;

  timer_.expires_at(deadline);
  auto resolved =
      co_await (resolver_.async_resolve(cfg.host, std::to_string(cfg.port), redirect(ec)) ||
                timer_.async_wait(redirect(timer_ec)));
  if (resolved.index() == 1) {
    co_return unexpected(
        fail(Failure::Kind::kUnavailable, fmt::format("connect failed: timeout resolving the host "
                                                      "(limit {} ms)",
                                                      as_ms(cfg.connect_timeout))));
  }
  if (ec) {
    co_return unexpected(
        fail(Failure::Kind::kUnavailable,
             fmt::format("connect failed: cannot resolve the host: {}", ec.message())));
  }
  auto endpoints = std::get<0>(std::move(resolved));

  timer_.expires_at(deadline);
  auto connected = co_await (asio::async_connect(socket_, endpoints, redirect(ec)) ||
                             timer_.async_wait(redirect(timer_ec)));
  if (connected.index() == 1) {
    co_return unexpected(
        fail(Failure::Kind::kUnavailable,
             fmt::format("connect failed: timeout (limit {} ms)", as_ms(cfg.connect_timeout))));
  }
  if (ec) {
    co_return unexpected(
        fail(Failure::Kind::kUnavailable, fmt::format("connect failed: {}", ec.message())));
  }
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);  // best effort
  MG_LOG_DEBUG("relay#{} connected to {}", id_, peer_);

  Step greeting = co_await read_reply(cfg.greeting_timeout, "greeting");
  if (!greeting) {
    Failure failure = std::move(greeting.error());
    // A timeout stays a timeout (4.4.2); anything else means "not available" (4.4.1).
    if (failure.kind != Failure::Kind::kTimeout) failure.kind = Failure::Kind::kUnavailable;
    co_return unexpected(std::move(failure));
  }
  if (greeting->code != 220) {
    co_return unexpected(fail(Failure::Kind::kUnavailable,
                              fmt::format("unexpected greeting: {}", greeting->summary())));
  }

  const std::string our_name = own_helo_name();
  Step hello_reply = co_await hello(our_name);
  if (hello_reply && !hello_reply->positive()) {
    co_return unexpected(fail(Failure::Kind::kUnavailable,
                              fmt::format("EHLO and HELO refused: {}", hello_reply->summary())));
  }
  if (hello_reply && cfg.starttls && caps_.starttls) {
    std::optional<Failure> failure = co_await start_tls();
    if (failure) co_return unexpected(std::move(*failure));
    if (tls_) {
      hello_reply = co_await hello(our_name);  // RFC 3207 §4.2: capabilities anew under TLS
      if (hello_reply && !hello_reply->positive()) {
        co_return unexpected(fail(Failure::Kind::kUnavailable,
                                  fmt::format("EHLO after STARTTLS refused: {}",
                                              hello_reply->summary())));
      }
    }
  }
  co_return hello_reply;
}

asio::awaitable<std::optional<Failure>> Upstream::start_tls() {
  Step reply = co_await command("STARTTLS", config_->command_timeout);
  if (!reply) co_return std::move(reply.error());
  if (reply->code != 220) {
    if (reply->closes()) co_return Failure{Failure::Kind::kUnavailable, reply->summary()};
    // Opportunistic: the backend offered STARTTLS but will not do it now; go on in plaintext.
    MG_LOG_WARNING("relay#{} {}: STARTTLS refused, continuing without TLS: {}", id_, peer_,
                   reply->summary());
    co_return std::nullopt;
  }
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_,
                                                                      client_tls_context());
  timer_.expires_after(config_->command_timeout);
  std::error_code ec, timer_ec;
  auto result = co_await (tls_->async_handshake(asio::ssl::stream_base::client, redirect(ec)) ||
                          timer_.async_wait(redirect(timer_ec)));
  if (result.index() == 1) {
    co_return fail(Failure::Kind::kUnavailable,
                   fmt::format("TLS handshake timeout (limit {} ms)",
                               as_ms(config_->command_timeout)));
  }
  if (ec) {
    co_return fail(Failure::Kind::kUnavailable,
                   fmt::format("TLS handshake failed: {}", ec.message()));
  }
  SSL* ssl = tls_->native_handle();
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  MG_LOG_DEBUG("relay#{} {}: TLS with the backend: {} with cipher {}", id_, peer_,
               SSL_get_version(ssl), cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "?");
  rbuf_.clear();  // nothing the backend sent in plaintext after 220 counts (CVE-2011-0411)
  co_return std::nullopt;
}

asio::awaitable<Step> Upstream::hello(std::string_view name) {
  const auto timeout = config_->command_timeout;
  const std::string ehlo = fmt::format("EHLO {}", name);  // named: lives across the co_await
  Step reply = co_await command(ehlo, timeout);
  if (!reply) co_return reply;
  if (reply->positive()) {
    caps_ = parse_ehlo_reply(*reply);
    co_return reply;
  }
  if (reply->closes() || !reply->permanent()) co_return reply;
  const std::string helo = fmt::format("HELO {}", name);
  reply = co_await command(helo, timeout);
  if (reply && reply->positive()) caps_ = Capabilities{};
  co_return reply;
}

asio::awaitable<Step> Upstream::xclient(const ClientInfo& client) {
  identity_.reset();
  std::vector<std::string> lines = build_xclient_commands(client, caps_.xclient_attrs);
  if (lines.empty()) co_return smtp::Reply::make(250, "", "XCLIENT has no usable attributes");
  for (const std::string& line : lines) {
    Step reply = co_await command(line, config_->command_timeout);
    if (!reply) co_return reply;
    if (reply->code != 220) {
      if (reply->closes()) co_return reply;
      MG_LOG_WARNING("relay#{} {}: XCLIENT refused: {}", id_, peer_, reply->summary());
      close();  // some attributes may have been applied: the identity is unknown now
      co_return refused_introduction();
    }
  }
  identity_ = client;
  std::string helo = usable_helo_argument(client.helo) ? client.helo : own_helo_name();
  Step reply = co_await hello(helo);
  if (reply && !reply->positive()) {
    if (!reply->closes()) {
      MG_LOG_WARNING("relay#{} {}: EHLO after XCLIENT refused: {}", id_, peer_, reply->summary());
      close();
    }
    identity_.reset();
  }
  co_return reply;
}

std::optional<Step> Upstream::xforward_refused(const Step& reply) {
  if (reply && reply->code == 250) return std::nullopt;
  if (!reply || reply->closes()) return reply;
  MG_LOG_WARNING("relay#{} {}: XFORWARD refused: {}", id_, peer_, reply->summary());
  close();
  return Step(refused_introduction());
}

Expected<std::string, smtp::Reply> Upstream::mail_command(const smtp::MailArgs& mail) const {
  Expected<std::string, smtp::Reply> line = build_mail_command(mail, caps_);
  if (!line) MG_LOG_DEBUG("relay#{} {}: MAIL not sent: {}", id_, peer_, line.error().summary());
  return line;
}

asio::awaitable<Step> Upstream::xforward(const ClientInfo& client) {
  Step last = smtp::Reply::make(250, "", "XFORWARD has no usable attributes");
  for (const std::string& line : build_xforward_commands(client, caps_.xforward_attrs)) {
    last = co_await command(line, config_->command_timeout);
    if (std::optional<Step> refused = xforward_refused(last)) co_return std::move(*refused);
  }
  co_return last;
}

asio::awaitable<Upstream::Opening> Upstream::open_transaction(
    const ClientInfo* xforward_for, const smtp::MailArgs& mail,
    std::optional<std::string_view> rcpt) {
  Opening opening;
  if (broken_) {
    opening.mail = unexpected(Failure{Failure::Kind::kLost, "connection already closed"});
    co_return opening;
  }
  Expected<std::string, smtp::Reply> mail_line = mail_command(mail);
  if (!mail_line) {
    opening.mail = mail_line.error();
    co_return opening;
  }
  std::vector<std::string> lines;
  if (xforward_for) lines = build_xforward_commands(*xforward_for, caps_.xforward_attrs);
  const size_t xforwards = lines.size();
  lines.push_back(std::move(*mail_line));
  if (rcpt) lines.push_back(build_rcpt_command(*rcpt));
  std::string out;
  for (const std::string& line : lines) {
    MG_LOG_DEBUG("relay#{} {} > {}", id_, peer_, line);
    out.append(line).append("\r\n");
  }
  std::optional<Failure> failure = co_await write_all(out, config_->command_timeout, "MAIL");
  if (failure) {
    opening.mail = unexpected(std::move(*failure));
    co_return opening;
  }
  for (size_t i = 0; i < xforwards; ++i) {
    Step reply = co_await read_reply(config_->command_timeout, "reply to XFORWARD");
    if (std::optional<Step> refused = xforward_refused(reply)) {
      opening.mail = std::move(*refused);
      co_return opening;
    }
  }
  opening.mail = co_await read_reply(config_->command_timeout, "reply to MAIL");
  if (opening.mail && opening.mail->positive()) in_transaction_ = true;
  if (rcpt && !broken_) opening.rcpt = co_await read_reply(config_->command_timeout, "reply to RCPT");
  co_return opening;
}

asio::awaitable<Step> Upstream::mail(const smtp::MailArgs& mail) {
  Expected<std::string, smtp::Reply> line = mail_command(mail);
  if (!line) co_return line.error();
  Step reply = co_await command(*line, config_->command_timeout);
  if (reply && reply->positive()) in_transaction_ = true;
  co_return reply;
}

asio::awaitable<Step> Upstream::rcpt(std::string_view address) {
  const std::string line = build_rcpt_command(address);
  Step reply = co_await command(line, config_->command_timeout);
  co_return reply;
}

asio::awaitable<Step> Upstream::data(const std::string& prepend, const spool::Spool& message,
                                     uint64_t skip) {
  if (skip > message.size()) {
    // A caller bug: refuse before DATA rather than send a mangled message.
    MG_LOG_ERROR("relay#{} {}: asked to skip {} octets of a {}-octet message", id_, peer_, skip,
                 message.size());
    co_return gateway_reply(Failure{Failure::Kind::kLocal, "bad skip"});
  }
  Step reply = co_await command("DATA", config_->data_init_timeout);
  if (!reply || reply->code != 354) co_return reply;
  std::optional<Failure> failure = co_await stream_message(prepend, message, skip);
  if (failure) {
    co_return unexpected(std::move(*failure));
  }
  in_transaction_ = false;
  co_return co_await read_reply(config_->data_end_timeout, "reply to end of data");
}

asio::awaitable<std::optional<Failure>> Upstream::stream_message(const std::string& prepend,
                                                                 const spool::Spool& message,
                                                                 uint64_t skip) {
  DotStuffer stuffer;
  std::string out;
  out.reserve(kWriteBlock + kWriteBlock / 4);
  std::string chunk;
  stuffer.feed(prepend, out);
  spool::Spool::Reader reader(message);
  uint64_t sent = 0;
  while (reader.next(chunk, kWriteBlock)) {
    std::string_view piece = chunk;
    if (skip > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(skip, piece.size()));
      piece.remove_prefix(n);
      skip -= n;
    }
    stuffer.feed(piece, out);
    if (out.size() >= kWriteBlock) {
      std::optional<Failure> failure =
          co_await write_all(out, config_->data_block_timeout, "message data");
      if (failure) co_return failure;
      sent += out.size();
      out.clear();
    }
  }
  if (message.error()) {
    // Never send the final dot for a message we could not read in full: closing the connection
    // makes the backend discard the partial transaction.
    co_return fail(Failure::Kind::kLocal,
                   fmt::format("cannot read the spooled message after {} octets: {}", sent,
                               message.error().message()));
  }
  stuffer.finish(out);
  std::optional<Failure> failure =
      co_await write_all(out, config_->data_block_timeout, "message data");
  if (failure) co_return failure;
  MG_LOG_DEBUG("relay#{} {} > ({} octets of message data)", id_, peer_, sent + out.size());
  co_return std::nullopt;
}

asio::awaitable<Step> Upstream::authenticate(const Credentials& credentials) {
  const auto timeout = config_->command_timeout;
  if (caps_.auth_offers("PLAIN")) {
    std::string response = credentials.authzid;
    response += '\0';
    response += credentials.user;
    response += '\0';
    response += credentials.password;
    std::string line = "AUTH PLAIN " + smtp::base64_encode(response);
    smtp::wipe(response);
    Step reply = co_await command(line, timeout, /*secret=*/true);
    smtp::wipe(line);
    if (reply && reply->code == 235) authenticated_ = true;
    co_return reply;
  }
  if (caps_.auth_offers("LOGIN")) {
    Step reply = co_await command("AUTH LOGIN", timeout);
    if (!reply || reply->code != 334) co_return reply;
    std::string line = smtp::base64_encode(credentials.user);
    reply = co_await command(line, timeout, /*secret=*/true);
    if (!reply || reply->code != 334) co_return reply;
    line = smtp::base64_encode(credentials.password);
    reply = co_await command(line, timeout, /*secret=*/true);
    smtp::wipe(line);
    if (reply && reply->code == 235) authenticated_ = true;
    co_return reply;
  }
  co_return smtp::Reply::make(504, "5.5.4", "Backend offers neither AUTH PLAIN nor LOGIN");
}

asio::awaitable<Step> Upstream::rset() {
  Step reply = co_await command("RSET", config_->command_timeout);
  if (reply && reply->code == 250) in_transaction_ = false;
  co_return reply;
}

asio::awaitable<void> Upstream::quit() {
  quiet_ = true;
  if (!broken_) {
    (void)co_await command("QUIT", std::min(config_->command_timeout, kQuitTimeout));
  }
  close();
}

}  // namespace mailgate::relay
