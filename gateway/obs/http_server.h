// obs/http_server.h — a tiny HTTP/1.1 server for the metrics listener: GET and HEAD only, one
// request per connection (Connection: close), bounded request head, read and write deadlines.
// Owns: the listening socket, one coroutine per connection (at most max_connections at once),
// request-line parsing and the
// response framing (status line, Content-Length, no-store, nosniff).
// Must not touch: what is served (the handler decides; see obs/routes.h).
// Threading: everything runs on the io_context given to the constructor (one thread).
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace mailgate::obs {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD" (others never reach the handler)
  std::string path;    // "/metrics"
  std::string query;   // after '?', undecoded
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  static HttpResponse text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpLimits {
  size_t max_request_head = 8192;                // request line + headers; longer -> 431
  std::chrono::milliseconds read_timeout{5000};  // whole head; slower -> 408 and close
  std::chrono::milliseconds write_timeout{10000};
  size_t max_connections = 64;  // at once; more get 503 at once, without reading
};

// Parses "METHOD TARGET HTTP/1.x" (the first line of `head`). Returns the status to answer
// with on a bad line (400, 405, 505), or 0 and fills `out`.
int parse_request_line(std::string_view head, HttpRequest* out);

class HttpServer {
 public:
  HttpServer(asio::io_context& ctx, HttpHandler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. Returns an error message naming `flag` and the address, or empty.
  std::string listen(const asio::ip::tcp::endpoint& endpoint, std::string_view flag);
  asio::ip::tcp::endpoint local_endpoint() const;
  // Starts accepting (on the io_context's thread once it runs).
  void start();
  // Closes the listener; connections in progress finish by their deadlines.
  void stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace mailgate::obs
