// smtp/client_stream.cc — see client_stream.h.
#include "smtp/client_stream.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include <openssl/ssl.h>

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "net/connection_write.h"

namespace mailgate::smtp {
namespace {

// A session starts with a buffer for command lines (at most 512 octets) and grows it to
// 2 * kReadChunk once a read fills it (DATA streaming in), then keeps it: an idle session
// waiting for its client holds 1 KiB, not 32.
constexpr size_t kFirstBuffer = 1024;
constexpr size_t kReadChunk = 16 * 1024;

}  // namespace

ClientStream::ClientStream(asio::ip::tcp::socket socket)
    : socket_(std::move(socket)), watchdog_(socket_) {
  std::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
}

ClientStream::~ClientStream() = default;

asio::awaitable<bool> ClientStream::talked_within(std::chrono::milliseconds pause) {
  std::error_code ec;
  if (pause.count() > 0) {
    asio::steady_timer pause_timer(socket_.get_executor());
    pause_timer.expires_after(pause);
    co_await pause_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  const size_t waiting = socket_.available(ec);
  co_return has_buffered_input() || (!ec && waiting > 0);
}

void ClientStream::cancel() {
  cancelled_ = true;
  std::error_code ignored;
  socket_.cancel(ignored);
}

void ClientStream::close() {
  watchdog_.stop();
  std::error_code ignored;
  socket_.close(ignored);  // the only descriptor of the connection: close(2) sends the FIN
}

void ClientStream::consume(size_t n) {
  in_begin_ += n;
  if (in_begin_ >= in_end_) in_begin_ = in_end_ = 0;
}

void ClientStream::make_room() {
  const size_t unread = in_end_ - in_begin_;
  if (in_begin_ > 0) {  // unread bytes (at most a partial line or a DATA tail) to the front
    std::memmove(in_.get(), in_.get() + in_begin_, unread);
    in_end_ = unread;
    in_begin_ = 0;
  }
  size_t capacity = in_capacity_;
  if (capacity == 0) {
    capacity = kFirstBuffer;
  } else if (grow_ || in_end_ == capacity ||
             (capacity >= 2 * kReadChunk && capacity - in_end_ < kReadChunk)) {
    // The last read filled the buffer (a message is streaming in), or too little room is left.
    capacity = std::max(2 * kReadChunk, in_end_ + kReadChunk);
  }
  grow_ = false;
  if (capacity == in_capacity_) return;
  std::unique_ptr<char[]> bigger(new char[capacity]);  // never zero-filled
  if (in_end_ > 0) std::memcpy(bigger.get(), in_.get(), in_end_);
  in_ = std::move(bigger);
  in_capacity_ = capacity;
}

asio::awaitable<LineStatus> ClientStream::read_some(std::chrono::milliseconds timeout) {
  if (cancelled_) co_return LineStatus::kCancelled;
  make_room();
  const size_t space = in_capacity_ - in_end_;
  std::error_code ec;
  watchdog_.arm_after(timeout);
  size_t n = 0;
  auto room = asio::buffer(in_.get() + in_end_, space);
  if (tls_) {
    n = co_await tls_->async_read_some(room, asio::redirect_error(asio::use_awaitable, ec));
  } else {
    n = co_await socket_.async_read_some(room, asio::redirect_error(asio::use_awaitable, ec));
  }
  watchdog_.disarm();
  if (cancelled_) co_return LineStatus::kCancelled;
  if (watchdog_.timed_out()) co_return LineStatus::kTimedOut;
  if (ec || n == 0) co_return LineStatus::kClosed;
  in_end_ += n;
  if (n == space && in_capacity_ < 2 * kReadChunk) grow_ = true;
  co_return LineStatus::kOk;
}

asio::awaitable<LineStatus> ClientStream::fill(std::chrono::milliseconds timeout) {
  // (No co_await inside && or ?: here: GCC 12 miscompiles those in coroutines.)
  if (!out_.empty()) {
    bool flushed = co_await flush(timeout);
    if (!flushed) co_return LineStatus::kClosed;
  }
  LineStatus status = co_await read_some(timeout);
  co_return status;
}

asio::awaitable<LineStatus> ClientStream::read_line(size_t max_length,
                                                    std::chrono::milliseconds timeout) {
  bool discarding = false;  // an over-long line is being skipped up to its LF
  for (;;) {
    std::string_view avail = buffered();
    size_t lf = avail.find('\n');
    if (lf != std::string_view::npos) {
      if (discarding) {
        consume(lf + 1);
        line_.clear();
        co_return LineStatus::kTooLong;
      }
      size_t length = lf;  // without LF
      bool crlf = length > 0 && avail[length - 1] == '\r';
      if (crlf) --length;
      if (length + 2 > max_length) {
        consume(lf + 1);
        line_.clear();
        co_return LineStatus::kTooLong;
      }
      line_.assign(avail.data(), length);
      consume(lf + 1);
      if (line_.find('\r') != std::string::npos) co_return LineStatus::kBareCr;
      co_return crlf ? LineStatus::kOk : LineStatus::kBareLf;
    }
    if (avail.size() > max_length) {
      // No LF within the limit: drop what we have and skip to the end of this line.
      consume(avail.size());
      discarding = true;
    }
    // Nothing complete buffered: the client waits for our replies before sending more.
    if (!out_.empty()) {
      bool flushed = co_await flush(timeout);
      if (!flushed) co_return LineStatus::kClosed;
    }
    LineStatus status = co_await read_some(timeout);
    if (status != LineStatus::kOk) co_return status;
  }
}

asio::awaitable<bool> ClientStream::flush(std::chrono::milliseconds timeout) {
  if (out_.empty()) co_return true;
  const net::WriteResult written = co_await net::write_to_connection(
      socket_, tls_.get(), out_, watchdog_, net::SocketWatchdog::Clock::now() + timeout);
  out_.clear();
  co_return written.ok();
}

asio::awaitable<std::string> ClientStream::start_tls(
    std::shared_ptr<const net::TlsContext> context, std::chrono::milliseconds timeout) {
  if (tls_) co_return "TLS already active";
  if (!out_.empty()) {
    bool flushed = co_await flush(timeout);
    if (!flushed) co_return "lost connection before the handshake";
  }
  discard_buffered();
  tls_context_ = std::move(context);
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_,
                                                                      tls_context_->native());
  std::error_code ec;
  watchdog_.arm_after(timeout);
  co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                 asio::redirect_error(asio::use_awaitable, ec));
  watchdog_.disarm();
  std::string why;
  if (cancelled_) {
    why = "cancelled";
  } else if (watchdog_.timed_out()) {
    why = "handshake timeout";
  } else if (ec) {
    why = ec.message();  // for OpenSSL errors, the reason string
    if (why.empty()) why = "handshake failed";
  }
  if (!why.empty()) tls_.reset();  // no TLS session: the connection is only closed now
  co_return why;
}

asio::awaitable<void> ClientStream::shutdown_tls(std::chrono::milliseconds timeout) {
  if (!tls_ || cancelled_ || !socket_.is_open()) co_return;
  std::error_code ec;
  watchdog_.arm_after(timeout);
  co_await tls_->async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  watchdog_.disarm();
}

net::TlsInfo ClientStream::tls_info() const {
  net::TlsInfo info;
  if (!tls_) return info;
  SSL* ssl = const_cast<asio::ssl::stream<asio::ip::tcp::socket&>&>(*tls_).native_handle();
  info.version = SSL_get_version(ssl);
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  if (cipher != nullptr) {
    info.cipher = SSL_CIPHER_get_name(cipher);
    info.bits = SSL_CIPHER_get_bits(cipher, nullptr);
  }
  return info;
}

}  // namespace mailgate::smtp
