// relay/pool.h — per-thread pool of idle backend connections and the factory of
// BackendSessions that use it.
// Owns: idle Upstream connections of one io_context (no locks: one pool per I/O thread),
// their idle expiry, and RelaySession, the real relay::BackendSession.
// Must not touch: the client side of a session.
// Thread-safety: a pool and every session it makes run on one io_context's thread.
#pragma once

#include <memory>

#include <asio/any_io_executor.hpp>

#include "relay/backend.h"
#include "relay/relay_config.h"

namespace mailgate::relay {

class UpstreamPool {
 public:
  UpstreamPool(asio::any_io_executor executor, RelayConfig config);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // A new BackendSession for one client session. It takes connections from this pool when
  // a transaction starts and gives them back on release(). The pool must outlive it.
  std::unique_ptr<BackendSession> new_session();

  // Closes every idle connection (on shutdown).
  void close_idle();

  size_t idle_count() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailgate::relay
