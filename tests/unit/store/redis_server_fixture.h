// redis_server_fixture.h — a private redis-server on a loopback port for unit tests: the port
// is found by binding port 0 and closing it, then redis-server is started on it (retried on a
// collision); stopped by PID (SIGKILL, or SIGSTOP/SIGCONT for a hung server) at the end.
// Nothing is written to disk (no RDB, no AOF).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

namespace mailgate::testing {

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts on a fresh port; false when redis-server cannot be run.
  bool start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (port_ != 0 && launch()) return true;
    }
    return false;
  }
  // Starts again on the same port (after kill()).
  bool restart() { return launch(); }
  void kill_now() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  void stop() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
    kill_now();
  }
  uint16_t port() const { return port_; }

 private:
  static uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(fd);
    return port;
  }
  static bool accepts(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    ::close(fd);
    return ok;
  }
  bool launch() {
    const std::string port = std::to_string(port_);
    pid_t pid = ::fork();
    if (pid == 0) {
      int null_fd = ::open("/dev/null", O_WRONLY);
      if (null_fd >= 0) {
        ::dup2(null_fd, 1);
        ::dup2(null_fd, 2);
      }
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--loglevel", "warning", "--daemonize", "no",
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid < 0) return false;
    pid_ = pid;
    for (int i = 0; i < 200; ++i) {
      if (accepts(port_)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken, or no redis
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill_now();
    return false;
  }

  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mailgate::testing
