// net/write_now.h — a write attempted at once on a non-blocking TCP socket.
// Owns nothing. A short reply usually fits the socket's send buffer: writing it inline
// saves the completion handler (and the event-loop turn) an asynchronous write costs.
// The caller writes what is left, if anything, asynchronously.
// Must not touch: TLS streams (their records are the TLS layer's job).
#pragma once

#include <cerrno>
#include <cstddef>
#include <string_view>
#include <system_error>

#include <sys/socket.h>

#include <asio/ip/tcp.hpp>

namespace mailgate::net {

// Bytes of `bytes` written now (possibly 0). `ec` is set only for a real error, not when the
// send buffer is full.
inline size_t write_now(asio::ip::tcp::socket& socket, std::string_view bytes,
                        std::error_code& ec) {
  size_t done = 0;
  const int fd = socket.native_handle();
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    ec = std::error_code(n < 0 ? errno : EPIPE, std::system_category());
    break;
  }
  return done;
}

}  // namespace mailgate::net
