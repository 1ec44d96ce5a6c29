// obs/http_server.cc — see http_server.h.
#include "obs/http_server.h"

#include <fmt/format.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "log/log.h"

namespace mailgate::obs {
namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

std::string serialize(const HttpResponse& r, bool head_only) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
      r.status, reason_phrase(r.status), r.content_type, r.body.size());
  if (r.status == 405) out += "Allow: GET, HEAD\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

}  // namespace

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

int parse_request_line(std::string_view head, HttpRequest* out) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return 400;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return 400;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version.substr(0, 5) != "HTTP/") return 400;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return 505;
  for (char c : method)
    if (c < 'A' || c > 'Z') return 400;
  if (target.empty() || target[0] != '/') return 400;
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return 400;
  if (method != "GET" && method != "HEAD") return 405;
  out->method = std::string(method);
  size_t q = target.find('?');
  out->path = std::string(target.substr(0, q));
  out->query = q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1));
  return 0;
}

struct HttpServer::State : std::enable_shared_from_this<HttpServer::State> {
  State(asio::io_context& c, HttpHandler h, HttpLimits l)
      : ctx(c), acceptor(c), handler(std::move(h)), limits(l) {}
  asio::io_context& ctx;
  asio::ip::tcp::acceptor acceptor;
  HttpHandler handler;
  HttpLimits limits;
  size_t active = 0;  // connections being served

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<asio::ip::tcp::socket> socket);
};

asio::awaitable<void> HttpServer::State::accept_loop() {
  auto self = shared_from_this();
  for (;;) {
    std::error_code ec;
    auto socket = std::make_shared<asio::ip::tcp::socket>(ctx);
    co_await acceptor.async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      MG_LOG_WARNING("metrics listener: accept: {}", ec.message());
      asio::steady_timer pause(ctx, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    asio::co_spawn(ctx, serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> HttpServer::State::serve(std::shared_ptr<asio::ip::tcp::socket> socket) {
  auto self = shared_from_this();
  struct Active {
    size_t& n;
    explicit Active(size_t& count) : n(count) { ++n; }
    ~Active() { --n; }
  } counted(active);
  const bool overloaded = active > limits.max_connections;
  // One deadline for the whole exchange: when it fires the socket is closed, which ends any
  // read or write in progress.
  asio::steady_timer deadline(ctx);
  deadline.expires_after(limits.read_timeout);
  auto timed_out = std::make_shared<bool>(false);
  deadline.async_wait([socket, timed_out](const std::error_code& ec) {
    if (ec) return;
    *timed_out = true;
    std::error_code ignored;
    socket->shutdown(asio::ip::tcp::socket::shutdown_receive, ignored);
  });
  std::string head;
  std::error_code ec;
  if (!overloaded) {
    co_await asio::async_read_until(*socket, asio::dynamic_buffer(head, limits.max_request_head),
                                    "\r\n\r\n", asio::redirect_error(asio::use_awaitable, ec));
  }
  HttpResponse response;
  HttpRequest request;
  bool head_only = false;
  if (overloaded) {
    response = HttpResponse::text(503, "too many connections\n");
  } else if (*timed_out) {
    response = HttpResponse::text(408, "request timeout\n");
  } else if (ec == asio::error::not_found) {
    response = HttpResponse::text(431, "request head too large\n");
  } else if (ec) {
    deadline.cancel();
    co_return;  // the client went away
  } else if (int status = parse_request_line(head, &request); status != 0) {
    response = HttpResponse::text(status, fmt::format("{}\n", reason_phrase(status)));
  } else {
    head_only = request.method == "HEAD";
    try {
      response = handler(request);
    } catch (const std::exception& e) {
      MG_LOG_ERROR("metrics listener: {} {}: {}", request.method, request.path, e.what());
      response = HttpResponse::text(500, "internal error\n");
    }
  }
  deadline.cancel();
  deadline.expires_after(limits.write_timeout);
  deadline.async_wait([socket](const std::error_code& e) {
    if (e) return;
    std::error_code ignored;
    socket->close(ignored);
  });
  std::string wire = serialize(response, head_only);
  co_await asio::async_write(*socket, asio::buffer(wire),
                             asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  socket->shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket->close(ec);
}

HttpServer::HttpServer(asio::io_context& ctx, HttpHandler handler, HttpLimits limits)
    : state_(std::make_shared<State>(ctx, std::move(handler), limits)) {}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::listen(const asio::ip::tcp::endpoint& endpoint, std::string_view flag) {
  std::error_code ec;
  auto fail = [&](const char* what) {
    return fmt::format("--{}: cannot {} {}: {}", flag, what,
                       fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port()),
                       ec.message());
  };
  asio::ip::tcp::acceptor& a = state_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  a.set_option(asio::socket_base::reuse_address(true), ec);
  if (endpoint.address().is_v6()) a.set_option(asio::ip::v6_only(true), ec);
  a.bind(endpoint, ec);
  if (ec) return fail("bind");
  a.listen(64, ec);
  if (ec) return fail("listen on");
  return {};
}

asio::ip::tcp::endpoint HttpServer::local_endpoint() const {
  std::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

void HttpServer::start() { asio::co_spawn(state_->ctx, state_->accept_loop(), asio::detached); }

void HttpServer::stop() {
  std::error_code ec;
  state_->acceptor.close(ec);
}

}  // namespace mailgate::obs
