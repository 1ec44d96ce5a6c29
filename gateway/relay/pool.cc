// relay/pool.cc — UpstreamPool and its Impl: idle backend connections of one io_context.
// Owns: the idle list (oldest first; taken most-recent first so old ones age out), its expiry
// timer, and polite closing (QUIT in a detached coroutine). Must not touch: connections that
// are in use (those belong to their RelaySession until release()).
#include "relay/pool.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <deque>
#include <utility>

#include "log/log.h"
#include "relay/relay_session.h"

namespace mailgate::relay {
namespace {

using Clock = std::chrono::steady_clock;

asio::awaitable<void> quit_politely(std::unique_ptr<Upstream> upstream) {
  try {
    co_await upstream->quit();
  } catch (const std::exception& e) {
    MG_LOG_DEBUG("relay#{}: error while closing: {}", upstream->id(), e.what());
  }
}

}  // namespace

struct UpstreamPool::Impl::Idle : std::enable_shared_from_this<Idle> {
  Idle(asio::any_io_executor ex, std::shared_ptr<const RelayConfig> cfg)
      : executor(std::move(ex)), config(std::move(cfg)), timer(executor) {}

  void retire(std::unique_ptr<Upstream> upstream) {
    if (!upstream) return;
    if (upstream->broken()) return;  // already closed; destroying it is enough
    asio::co_spawn(executor, quit_politely(std::move(upstream)), asio::detached);
  }

  bool expired(const Upstream& upstream, Clock::time_point now) const {
    return now - upstream.idle_since() >= config->pool_idle_timeout;
  }

  void expire(Clock::time_point now) {
    while (!conns.empty() && expired(*conns.front(), now)) {
      MG_LOG_DEBUG("relay#{}: idle connection expired", conns.front()->id());
      retire(std::move(conns.front()));
      conns.pop_front();
    }
  }

  // Wakes up when the oldest idle connection expires. The handler holds only a weak pointer,
  // so it does nothing once the pool is gone.
  void arm() {
    if (armed || conns.empty()) return;
    armed = true;
    timer.expires_at(conns.front()->idle_since() + config->pool_idle_timeout);
    timer.async_wait([weak = weak_from_this()](std::error_code ec) {
      std::shared_ptr<Idle> self = weak.lock();
      if (!self) return;
      self->armed = false;
      if (ec) return;
      self->expire(Clock::now());
      self->arm();
    });
  }

  asio::any_io_executor executor;
  std::shared_ptr<const RelayConfig> config;
  std::deque<std::unique_ptr<Upstream>> conns;  // oldest first
  asio::steady_timer timer;
  bool armed = false;
};

UpstreamPool::Impl::Impl(asio::any_io_executor ex, RelayConfig cfg)
    : executor(std::move(ex)),
      config(std::make_shared<const RelayConfig>(std::move(cfg))),
      idle_(std::make_shared<Idle>(executor, config)) {}

UpstreamPool::Impl::~Impl() {
  // The io_context may not run again: close at once rather than QUIT.
  for (auto& upstream : idle_->conns) upstream->close();
  idle_->conns.clear();
  idle_->timer.cancel();
}

std::unique_ptr<Upstream> UpstreamPool::Impl::acquire(const ClientInfo& client) {
  idle_->expire(Clock::now());
  auto& conns = idle_->conns;
  while (!conns.empty()) {
    std::unique_ptr<Upstream> upstream = std::move(conns.back());
    conns.pop_back();
    if (!upstream->probably_alive()) {
      MG_LOG_DEBUG("relay#{}: idle connection closed by the backend", upstream->id());
      upstream->close();
      continue;
    }
    if (!upstream->can_serve(client, config->use_xclient)) {
      retire(std::move(upstream));
      continue;
    }
    MG_LOG_DEBUG("relay#{}: reusing idle connection", upstream->id());
    return upstream;
  }
  return nullptr;
}

void UpstreamPool::Impl::give_back(std::unique_ptr<Upstream> upstream) {
  if (!upstream || upstream->broken()) return;
  // Not probed for a close by the backend here: acquire() probes before reuse.
  if (upstream->in_transaction() || config->pool_max_idle == 0) {
    retire(std::move(upstream));
    return;
  }
  // Introduced with XCLIENT to a client the backend no longer lets us replace: useless to
  // anyone else (Postfix checks XCLIENT authorisation against the overridden address).
  if (upstream->identity() && !(config->use_xclient && upstream->caps().xclient)) {
    retire(std::move(upstream));
    return;
  }
  upstream->set_idle_since(Clock::now());
  idle_->conns.push_back(std::move(upstream));
  while (idle_->conns.size() > config->pool_max_idle) {
    retire(std::move(idle_->conns.front()));
    idle_->conns.pop_front();
  }
  idle_->arm();
}

void UpstreamPool::Impl::retire(std::unique_ptr<Upstream> upstream) {
  idle_->retire(std::move(upstream));
}

void UpstreamPool::Impl::close_idle() {
  while (!idle_->conns.empty()) {
    retire(std::move(idle_->conns.front()));
    idle_->conns.pop_front();
  }
  idle_->timer.cancel();
}

size_t UpstreamPool::Impl::idle_count() const { return idle_->conns.size(); }

// --- UpstreamPool ------------------------------------------------------------------------

UpstreamPool::UpstreamPool(asio::any_io_executor executor, RelayConfig config)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(config))) {}

UpstreamPool::~UpstreamPool() = default;

std::unique_ptr<BackendSession> UpstreamPool::new_session() {
  return std::make_unique<RelaySession>(*impl_);
}

void UpstreamPool::close_idle() { impl_->close_idle(); }

size_t UpstreamPool::idle_count() const { return impl_->idle_count(); }

}  // namespace mailgate::relay
