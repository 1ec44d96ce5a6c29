// net/connection_write.h — writing bytes to a client or backend connection, plain or TLS.
// Owns nothing. A short reply usually fits the socket's send buffer: on a plain socket it is
// written at once with one non-blocking send(2), which saves the completion handler (and the
// event-loop turn) an asynchronous write costs; what does not fit, and anything over TLS
// (whose records are the TLS layer's job), is written asynchronously under the connection's
// watchdog.
// Must not touch: the socket beyond writing to it.
// Thread-safety: the connection's io_context thread only.
#pragma once

#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>

#include "net/socket_watchdog.h"

namespace mailgate::net {

// How a write ended: `timed_out` when the deadline passed (the write was cancelled), else
// `ec` (none when everything was written).
struct WriteResult {
  std::error_code ec;
  bool timed_out = false;
  bool ok() const { return !ec && !timed_out; }
};

// Writes all of `bytes` to `socket`, or through `tls` when it is not null. The asynchronous
// part must end by `deadline`.
asio::awaitable<WriteResult> write_to_connection(
    asio::ip::tcp::socket& socket, asio::ssl::stream<asio::ip::tcp::socket&>* tls,
    std::string_view bytes, SocketWatchdog& watchdog, SocketWatchdog::Clock::time_point deadline);

}  // namespace mailgate::net
