// server/server.cc — see server.h.
#include "server/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/write.hpp>

#include "log/log.h"
#include "net/auth_throttle.h"
#include "net/connection_limiter.h"
#include "net/tls_context.h"
#include "obs/metrics.h"
#include "relay/pool.h"
#include "server/plugin_host.h"
#include "smtp/session.h"

namespace mailgate::server {
namespace {

using Clock = std::chrono::steady_clock;

// One I/O thread: its io_context, its backend pool and the sessions running on it.
struct Worker {
  explicit Worker(const relay::RelayConfig& relay)
      : guard(asio::make_work_guard(ctx)),
        pool(ctx.get_executor(), relay),
        completions(std::make_shared<chain::PostTarget>(ctx.get_executor())) {}
  // Plugin calls abandoned after their timeout may finish later: stop them posting here
  // before the io_context goes.
  ~Worker() { completions->close(); }
  asio::io_context ctx{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  relay::UpstreamPool pool;
  std::shared_ptr<chain::PostTarget> completions;
  std::unordered_set<smtp::Session*> sessions;  // touched on this worker's thread only
  std::thread thread;
};

struct Listener {
  config::ListenerSpec spec;
  // One per worker, at the worker's index, on its io_context (bound SO_REUSEPORT when there
  // are several); each is touched by its worker's thread only once run() started.
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
  std::string bound;  // "ADDR:PORT" with the real port
};

std::string endpoint_text(const asio::ip::tcp::endpoint& ep) {
  if (ep.address().is_v6()) return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

struct Server::Impl {
  Impl(config::GatewayConfig c, const char* a, PluginHost* p)
      : config(std::move(c)),
        argv0(a),
        plugins(p),
        session_config(std::make_shared<const smtp::SessionConfig>(config.session)),
        limiter(config.max_connections, config.max_connections_per_ip),
        auth_throttle(config.auth_max_failures, config.auth_failure_window),
        signals(control) {}

  asio::awaitable<void> accept_loop(Listener& listener, Worker& worker,
                                    asio::ip::tcp::acceptor& acceptor);
  // What a new session starts with (SIGHUP swaps both on the control thread).
  std::shared_ptr<const smtp::SessionConfig> current_session_config() const;
  std::shared_ptr<const net::TlsContext> current_tls() const;
  // Opens the acceptors of one listener, one per worker; an error names the listener.
  std::string open_listener(const config::ListenerSpec& spec);
  asio::awaitable<void> refuse(asio::ip::tcp::socket socket, smtp::Reply reply);
  asio::awaitable<void> session_main(Worker& worker, asio::ip::tcp::socket socket,
                                     net::ConnectionLimiter::Ticket ticket,
                                     std::shared_ptr<const smtp::SessionConfig> cfg,
                                     smtp::ListenerInfo info, std::string id,
                                     smtp::ChainBinding chain);
  void on_signal(int signo);
  void reload();
  // Builds the TLS context from `c`'s files (reload: on error keeps the running one).
  std::string load_tls(const config::GatewayConfig& c);
  void begin_shutdown();
  asio::awaitable<void> drain();
  void signal_sessions();
  std::string next_session_id();

  config::GatewayConfig config;
  const char* argv0;
  PluginHost* plugins;
  // session_config and tls are written by the control thread (under shared_mu) and read by
  // the workers' accept loops (current_*()).
  mutable std::mutex shared_mu;
  std::shared_ptr<const smtp::SessionConfig> session_config;  // swapped on SIGHUP
  net::ConnectionLimiter limiter;
  // New sessions take the current context; open ones keep theirs (SIGHUP swaps it).
  std::shared_ptr<const net::TlsContext> tls;
  net::AuthThrottle auth_throttle;
  asio::io_context control{1};
  asio::signal_set signals;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<Listener> listeners;
  std::atomic<uint64_t> session_counter{0};
  std::atomic<bool> stopping{false};
};

std::shared_ptr<const smtp::SessionConfig> Server::Impl::current_session_config() const {
  std::lock_guard lock(shared_mu);
  return session_config;
}

std::shared_ptr<const net::TlsContext> Server::Impl::current_tls() const {
  std::lock_guard lock(shared_mu);
  return tls;
}

std::string Server::Impl::next_session_id() {
  // 12 hex digits: the low 24 bits of the start time, then a counter; unique per process
  // and, across restarts, for 194 days.
  static const uint32_t base = static_cast<uint32_t>(std::time(nullptr)) & 0xFFFFFF;
  const uint64_t n = session_counter.fetch_add(1, std::memory_order_relaxed) + 1;
  return fmt::format("{:06X}{:06X}", base, n & 0xFFFFFF);
}

asio::awaitable<void> Server::Impl::refuse(asio::ip::tcp::socket socket, smtp::Reply reply) {
  std::error_code ec;
  std::string wire = reply.wire();
  obs::count_reply(reply.code);
  co_await asio::async_write(socket, asio::buffer(wire), asio::redirect_error(asio::use_awaitable, ec));
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

asio::awaitable<void> Server::Impl::session_main(Worker& worker, asio::ip::tcp::socket socket,
                                                 net::ConnectionLimiter::Ticket ticket,
                                                 std::shared_ptr<const smtp::SessionConfig> cfg,
                                                 smtp::ListenerInfo info, std::string id,
                                                 smtp::ChainBinding chain) {
  obs::OpenConnection counted;  // mailgate_connections_open / _total
  smtp::Session session(std::move(socket), std::move(cfg), worker.pool.new_session(),
                        std::move(info), std::move(id), std::move(chain));
  worker.sessions.insert(&session);
  try {
    co_await session.run();
  } catch (const std::exception& e) {
    MG_LOG_ERROR("{}: session ended by error: {}", session.id(), e.what());
  }
  worker.sessions.erase(&session);
  ticket.release();
}

asio::awaitable<void> Server::Impl::accept_loop(Listener& listener, Worker& worker,
                                                asio::ip::tcp::acceptor& acceptor) {
  for (;;) {
    std::error_code ec;
    asio::ip::tcp::endpoint remote;  // from accept(2) itself: no getpeername(2)
    asio::ip::tcp::socket socket =
        co_await acceptor.async_accept(remote, asio::redirect_error(asio::use_awaitable, ec));
    if (stopping.load()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // EMFILE/ENFILE and friends: log, back off briefly, keep serving.
      MG_LOG_WARNING("accept on {}: {}", listener.bound, ec.message());
      asio::steady_timer pause(worker.ctx, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    net::ConnectionLimiter::Ticket ticket;
    auto verdict = limiter.acquire(remote.address(), &ticket);
    std::shared_ptr<const smtp::SessionConfig> cfg = current_session_config();
    const std::string& host = cfg->hostname;
    if (verdict != net::ConnectionLimiter::Verdict::kAccepted) {
      bool total = verdict == net::ConnectionLimiter::Verdict::kTotal;
      (total ? obs::metrics().connections_refused_total
             : obs::metrics().connections_refused_client)
          .inc();
      MG_LOG_WARNING("refused connection from {}: too many connections{}", endpoint_text(remote),
                     total ? "" : " from this client");
      smtp::Reply r = smtp::Reply::make(
          421, "4.7.0",
          host + (total ? " Too many connections, try again later"
                        : " Too many connections from your address, try again later"));
      if (listener.spec.implicit_tls) {
        socket.close(ec);  // a plaintext reply means nothing to a TLS client
      } else {
        asio::co_spawn(worker.ctx, refuse(std::move(socket), std::move(r)), asio::detached);
      }
      continue;
    }
    smtp::ListenerInfo info;
    info.address = listener.bound;
    info.profile = listener.spec.profile;
    info.tls = current_tls();
    info.implicit_tls = listener.spec.implicit_tls;
    info.submission = listener.spec.submission;
    info.auth_throttle = &auth_throttle;
    info.peer = remote;
    smtp::ChainBinding chain =
        plugins != nullptr ? plugins->chain_for(listener.spec.profile) : smtp::ChainBinding{};
    chain.completions = worker.completions;
    asio::co_spawn(worker.ctx,
                   session_main(worker, std::move(socket), std::move(ticket), std::move(cfg),
                                std::move(info), next_session_id(), std::move(chain)),
                   [](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       MG_LOG_ERROR("session failed: {}", ex.what());
                     }
                   });
  }
}

void Server::Impl::signal_sessions() {
  for (auto& w : workers) {
    asio::post(w->ctx, [worker = w.get()] {
      // shutdown() may end a session, which erases itself from the set later (not here).
      for (smtp::Session* s : worker->sessions) s->shutdown();
    });
  }
}

std::string Server::Impl::load_tls(const config::GatewayConfig& c) {
  if (c.tls_cert.empty()) {
    bool implicit = false;
    for (const Listener& l : listeners) implicit = implicit || l.spec.implicit_tls;
    if (implicit && tls) return "--tls_cert: needed by the implicit-TLS listeners";
    if (tls) MG_LOG_INFO("TLS: --tls_cert is no longer set; new sessions get no STARTTLS");
    std::lock_guard lock(shared_mu);
    tls = nullptr;
    return {};
  }
  auto loaded = net::TlsContext::load(c.tls_cert, c.tls_key);
  if (!loaded) return loaded.error();
  std::lock_guard lock(shared_mu);
  tls = std::move(*loaded);
  MG_LOG_INFO("TLS: loaded {} ({})", c.tls_cert, tls->description());
  return {};
}

void Server::Impl::reload() {
  if (plugins != nullptr) plugins->reload();
  auto fresh = config::reload_flags(argv0);
  if (!fresh) {
    MG_LOG_ERROR("reload failed, keeping the running configuration: {}", fresh.error());
    return;
  }
  log::set_level(fresh->log_level);
  std::string tls_error = load_tls(*fresh);
  if (!tls_error.empty())
    MG_LOG_ERROR("reload: TLS: {}; new sessions keep the running certificate", tls_error);
  auth_throttle.set_limits(fresh->auth_max_failures, fresh->auth_failure_window);
  {
    std::lock_guard lock(shared_mu);
    session_config = std::make_shared<const smtp::SessionConfig>(fresh->session);
  }
  limiter.set_limits(fresh->max_connections, fresh->max_connections_per_ip);
  bool listeners_changed = fresh->listeners.size() != config.listeners.size();
  for (size_t i = 0; !listeners_changed && i < fresh->listeners.size(); ++i)
    listeners_changed = fresh->listeners[i].text != config.listeners[i].text;
  if (listeners_changed || fresh->relay.host != config.relay.host ||
      fresh->relay.port != config.relay.port || fresh->threads != config.threads)
    MG_LOG_WARNING("reload: --listen, --backend and --threads take effect only after a restart");
  config.session = fresh->session;
  config.max_connections = fresh->max_connections;
  config.max_connections_per_ip = fresh->max_connections_per_ip;
  MG_LOG_INFO("reloaded configuration (new sessions use it; open ones keep theirs)");
}

void Server::Impl::on_signal(int signo) {
  if (signo == SIGHUP) {
    reload();
  } else {
    MG_LOG_INFO("received signal {}, stopping: no new connections, {} open, grace {}s", signo,
                limiter.total(), config.shutdown_grace_seconds);
    begin_shutdown();
    return;
  }
  signals.async_wait([this](const std::error_code& ec, int s) {
    if (!ec) on_signal(s);
  });
}

void Server::Impl::begin_shutdown() {
  if (stopping.exchange(true)) return;
  // Each acceptor is closed on its own worker's thread (asio objects are not thread-safe).
  for (size_t i = 0; i < workers.size(); ++i) {
    asio::post(workers[i]->ctx, [this, i] {
      for (Listener& l : listeners) {
        std::error_code ec;
        l.acceptors[i]->close(ec);
      }
    });
  }
  signal_sessions();  // idle sessions end now; the others when their transaction is done
  asio::co_spawn(control, drain(), asio::detached);
}

asio::awaitable<void> Server::Impl::drain() {
  std::error_code ec;
  asio::steady_timer tick(control);
  auto deadline = Clock::now() + std::chrono::milliseconds(
                                     static_cast<int64_t>(config.shutdown_grace_seconds * 1000));
  bool forced = false;
  auto hard_deadline = deadline + std::chrono::seconds(10);
  while (limiter.total() > 0) {
    auto now = Clock::now();
    if (!forced && now >= deadline) {
      MG_LOG_WARNING("grace period over: closing {} open sessions", limiter.total());
      signal_sessions();  // second call: cancels whatever they are waiting for
      forced = true;
    }
    if (now >= hard_deadline) {
      MG_LOG_ERROR("{} sessions did not end; exiting anyway", limiter.total());
      break;
    }
    tick.expires_after(std::chrono::milliseconds(20));
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (auto& w : workers) {
    asio::post(w->ctx, [worker = w.get()] {
      worker->pool.close_idle();
      worker->guard.reset();
    });
  }
  signals.cancel(ec);
}

Server::Server(config::GatewayConfig config, const char* argv0, PluginHost* plugins)
    : impl_(std::make_unique<Impl>(std::move(config), argv0, plugins)) {}

Server::~Server() {
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) {
      w->guard.reset();
      w->ctx.stop();
      w->thread.join();
    }
  }
}

std::string Server::Impl::open_listener(const config::ListenerSpec& spec) {
  Listener l;
  l.spec = spec;
  asio::ip::tcp::endpoint endpoint = spec.endpoint;
  std::error_code ec;
  auto fail = [&](const char* what) {
    return "--listen=" + spec.text + ": cannot " + what + ": " + ec.message();
  };
  const bool shared = workers.size() > 1;
  if (shared && endpoint.port() != 0) {
    // SO_REUSEPORT would let this process share a port another one (a second mailgate
    // started by mistake) already serves: find out with a plain bind first.
    asio::ip::tcp::acceptor probe(control);
    probe.open(endpoint.protocol(), ec);
    if (ec) return fail("open socket");
    probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (endpoint.address().is_v6()) probe.set_option(asio::ip::v6_only(true), ec);
    probe.bind(endpoint, ec);
    if (ec) return fail("bind");
  }
  for (auto& worker : workers) {
    auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(worker->ctx);
    acceptor->open(endpoint.protocol(), ec);
    if (ec) return fail("open socket");
    acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (shared) {
      const int on = 1;
      if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
        ec = std::error_code(errno, std::system_category());
        return fail("set SO_REUSEPORT");
      }
    }
    if (endpoint.address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
    acceptor->bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen");
    // Port 0: the OS picked one for the first acceptor; the others take the same.
    endpoint = acceptor->local_endpoint(ec);
    if (ec) return fail("read the bound address");
    l.acceptors.push_back(std::move(acceptor));
  }
  l.bound = endpoint_text(endpoint);
  listeners.push_back(std::move(l));
  return {};
}

std::string Server::bind() {
  Impl& s = *impl_;
  std::string tls_error = s.load_tls(s.config);
  if (!tls_error.empty()) return tls_error;
  if (s.workers.empty()) {
    for (unsigned i = 0; i < std::max(1u, s.config.threads); ++i)
      s.workers.push_back(std::make_unique<Worker>(s.config.relay));
  }
  for (const config::ListenerSpec& spec : s.config.listeners) {
    std::string error = s.open_listener(spec);
    if (!error.empty()) return error;
  }
  return {};
}

void Server::attach_plugins(PluginHost* plugins) { impl_->plugins = plugins; }

int Server::run() {
  Impl& s = *impl_;
  for (auto& w : s.workers) {
    w->thread = std::thread([worker = w.get()] {
      // One turn: wait for the first ready handler, run every other one ready, then write the
      // turn's log lines together.
      log::BatchScope batch;
      for (;;) {
        try {
          while (worker->ctx.run_one() > 0) {
            worker->ctx.poll();
            log::flush();
          }
          return;
        } catch (const std::exception& e) {
          MG_LOG_ERROR("I/O thread: unexpected error: {}", e.what());
        }
      }
    });
  }
  // Logged only now, when connections are served with their plugin chains: "listening on"
  // means ready.
  for (Listener& l : s.listeners) {
    MG_LOG_INFO("listening on {} (profile {}{})", l.bound, l.spec.profile,
                l.spec.implicit_tls ? ", implicit TLS"
                : s.tls         ? ", STARTTLS"
                                : "");
    for (size_t i = 0; i < s.workers.size(); ++i)
      asio::co_spawn(s.workers[i]->ctx, s.accept_loop(l, *s.workers[i], *l.acceptors[i]),
                     asio::detached);
  }
  s.signals.add(SIGTERM);
  s.signals.add(SIGINT);
  s.signals.add(SIGHUP);
  s.signals.async_wait([&s](const std::error_code& ec, int signo) {
    if (!ec) s.on_signal(signo);
  });
  MG_LOG_INFO("mailgate started: {} I/O threads, backend {}:{}", s.config.threads,
              s.config.relay.host, s.config.relay.port);
  s.control.run();
  for (auto& w : s.workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  MG_LOG_INFO("mailgate stopped");
  return 0;
}

}  // namespace mailgate::server
