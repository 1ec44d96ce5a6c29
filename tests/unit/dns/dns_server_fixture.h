// tests/unit/dns/dns_server_fixture.h — DNS servers on loopback for tests, each stopped by
// whoever started it (its destructor):
//   UnboundServer   a real unbound(8) serving given local zones on a free port, started
//                   with a generated config in a temp dir, stopped by PID;
//   SilentServer    a UDP socket that reads queries and never answers (timeouts);
//   FakeDnsServer   answers every query with a fixed RCODE, e.g. SERVFAIL.
// None of them ever sends a query anywhere: unbound gets `local-zone: "." refuse`, so a name
// outside its zones is REFUSED instead of recursed.
// Test-only, header-only. Each object is used from one test thread; FakeDnsServer answers
// from its own thread.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "message_builder.h"

extern char** environ;

namespace mailgate::dns::testing {

// A socket on 127.0.0.1 with the port the OS picked; closed on destruction.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(int type, uint16_t port = 0) {
    fd_ = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;  // ok() is false
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port free for both UDP and TCP on 127.0.0.1 a moment ago.
inline uint16_t free_dns_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    LoopbackSocket udp(SOCK_DGRAM);
    if (!udp.ok()) continue;
    LoopbackSocket tcp(SOCK_STREAM, udp.port());
    if (tcp.ok()) return udp.port();
  }
  throw std::runtime_error("no free port on 127.0.0.1");
}

// Sends one query over UDP to 127.0.0.1:port; returns the RCODE of the reply, or nullopt
// when none came within `timeout`.
inline std::optional<int> probe(uint16_t port, const std::string& name, uint16_t type,
                                std::chrono::milliseconds timeout) {
  LoopbackSocket s(SOCK_DGRAM);
  if (!s.ok()) return std::nullopt;
  MessageBuilder q;
  q.header(0x4d47, 0x0100, 1, 0, 0, 0).question(name, type);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  if (::sendto(s.fd(), q.bytes().data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) <
      0)
    return std::nullopt;
  pollfd p{s.fd(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  uint8_t reply[4096];
  ssize_t n = ::recv(s.fd(), reply, sizeof reply, 0);
  if (n < 12) return std::nullopt;
  return reply[3] & 0x0f;
}

// A directory under the test temp dir, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    if (std::getenv("MAILGATE_KEEP_TMP")) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A real unbound on 127.0.0.1 serving `zones` (unbound.conf server: lines, the syntax of
// the resolver's local zones file).
class UnboundServer {
 public:
  static std::string binary() {
    for (const char* candidate : {"/usr/sbin/unbound", "/usr/local/sbin/unbound"})
      if (::access(candidate, X_OK) == 0) return candidate;
    return "";
  }
  static bool available() { return !binary().empty(); }

  UnboundServer() : dir_("mailgate-unbound") {}
  ~UnboundServer() { stop(); }
  UnboundServer(const UnboundServer&) = delete;
  UnboundServer& operator=(const UnboundServer&) = delete;

  // Starts the server and waits until it answers. Throws with its log on failure.
  void start(const std::string& zones) {
    std::string last_log;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_dns_port();
      write_config(zones);
      spawn();
      if (wait_ready()) return;
      last_log = log();
      stop();
    }
    throw std::runtime_error("unbound did not start; its log:\n" + last_log);
  }

  // SIGTERM, then SIGKILL after 5 s; waits for the process either way.
  void stop() { terminate(SIGTERM); }
  // SIGKILL at once: the server is gone when this returns.
  void kill_now() { terminate(SIGKILL); }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  std::string forwarder() const { return "127.0.0.1@" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(dir_.file("unbound.log"));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  void write_config(const std::string& zones) {
    std::ofstream conf(dir_.file("unbound.conf"), std::ios::trunc);
    conf << "server:\n"
         << "  interface: 127.0.0.1\n"
         << "  port: " << port_ << "\n"
         << "  do-ip6: no\n"
         << "  do-daemonize: no\n"
         << "  chroot: \"\"\n"
         << "  username: \"\"\n"
         << "  directory: \"" << dir_.path() << "\"\n"
         << "  pidfile: \"" << dir_.file("unbound.pid") << "\"\n"
         << "  use-syslog: no\n"
         << "  logfile: \"\"\n"
         << "  verbosity: 1\n"
         << "  num-threads: 1\n"
         << "  module-config: \"iterator\"\n"
         << "  access-control: 127.0.0.0/8 allow\n"
         << "  local-zone: \".\" refuse\n";
    std::istringstream lines(zones);
    for (std::string line; std::getline(lines, line);) {
      if (line.find_first_not_of(" \t") == std::string::npos || line.rfind("server:", 0) == 0)
        continue;
      conf << "  " << line << "\n";
    }
    conf << "remote-control:\n  control-enable: no\n";
  }

  void spawn() {
    const std::string bin = binary();
    if (bin.empty()) throw std::runtime_error("unbound is not installed");
    const std::string conf = dir_.file("unbound.conf");
    const std::string log_path = dir_.file("unbound.log");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::vector<std::string> args = {bin, "-d", "-c", conf};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(std::string("posix_spawn unbound: ") + std::strerror(rc));
    pid_ = pid;
  }

  bool wait_ready() {
    using namespace std::chrono_literals;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;  // exited (port taken, bad config): the caller retries
        return false;
      }
      // Any reply means it serves: "." is REFUSED by the config, our zones answer.
      if (probe(port_, "ready.probe.invalid", 1, 200ms)) return true;
    }
    return false;
  }

  void terminate(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// Reads queries on 127.0.0.1 and never answers.
class SilentServer {
 public:
  SilentServer() : socket_(SOCK_DGRAM) {
    if (!socket_.ok()) throw std::runtime_error("cannot bind a UDP socket on 127.0.0.1");
  }
  uint16_t port() const { return socket_.port(); }
  std::string forwarder() const { return "127.0.0.1@" + std::to_string(port()); }

 private:
  LoopbackSocket socket_;
};

// Answers every query on 127.0.0.1 with `rcode` (header and question echoed, no records).
class FakeDnsServer {
 public:
  explicit FakeDnsServer(int rcode) : socket_(SOCK_DGRAM), rcode_(rcode) {
    if (!socket_.ok()) throw std::runtime_error("cannot bind a UDP socket on 127.0.0.1");
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDnsServer() {
    char c = 'x';
    (void)!::write(stop_pipe_[1], &c, 1);
    thread_.join();
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }
  FakeDnsServer(const FakeDnsServer&) = delete;
  FakeDnsServer& operator=(const FakeDnsServer&) = delete;

  uint16_t port() const { return socket_.port(); }
  std::string forwarder() const { return "127.0.0.1@" + std::to_string(port()); }
  int queries() const { return queries_.load(); }

 private:
  void serve() {
    for (;;) {
      pollfd fds[2] = {{socket_.fd(), POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      uint8_t query[4096];
      sockaddr_in from{};
      socklen_t from_len = sizeof from;
      ssize_t n = ::recvfrom(socket_.fd(), query, sizeof query, 0,
                             reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 12) continue;
      ++queries_;
      // Header: same id, QR set, opcode and RD kept, RA set, our rcode; the question copied.
      size_t end = 12;
      while (end < static_cast<size_t>(n) && query[end] != 0 && (query[end] & 0xc0) == 0)
        end += query[end] + 1u;
      end += 1 + 4;
      if (end > static_cast<size_t>(n)) continue;
      std::vector<uint8_t> reply(query, query + end);
      reply[2] = static_cast<uint8_t>(0x80 | (query[2] & 0x79));
      reply[3] = static_cast<uint8_t>(0x80 | (rcode_ & 0x0f));
      reply[4] = 0;
      reply[5] = 1;
      for (size_t i = 6; i < 12; ++i) reply[i] = 0;
      ::sendto(socket_.fd(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from),
               from_len);
    }
  }

  LoopbackSocket socket_;
  int rcode_;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

}  // namespace mailgate::dns::testing
