// plugins/milter/connection.h — one socket to one milter: the address forms Postfix and
// sendmail accept ("inet:PORT@HOST", "inet6:PORT@HOST", "unix:/path", "local:/path"), a connect
// bounded in time, and whole packets written and read, each bounded by a deadline.
//
// Owns: the file descriptor (closed by the destructor), poll()-based deadlines, the packet
// reader of that socket. Errors are returned as text naming the milter's socket; nothing
// throws past parse_endpoint().
// Must not touch: what the packets mean (protocol.h) or the conversation (client.h).
// Threads: one Connection belongs to one session, used by one thread at a time. Blocking: the
// plugin runs on the gateway's worker pool, never on an I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol.h"

namespace mailgate::milter_client {

struct Endpoint {
  enum class Kind { kInet, kInet6, kUnix };
  Kind kind = Kind::kInet;
  std::string host;  // kInet/kInet6: address or name
  std::uint16_t port = 0;
  std::string path;  // kUnix
  std::string text;  // as configured, for messages
};

// Parses a socket setting; "" on success, else what is wrong.
std::string parse_endpoint(std::string_view text, Endpoint* out);

class Connection {
 public:
  Connection() = default;
  ~Connection() { close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects within `timeout`; "" on success, else the error.
  std::string open(const Endpoint& endpoint, std::chrono::milliseconds timeout);
  bool is_open() const noexcept { return fd_ >= 0; }
  void close() noexcept;

  // Writes all of `bytes` within `timeout`; "" or the error.
  std::string write(std::string_view bytes, std::chrono::milliseconds timeout);
  // Reads one packet within `timeout`; "" or the error (timeout, closed, framing).
  std::string read(Packet* out, std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  bool tcp_ = false;  // TCP (not a unix socket): TCP_NODELAY and TCP_QUICKACK apply
  PacketReader reader_;
};

}  // namespace mailgate::milter_client
