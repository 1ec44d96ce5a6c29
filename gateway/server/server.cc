// server/server.cc — see server.h.
#include "server/server.h"

#include <atomic>
#include <chrono>
#include <ctime>
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
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor;
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

  asio::awaitable<void> accept_loop(Listener& listener);
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
  std::shared_ptr<const smtp::SessionConfig> session_config;  // swapped on SIGHUP
  net::ConnectionLimiter limiter;
  // New sessions take the current context; open ones keep theirs (SIGHUP swaps it).
  std::shared_ptr<const net::TlsContext> tls;
  net::AuthThrottle auth_throttle;
  asio::io_context control{1};
  asio::signal_set signals;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<Listener> listeners;
  size_t next_worker = 0;
  uint64_t session_counter = 0;
  bool stopping = false;
};

std::string Server::Impl::next_session_id() {
  // 12 hex digits: the low 24 bits of the start time, then a counter; unique per process
  // and, across restarts, for 194 days.
  static const uint32_t base = static_cast<uint32_t>(std::time(nullptr)) & 0xFFFFFF;
  return fmt::format("{:06X}{:06X}", base, ++session_counter & 0xFFFFFF);
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

asio::awaitable<void> Server::Impl::accept_loop(Listener& listener) {
  for (;;) {
    Worker& worker = *workers[next_worker];
    next_worker = (next_worker + 1) % workers.size();
    std::error_code ec;
    asio::ip::tcp::socket socket = co_await listener.acceptor->async_accept(
        worker.ctx, asio::redirect_error(asio::use_awaitable, ec));
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // EMFILE/ENFILE and friends: log, back off briefly, keep serving.
      MG_LOG_WARNING("accept on {}: {}", listener.bound, ec.message());
      asio::steady_timer pause(control, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    auto remote = socket.remote_endpoint(ec);
    if (ec) continue;  // already gone
    net::ConnectionLimiter::Ticket ticket;
    auto verdict = limiter.acquire(remote.address(), &ticket);
    const std::string& host = session_config->hostname;
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
    info.tls = tls;
    info.implicit_tls = listener.spec.implicit_tls;
    info.submission = listener.spec.submission;
    info.auth_throttle = &auth_throttle;
    smtp::ChainBinding chain =
        plugins != nullptr ? plugins->chain_for(listener.spec.profile) : smtp::ChainBinding{};
    chain.completions = worker.completions;
    asio::co_spawn(worker.ctx,
                   session_main(worker, std::move(socket), std::move(ticket), session_config,
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
    tls = nullptr;
    return {};
  }
  auto loaded = net::TlsContext::load(c.tls_cert, c.tls_key);
  if (!loaded) return loaded.error();
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
  session_config = std::make_shared<const smtp::SessionConfig>(fresh->session);
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
  if (stopping) return;
  stopping = true;
  for (Listener& l : listeners) {
    std::error_code ec;
    l.acceptor->close(ec);
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

std::string Server::bind() {
  std::string tls_error = impl_->load_tls(impl_->config);
  if (!tls_error.empty()) return tls_error;
  for (const config::ListenerSpec& spec : impl_->config.listeners) {
    Listener l;
    l.spec = spec;
    l.acceptor = std::make_unique<asio::ip::tcp::acceptor>(impl_->control);
    std::error_code ec;
    auto fail = [&](const char* what) {
      return "--listen=" + spec.text + ": cannot " + what + ": " + ec.message();
    };
    l.acceptor->open(spec.endpoint.protocol(), ec);
    if (ec) return fail("open socket");
    l.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (spec.endpoint.address().is_v6()) l.acceptor->set_option(asio::ip::v6_only(true), ec);
    l.acceptor->bind(spec.endpoint, ec);
    if (ec) return fail("bind");
    l.acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen");
    l.bound = endpoint_text(l.acceptor->local_endpoint(ec));
    impl_->listeners.push_back(std::move(l));
  }
  return {};
}

void Server::attach_plugins(PluginHost* plugins) { impl_->plugins = plugins; }

int Server::run() {
  Impl& s = *impl_;
  for (unsigned i = 0; i < s.config.threads; ++i)
    s.workers.push_back(std::make_unique<Worker>(s.config.relay));
  for (auto& w : s.workers) {
    w->thread = std::thread([worker = w.get()] {
      for (;;) {
        try {
          worker->ctx.run();
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
    asio::co_spawn(s.control, s.accept_loop(l), asio::detached);
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
