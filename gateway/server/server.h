// server/server.h — the daemon's process-level machinery: I/O threads, listeners, the
// accept loop, connection limits, signals (SIGTERM/SIGINT drain, SIGHUP reload).
// Owns: one io_context per I/O thread (each with its own backend pool, its sessions and its
// own acceptor on every listener: with several threads the listeners are bound SO_REUSEPORT
// once per thread, so the kernel spreads connections and none crosses threads), and the
// control io_context on the main thread that runs signals, reload and the drain.
// Must not touch: SMTP semantics (smtp/session) or the backend protocol (relay/).
// Thread-safety: public methods are called from the main thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace mailgate::server {

class PluginHost;

class Server {
 public:
  // `plugins` may be null (no plugin chain); it must outlive the server.
  Server(config::GatewayConfig config, const char* argv0, PluginHost* plugins = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens every listener. Returns an error naming the listener ("--listen=ADDR:PORT: cannot
  // bind: Address already in use") or empty on success. run() logs "listening on ADDR:PORT"
  // once it serves them.
  std::string bind();

  // Gives sessions their plugin chains (call before run(); may be left out: no plugins).
  void attach_plugins(PluginHost* plugins);

  // Serves until SIGTERM/SIGINT and the drain that follows. Returns the exit status.
  int run();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailgate::server
