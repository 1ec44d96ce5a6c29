// Tests gateway/obs/http_server.* with the service's routes (obs/service.h) over real loopback
// sockets: status codes, HEAD, bounds and the read deadline.
#include "obs/http_server.h"

#include <gtest/gtest.h>

#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <thread>

#include "obs/service.h"

namespace mailgate::obs {
namespace {

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits = {}) {
    server_ = std::make_unique<HttpServer>(
        ctx_, [](const HttpRequest& r) { return route(r, "{\"ok\":true}"); }, limits);
    ASSERT_EQ(server_->listen({asio::ip::make_address("127.0.0.1"), 0}, "metrics_listen"), "");
    server_->start();
    thread_ = std::thread([this] { ctx_.run(); });
  }
  void TearDown() override {
    asio::post(ctx_, [this] {
      server_->stop();
      ctx_.stop();
    });
    if (thread_.joinable()) thread_.join();
  }
  // Sends `request` and reads the whole response (the server closes the connection).
  std::string exchange(const std::string& request) {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect(server_->local_endpoint());
    asio::write(s, asio::buffer(request));
    std::string response;
    std::error_code ec;
    asio::read(s, asio::dynamic_buffer(response), ec);
    return response;
  }

  asio::io_context ctx_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, ServesMetricsPageAndStatus) {
  start();
  std::string metrics = exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(metrics.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << metrics;
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(metrics.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(metrics.find("mailgate_connections_total "), std::string::npos);

  std::string page = exchange("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(page.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(page.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.find("<canvas id=\"throughput\""), std::string::npos);
  EXPECT_NE(exchange("GET /status.js HTTP/1.1\r\n\r\n").find("text/javascript"), std::string::npos);

  std::string status = exchange("GET /api/status?x=1 HTTP/1.1\r\n\r\n");
  EXPECT_NE(status.find("application/json"), std::string::npos);
  EXPECT_NE(status.find("\r\n\r\n{\"ok\":true}"), std::string::npos);
}

TEST_F(HttpServerTest, HeadHasNoBody) {
  start();
  std::string r = exchange("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(r.substr(r.size() - 4), "\r\n\r\n");
  EXPECT_EQ(r.find("mailgate_"), std::string::npos);
}

TEST_F(HttpServerTest, RefusesWhatItDoesNotServe) {
  start();
  EXPECT_EQ(exchange("GET /nope HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0), 0u);
  std::string post = exchange("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u);
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(exchange("GET /metrics HTTP/2.0\r\n\r\n").rfind("HTTP/1.1 505 ", 0), 0u);
  EXPECT_EQ(exchange("GET metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
  EXPECT_EQ(exchange("EHLO x\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u);
}

TEST_F(HttpServerTest, BoundsTheRequestHead) {
  HttpLimits limits;
  limits.max_request_head = 256;
  start(limits);
  std::string big = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(1000, 'a') + "\r\n\r\n";
  EXPECT_EQ(exchange(big).rfind("HTTP/1.1 431 ", 0), 0u);
}

TEST_F(HttpServerTest, SlowClientGets408) {
  HttpLimits limits;
  limits.read_timeout = std::chrono::milliseconds(200);
  start(limits);
  auto started = std::chrono::steady_clock::now();
  std::string r = exchange("GET /metrics HTTP/1.1\r\n");  // never ends its head
  EXPECT_EQ(r.rfind("HTTP/1.1 408 ", 0), 0u) << r;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(HttpServerTest, TooManyConnectionsGet503) {
  HttpLimits limits;
  limits.max_connections = 1;
  limits.read_timeout = std::chrono::milliseconds(3000);
  start(limits);
  asio::io_context io;
  asio::ip::tcp::socket idle(io);  // holds the only slot: connected, sends nothing
  idle.connect(server_->local_endpoint());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(exchange("GET /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 503 ", 0), 0u);
  idle.close();
  // Once the idle one is gone (its deadline closes it at the latest), requests are served.
  std::string r;
  for (int i = 0; i < 50; ++i) {
    r = exchange("GET /metrics HTTP/1.1\r\n\r\n");
    if (r.rfind("HTTP/1.1 200 ", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(r.rfind("HTTP/1.1 200 ", 0), 0u);
}

TEST(ParseRequestLine, SplitsPathAndQuery) {
  HttpRequest r;
  EXPECT_EQ(parse_request_line("GET /api/status?a=b HTTP/1.1\r\n", &r), 0);
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/api/status");
  EXPECT_EQ(r.query, "a=b");
  EXPECT_EQ(parse_request_line("GET  /x HTTP/1.1\r\n", &r), 400);
  EXPECT_EQ(parse_request_line("get /x HTTP/1.1\r\n", &r), 400);
  EXPECT_EQ(parse_request_line("DELETE /x HTTP/1.1\r\n", &r), 405);
}

}  // namespace
}  // namespace mailgate::obs
