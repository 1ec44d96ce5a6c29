// smtp/client_stream.h — the client connection of one session: a buffered socket that reads
// command lines and raw DATA bytes, batches replies, and enforces the session's deadline.
// Owns: the socket and, after STARTTLS or on an implicit-TLS listener, the TLS layer over it
// (asio::ssl::stream holding an OpenSSL SSL*); the input buffer (reused for the whole session,
// never per line; 1 KiB until DATA needs more), the output buffer of pending replies, and the
// idle/slow-client watchdog.
// Must not touch: SMTP semantics (what a command means is session.cc's business).
// Thread-safety: used by one session coroutine on its io_context's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>

#include "net/socket_watchdog.h"
#include "net/tls_context.h"
#include "obs/metrics.h"
#include "smtp/reply.h"

namespace mailgate::smtp {

// Why a command line could not be read.
enum class LineStatus {
  kOk,         // a complete line ending in CRLF
  kBareLf,     // a line ended by LF without CR (line() holds it without the LF)
  kBareCr,     // the line holds a CR not followed by LF
  kTooLong,    // longer than the limit; the rest up to the next LF was discarded
  kClosed,     // the peer closed or reset the connection
  kTimedOut,   // no complete line within the deadline
  kCancelled,  // cancel() was called (shutdown)
};

class ClientStream {
 public:
  explicit ClientStream(asio::ip::tcp::socket socket);
  ~ClientStream();
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  asio::ip::tcp::socket& socket() { return socket_; }

  // Reads the next command line (without its line ending) into line(). Flushes pending
  // replies first if no complete line is buffered (so pipelined replies go out together).
  asio::awaitable<LineStatus> read_line(size_t max_length, std::chrono::milliseconds timeout);
  std::string_view line() const { return line_; }

  // True when a complete or partial next command is already buffered (client pipelined).
  bool has_buffered_input() const { return in_begin_ < in_end_; }

  // Waits `pause` (none when zero), then tells whether the client has sent anything: before
  // the greeting, any byte is a protocol violation (an "early talker", typically a bot that
  // does not wait for the server).
  asio::awaitable<bool> talked_within(std::chrono::milliseconds pause);

  // Raw access for DATA: buffered() returns unread bytes, consume() marks some read, and
  // fill() reads more from the socket (flushing replies first). fill() returns the status:
  // kOk, kClosed, kTimedOut or kCancelled.
  std::string_view buffered() const {
    return in_begin_ == in_end_ ? std::string_view()
                                : std::string_view(in_.get() + in_begin_, in_end_ - in_begin_);
  }
  void consume(size_t n);
  asio::awaitable<LineStatus> fill(std::chrono::milliseconds timeout);
  // Drops everything buffered (STARTTLS injection defence, improper pipelining).
  void discard_buffered() { in_begin_ = in_end_ = 0; }

  // Starts TLS as the server: writes pending replies (the 220 to STARTTLS) in plaintext, drops
  // whatever plaintext is still buffered (bytes sent after STARTTLS before the handshake,
  // CVE-2011-0411: they must never count as commands sent under TLS), then runs the handshake
  // within `timeout`. From then on every read and write goes through TLS. Returns an empty
  // string on success, else why the handshake failed (for the log). The context is kept
  // alive by the stream for the rest of the connection.
  asio::awaitable<std::string> start_tls(std::shared_ptr<const net::TlsContext> context,
                                         std::chrono::milliseconds timeout);
  bool tls_active() const { return tls_ != nullptr; }
  // Ends TLS politely (close_notify), waiting at most `timeout` for the peer's; a no-op
  // without TLS. Call before close().
  asio::awaitable<void> shutdown_tls(std::chrono::milliseconds timeout);
  // Protocol and cipher of the TLS layer; empty values without TLS.
  net::TlsInfo tls_info() const;

  // Queues a reply; it is written by flush() or before the next read.
  void queue(const Reply& reply) {
    obs::count_reply(reply.code);
    reply.append_wire(out_);
  }
  bool has_pending_output() const { return !out_.empty(); }
  // Writes queued replies. Returns false when the write failed or timed out.
  asio::awaitable<bool> flush(std::chrono::milliseconds timeout);

  // Stops any read in progress; it returns kCancelled. Safe to call from the session's thread.
  void cancel();
  bool cancelled() const { return cancelled_; }
  void close();
  // A message body follows (DATA accepted): the next read gets the large buffer at once
  // rather than after a first read has filled the small one.
  void expect_message() { grow_ = true; }

 private:
  asio::awaitable<LineStatus> read_some(std::chrono::milliseconds timeout);
  // Unread bytes moved to the front of the input buffer; the buffer allocated (small) or
  // grown (when the last read filled it, or a line does not fit) as needed.
  void make_room();
  asio::ip::tcp::socket socket_;
  std::shared_ptr<const net::TlsContext> tls_context_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  net::SocketWatchdog watchdog_;  // after socket_, which it watches
  bool cancelled_ = false;
  std::unique_ptr<char[]> in_;  // in_capacity_ bytes; null until the first read
  size_t in_capacity_ = 0;
  bool grow_ = false;  // the last read filled the buffer: grow it before the next
  size_t in_begin_ = 0;
  size_t in_end_ = 0;
  std::string line_;
  std::string out_;
};

}  // namespace mailgate::smtp
