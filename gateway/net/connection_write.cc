// net/connection_write.cc — see connection_write.h.
#include "net/connection_write.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace mailgate::net {
namespace {

// Bytes of `bytes` written now (possibly 0). `ec` is set only for a real error, not when the
// send buffer is full.
size_t write_now(asio::ip::tcp::socket& socket, std::string_view bytes, std::error_code& ec) {
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

}  // namespace

asio::awaitable<WriteResult> write_to_connection(
    asio::ip::tcp::socket& socket, asio::ssl::stream<asio::ip::tcp::socket&>* tls,
    std::string_view bytes, SocketWatchdog& watchdog, SocketWatchdog::Clock::time_point deadline) {
  WriteResult result;
  std::error_code& ec = result.ec;
  if (!tls) {
    bytes.remove_prefix(write_now(socket, bytes, ec));
    if (ec || bytes.empty()) co_return result;
  }
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  watchdog.arm(deadline);
  if (tls) {
    co_await asio::async_write(*tls, asio::buffer(bytes.data(), bytes.size()), token);
  } else {
    co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), token);
  }
  watchdog.disarm();
  result.timed_out = watchdog.timed_out();
  co_return result;
}

}  // namespace mailgate::net
