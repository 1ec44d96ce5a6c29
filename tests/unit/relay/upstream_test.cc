// tests/unit/relay/upstream_test.cc — tests of gateway/relay/: the pure SMTP client codec
// (reply parser, EHLO capabilities, xtext, XCLIENT/XFORWARD/MAIL lines, dot-stuffing), then
// the relay end to end against a real Postfix on loopback (skipped unless root with Postfix
// installed), a scripted backend for the stale-connection retry, and failure replies for an
// unreachable and a silent backend.
// Owns: only its temporary Postfix instance (started and stopped here) and its listeners.
#include "relay/upstream.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "relay/pool.h"
#include "relay/relay_session.h"
#include "relay/smtp_client_codec.h"
#include "spool/spool.h"

namespace mailgate::relay {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// --- helpers -----------------------------------------------------------------------------

struct Parsed {
  ReplyParser::Status status;
  smtp::Reply reply;
  std::string rest;  // unconsumed input
  std::string error;
};

// Feeds `input` to a fresh parser in pieces of `step` bytes, like a socket would.
Parsed parse_in_steps(std::string_view input, size_t step, ReplyLimits limits = {}) {
  ReplyParser parser(limits);
  std::string buffer;
  size_t fed = 0;
  ReplyParser::Status status = ReplyParser::Status::kNeedMore;
  while (true) {
    size_t consumed = 0;
    status = parser.parse(buffer, &consumed);
    buffer.erase(0, consumed);
    if (status != ReplyParser::Status::kNeedMore || fed == input.size()) break;
    size_t n = std::min(step, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
  }
  buffer.append(input.substr(fed));
  return {status, parser.reply(), buffer, parser.error()};
}

std::string stuff(const std::vector<std::string>& chunks) {
  DotStuffer stuffer;
  std::string out;
  for (const auto& c : chunks) stuffer.feed(c, out);
  stuffer.finish(out);
  return out;
}

ClientInfo sample_client() {
  ClientInfo c;
  c.addr = "192.0.2.1";
  c.port = 4242;
  c.name = "mx.example.org";
  c.helo = "mx.example.org";
  c.esmtp = true;
  return c;
}

const std::vector<std::string> kPostfixXclientAttrs = {
    "NAME", "ADDR", "PROTO", "HELO", "REVERSE_NAME", "PORT", "LOGIN", "DESTADDR", "DESTPORT"};

// --- ReplyParser -------------------------------------------------------------------------

TEST(ReplyParser, SingleLine) {
  Parsed p = parse_in_steps("250 2.1.0 Ok\r\n", 1000);
  ASSERT_EQ(p.status, ReplyParser::Status::kComplete);
  EXPECT_EQ(p.reply.code, 250);
  ASSERT_EQ(p.reply.lines.size(), 1u);
  EXPECT_EQ(p.reply.lines[0], "2.1.0 Ok");
  EXPECT_EQ(p.reply.enhanced(), "2.1.0");
  EXPECT_TRUE(p.rest.empty());
}

TEST(ReplyParser, MultiLineAnySplit) {
  const std::string wire =
      "250-backend.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 CHUNKING\r\n";
  for (size_t step : {1u, 2u, 3u, 7u, 16u, 1000u}) {
    Parsed p = parse_in_steps(wire, step);
    ASSERT_EQ(p.status, ReplyParser::Status::kComplete) << "step " << step;
    EXPECT_EQ(p.reply.code, 250);
    EXPECT_EQ(p.reply.lines, (std::vector<std::string>{"backend.example.test", "PIPELINING",
                                                       "SIZE 10240000", "CHUNKING"}));
    EXPECT_EQ(p.reply.wire(), wire);  // passed through unchanged
  }
}

TEST(ReplyParser, StopsAfterFinalLine) {
  Parsed p = parse_in_steps("221 Bye\r\n250 extra\r\n", 1000);
  ASSERT_EQ(p.status, ReplyParser::Status::kComplete);
  EXPECT_EQ(p.reply.code, 221);
  EXPECT_EQ(p.rest, "250 extra\r\n");
}

TEST(ReplyParser, IncompleteWaitsForMore) {
  ReplyParser parser;
  size_t consumed = 0;
  std::string buf = "250-first\r\n250 sec";
  EXPECT_EQ(parser.parse(buf, &consumed), ReplyParser::Status::kNeedMore);
  EXPECT_EQ(consumed, 11u);  // whole lines only
  buf.erase(0, consumed);
  buf += "ond\r\n";
  EXPECT_EQ(parser.parse(buf, &consumed), ReplyParser::Status::kComplete);
  EXPECT_EQ(parser.reply().lines, (std::vector<std::string>{"first", "second"}));
}

TEST(ReplyParser, ToleratesBareLfAndEmptyText) {
  Parsed p = parse_in_steps("250-\n250\n", 1);
  ASSERT_EQ(p.status, ReplyParser::Status::kComplete);
  EXPECT_EQ(p.reply.lines, (std::vector<std::string>{"", ""}));
}

TEST(ReplyParser, RejectsGarbage) {
  using namespace std::string_literals;
  const std::vector<std::string> garbage = {"hello world\r\n",    "25\r\n",
                                            "2500 x\r\n",         "250_x\r\n",
                                            "650 x\r\n",          "abc x\r\n",
                                            "250-a\r\n251 b\r\n", "250 a\0b\r\n"s,
                                            "250 a\rb\r\n",       "HTTP/1.1 400 Bad Request\r\n"};
  for (const std::string& bad : garbage) {
    Parsed p = parse_in_steps(bad, 1000);
    EXPECT_EQ(p.status, ReplyParser::Status::kError) << bad;
    EXPECT_FALSE(p.error.empty());
  }
}

TEST(ReplyParser, BoundsLineLengthAndLineCount) {
  std::string long_line = "250 " + std::string(5000, 'x') + "\r\n";
  EXPECT_EQ(parse_in_steps(long_line, 1000).status, ReplyParser::Status::kError);
  // Also without ever seeing an LF: the parser must not wait forever for one.
  EXPECT_EQ(parse_in_steps("250 " + std::string(5000, 'x'), 512).status,
            ReplyParser::Status::kError);
  std::string exactly = "250 " + std::string(4096 - 6, 'y') + "\r\n";  // 4096 octets with CRLF
  EXPECT_EQ(parse_in_steps(exactly, 100).status, ReplyParser::Status::kComplete);

  std::string many;
  for (int i = 0; i < 300; ++i) many += "250-line\r\n";
  many += "250 end\r\n";
  EXPECT_EQ(parse_in_steps(many, 4096).status, ReplyParser::Status::kError);
  EXPECT_EQ(parse_in_steps(many, 4096, ReplyLimits{4096, 1000}).status,
            ReplyParser::Status::kComplete);
}

// --- Capabilities ------------------------------------------------------------------------

TEST(Capabilities, PostfixEhlo) {
  smtp::Reply r;
  r.code = 250;
  r.lines = {"backend.example.test",
             "PIPELINING",
             "SIZE 10240000",
             "VRFY",
             "ETRN",
             "STARTTLS",
             "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT",
             "xforward name addr proto helo source port ident",
             "ENHANCEDSTATUSCODES",
             "8BITMIME",
             "DSN",
             "SMTPUTF8",
             "CHUNKING"};
  Capabilities c = parse_ehlo_reply(r);
  EXPECT_TRUE(c.esmtp);
  EXPECT_TRUE(c.pipelining);
  EXPECT_TRUE(c.size);
  EXPECT_EQ(c.size_limit, 10240000u);
  EXPECT_TRUE(c.eightbitmime);
  EXPECT_TRUE(c.smtputf8);
  EXPECT_TRUE(c.starttls);
  EXPECT_TRUE(c.enhanced_status_codes);
  EXPECT_TRUE(c.chunking);
  EXPECT_TRUE(c.dsn);
  EXPECT_TRUE(c.xclient);
  EXPECT_EQ(c.xclient_attrs, kPostfixXclientAttrs);
  EXPECT_TRUE(c.xclient_offers("login"));
  EXPECT_FALSE(c.xclient_offers("SOURCE"));
  EXPECT_TRUE(c.xforward);
  EXPECT_TRUE(c.xforward_offers("SOURCE"));
  EXPECT_EQ(c.xforward_attrs.front(), "NAME");
}

TEST(Capabilities, MinimalServerAndSizeWithoutLimit) {
  smtp::Reply r;
  r.code = 250;
  r.lines = {"tiny.example", "size", "AUTH LOGIN PLAIN"};
  Capabilities c = parse_ehlo_reply(r);
  EXPECT_TRUE(c.size);
  EXPECT_EQ(c.size_limit, 0u);
  EXPECT_FALSE(c.pipelining);
  EXPECT_FALSE(c.xclient);
  EXPECT_FALSE(c.xforward);
  EXPECT_FALSE(c.smtputf8);
  EXPECT_TRUE(c.auth);
  EXPECT_TRUE(c.auth_offers("plain"));
  EXPECT_TRUE(c.auth_offers("LOGIN"));
  EXPECT_FALSE(c.auth_offers("CRAM-MD5"));
  // The first line is the server's name, never a keyword.
  r.lines = {"PIPELINING"};
  EXPECT_FALSE(parse_ehlo_reply(r).pipelining);
}

// --- xtext and command lines -------------------------------------------------------------

TEST(Xtext, EncodesSpecialsAndOutOfRange) {
  EXPECT_EQ(xtext_encode("mx.example.org"), "mx.example.org");
  EXPECT_EQ(xtext_encode("a+b=c"), "a+2Bb+3Dc");
  EXPECT_EQ(xtext_encode("two words"), "two+20words");
  EXPECT_EQ(xtext_encode(std::string("\x01\x7f\xc3\xa9", 4)), "+01+7F+C3+A9");
  EXPECT_EQ(xtext_encode("!~"), "!~");
  EXPECT_EQ(xtext_encode(""), "");
}

TEST(Xclient, AllAttributesInOneLine) {
  ClientInfo c = sample_client();
  c.login = "alice";
  auto lines = build_xclient_commands(c, kPostfixXclientAttrs);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "XCLIENT PROTO=ESMTP HELO=mx.example.org LOGIN=alice PORT=4242 NAME=mx.example.org "
            "ADDR=192.0.2.1");
}

TEST(Xclient, UnavailableIpv6AndOnlyOfferedAttributes) {
  ClientInfo c;
  c.addr = "2001:db8::1";
  c.name = "unknown";
  c.esmtp = false;
  auto lines = build_xclient_commands(c, kPostfixXclientAttrs);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "XCLIENT PROTO=SMTP HELO=[UNAVAILABLE] LOGIN=[UNAVAILABLE] PORT=[UNAVAILABLE] "
            "NAME=[UNAVAILABLE] ADDR=IPV6:2001:db8::1");
  lines = build_xclient_commands(sample_client(), {"NAME", "ADDR"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "XCLIENT NAME=mx.example.org ADDR=192.0.2.1");
  EXPECT_TRUE(build_xclient_commands(sample_client(), {"DESTADDR"}).empty());
  // Values are xtext-encoded.
  c.helo = "odd helo+";
  lines = build_xclient_commands(c, {"HELO"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "XCLIENT HELO=odd+20helo+2B");
}

TEST(Xclient, SplitsAt512OctetsWithIdentityLast) {
  ClientInfo c = sample_client();
  c.helo = std::string(255, 'h');
  c.login = std::string(200, 'l');
  c.name = std::string(250, 'n');
  auto lines = build_xclient_commands(c, kPostfixXclientAttrs);
  ASSERT_GE(lines.size(), 2u);
  std::string all;
  for (const auto& line : lines) {
    EXPECT_LE(line.size() + 2, kMaxCommandOctets) << line;
    EXPECT_EQ(line.rfind("XCLIENT ", 0), 0u);
    all += line.substr(7);
  }
  EXPECT_NE(all.find(" HELO=" + c.helo), std::string::npos);
  EXPECT_NE(all.find(" LOGIN=" + c.login), std::string::npos);
  EXPECT_NE(all.find(" NAME=" + c.name), std::string::npos);
  EXPECT_NE(lines.back().find(" ADDR=192.0.2.1"), std::string::npos);
  // A value that cannot fit in any command is replaced, not truncated.
  c.helo = std::string(300, '\x80');  // 900 octets as xtext
  lines = build_xclient_commands(c, {"HELO", "ADDR"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "XCLIENT HELO=[UNAVAILABLE] ADDR=192.0.2.1");
}

TEST(Xforward, PostfixAttributes) {
  auto lines = build_xforward_commands(
      sample_client(), {"NAME", "ADDR", "PROTO", "HELO", "SOURCE", "PORT", "IDENT"});
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "XFORWARD NAME=mx.example.org ADDR=192.0.2.1 PORT=4242 PROTO=ESMTP "
            "HELO=mx.example.org SOURCE=REMOTE");
}

TEST(MailCommand, ParametersOnlyWhenOffered) {
  smtp::MailArgs m;
  m.reverse_path.address = "a@example.org";
  m.size = 1234;
  m.body = smtp::BodyType::k8BitMime;
  Capabilities none;
  EXPECT_EQ(*build_mail_command(m, none), "MAIL FROM:<a@example.org>");
  Capabilities all;
  all.size = all.eightbitmime = all.smtputf8 = true;
  EXPECT_EQ(*build_mail_command(m, all), "MAIL FROM:<a@example.org> SIZE=1234 BODY=8BITMIME");
  m.smtputf8 = true;
  EXPECT_EQ(*build_mail_command(m, all),
            "MAIL FROM:<a@example.org> SIZE=1234 BODY=8BITMIME SMTPUTF8");
  auto refused = build_mail_command(m, none);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, 553);
  EXPECT_EQ(refused.error().enhanced(), "5.6.7");
  smtp::MailArgs null_sender;
  EXPECT_EQ(*build_mail_command(null_sender, all), "MAIL FROM:<>");
  EXPECT_EQ(build_rcpt_command("u@example.test"), "RCPT TO:<u@example.test>");
}

TEST(HeloArgument, OnlyPrintableTokens) {
  EXPECT_TRUE(usable_helo_argument("mx.example.org"));
  EXPECT_TRUE(usable_helo_argument("[192.0.2.1]"));
  EXPECT_FALSE(usable_helo_argument(""));
  EXPECT_FALSE(usable_helo_argument("two words"));
  EXPECT_FALSE(usable_helo_argument("bad\r\nMAIL"));
  EXPECT_FALSE(usable_helo_argument(std::string(256, 'a')));
}

// --- DotStuffer --------------------------------------------------------------------------

TEST(DotStuffer, StuffsLineStartsAndTerminates) {
  EXPECT_EQ(stuff({"a\r\n.b\r\n..c\r\n.\r\n"}), "a\r\n..b\r\n...c\r\n..\r\n.\r\n");
  EXPECT_EQ(stuff({".first\r\n"}), "..first\r\n.\r\n");
  EXPECT_EQ(stuff({"mid.dle\r\n"}), "mid.dle\r\n.\r\n");
  EXPECT_EQ(stuff({}), ".\r\n");                            // empty message
  EXPECT_EQ(stuff({"no newline"}), "no newline\r\n.\r\n");  // CRLF added
  EXPECT_EQ(stuff({"ends in cr\r"}), "ends in cr\r\r\n.\r\n");
  EXPECT_EQ(stuff({"x\n.y\r\n"}), "x\n..y\r\n.\r\n");  // bare LF still protected
  // Prepend first, also stuffed, continuing into the message.
  EXPECT_EQ(stuff({"Received: x\r\n", ".body\r\n"}), "Received: x\r\n..body\r\n.\r\n");
}

TEST(DotStuffer, ChunkBoundariesDoNotMatter) {
  const std::string message = ".start\r\nline\r\n.\r\n..\r\nx.y\r\n\r\n.\r\n.end without crlf.";
  const std::string expected = stuff({message});
  EXPECT_EQ(expected,
            "..start\r\nline\r\n..\r\n...\r\nx.y\r\n\r\n..\r\n..end without crlf.\r\n.\r\n");
  for (size_t a = 0; a <= message.size(); ++a) {
    for (size_t b = a; b <= message.size(); b += 3) {
      EXPECT_EQ(stuff({message.substr(0, a), message.substr(a, b - a), message.substr(b)}),
                expected)
          << a << "," << b;
    }
  }
  std::vector<std::string> bytes;
  for (char ch : message) bytes.emplace_back(1, ch);
  EXPECT_EQ(stuff(bytes), expected);
  // The CRLF at the very end may arrive split.
  EXPECT_EQ(stuff({"a\r", "\n"}), "a\r\n.\r\n");
  EXPECT_EQ(stuff({"a\r\n", ""}), "a\r\n.\r\n");
}

TEST(GatewayReplies, AreTransient) {
  for (auto kind : {Failure::Kind::kUnavailable, Failure::Kind::kTimeout, Failure::Kind::kLost,
                    Failure::Kind::kProtocol, Failure::Kind::kLocal}) {
    smtp::Reply r = gateway_reply(Failure{kind, ""});
    EXPECT_EQ(r.code, 451);
    EXPECT_EQ(r.enhanced().substr(0, 2), "4.");
  }
  EXPECT_EQ(gateway_reply(Failure{Failure::Kind::kUnavailable, ""}).enhanced(), "4.4.1");
  EXPECT_EQ(gateway_reply(Failure{Failure::Kind::kTimeout, ""}).enhanced(), "4.4.2");
}

// --- networked tests: helpers --------------------------------------------------------------

// Runs `work` on `io` until it completes (the pool's timers may keep io busy forever).
template <typename T>
T run(asio::io_context& io, asio::awaitable<T> work) {
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result = std::move(value);
  });
  io.restart();
  while (!result && !error) io.run_one();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

void run(asio::io_context& io, asio::awaitable<void> work) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(work), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  io.restart();
  while (!done) io.run_one();
  if (error) std::rethrow_exception(error);
}

// Lets detached work (background QUITs) finish.
void drain(asio::io_context& io, std::chrono::milliseconds for_how_long = 200ms) {
  io.restart();
  io.run_for(for_how_long);
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

RelayConfig test_config(uint16_t port) {
  RelayConfig c;
  c.host = "127.0.0.1";
  c.port = port;
  c.helo_name = "gw.example.test";
  c.connect_timeout = 5s;
  c.greeting_timeout = 10s;
  c.command_timeout = 10s;
  c.data_init_timeout = 10s;
  c.data_block_timeout = 10s;
  c.data_end_timeout = 30s;
  return c;
}

smtp::MailArgs mail_from(std::string address) {
  smtp::MailArgs m;
  m.reverse_path.address = std::move(address);
  return m;
}

// --- a real Postfix ------------------------------------------------------------------------

// One throw-away Postfix instance for the whole suite, made by the integration tests' harness
// (tests/integration/mgtest/postfix.py, the one place that knows how to configure a private
// Postfix): config in <dir>/etc, maildir delivery for user@example.test under <dir>/mail, log
// in <dir>/maillog. IPv6 is on so that XCLIENT ADDR=IPV6:... is accepted.
class PostfixBackend {
 public:
  static constexpr const char* kPostfix = "/usr/sbin/postfix";

  // Empty on success, else why Postfix could not be started.
  std::string start() {
    char tmpl[] = "/tmp/mailgate-relay-test.XXXXXX";
    if (!::mkdtemp(tmpl)) return "mkdtemp failed";
    fs::permissions(tmpl, fs::perms(0755));  // Postfix's daemons must get through it
    dir_ = fs::path(tmpl) / "postfix";
    port_ = free_port();
    std::string log = (dir_.parent_path() / "harness.log").string();
    if (harness("start --dir " + dir_.string() + " --port " + std::to_string(port_) +
                    " --domains example.test --users user --set inet_protocols=all",
                log) != 0) {
      return "postfix start failed: " + read_file(log) + read_file(dir_ / "maillog");
    }
    started_ = true;
    return {};
  }

  void stop() {
    if (started_) {
      harness("stop --dir " + dir_.string(), "/dev/null");  // waits for the master to go
      started_ = false;
    }
    if (!dir_.empty() && !std::getenv("MAILGATE_KEEP_POSTFIX")) {
      std::error_code ec;
      fs::remove_all(dir_.parent_path(), ec);
    }
  }

  uint16_t port() const { return port_; }
  const fs::path& dir() const { return dir_; }
  std::string maillog() const { return read_file(dir_ / "maillog"); }

  // Waits (up to 5 s) for a log line containing `needle` written after offset `from`; returns
  // that line, or the whole log after `from` when it never shows up.
  std::string wait_for_log(std::string_view needle, size_t from) const {
    std::string log;
    for (int i = 0; i < 100; ++i) {
      log = maillog();
      log = log.size() > from ? log.substr(from) : std::string();
      size_t pos = log.find(needle);
      if (pos != std::string::npos) {
        size_t end = log.find('\n', pos);
        return log.substr(pos, end == std::string::npos ? std::string::npos : end - pos + 1);
      }
      std::this_thread::sleep_for(50ms);
    }
    return log;
  }

  // Waits until `count` messages are in user@example.test's maildir; returns their contents.
  std::vector<std::string> wait_for_mail(size_t count) const {
    const fs::path inbox = dir_ / "mail" / "example.test" / "user" / "new";
    for (int i = 0; i < 200; ++i) {
      std::vector<fs::path> files;
      std::error_code ec;
      for (fs::directory_iterator it(inbox, ec), end; !ec && it != end; it.increment(ec)) {
        files.push_back(it->path());
      }
      if (files.size() >= count) {
        std::vector<std::string> out;
        for (const auto& f : files) out.push_back(read_file(f));
        return out;
      }
      std::this_thread::sleep_for(50ms);
    }
    return {};
  }

 private:
  fs::path dir_;
  uint16_t port_ = 0;
  bool started_ = false;

  // Runs `python3 -m mgtest.postfix ARGS` from tests/integration, output to `log`.
  static int harness(const std::string& args, const std::string& log) {
    const std::string dir = std::string(MAILGATE_TEST_DATA_DIR) + "/../integration";
    std::string cmd = "cd " + dir + " && /usr/bin/python3 -m mgtest.postfix " + args + " >" +
                      log + " 2>&1";
    return std::system(cmd.c_str());
  }
};

class RelayPostfixTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_reason_ = "needs root to run a private Postfix instance";
      return;
    }
    if (!fs::exists(PostfixBackend::kPostfix)) {
      skip_reason_ = "Postfix is not installed";
      return;
    }
    backend_ = new PostfixBackend;
    start_error_ = backend_->start();
  }

  static void TearDownTestSuite() {
    if (backend_) backend_->stop();
    delete backend_;
    backend_ = nullptr;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    spool_dir_ = backend_->dir() / "spool";
    fs::create_directories(spool_dir_);
  }

  static ClientInfo client() {
    ClientInfo c;
    c.addr = "127.0.0.2";
    c.port = 40001;
    c.name = "client.example.org";
    c.helo = "client-helo.example.org";
    c.esmtp = true;
    return c;
  }

  static inline PostfixBackend* backend_ = nullptr;
  static inline std::string skip_reason_;
  static inline std::string start_error_;
  fs::path spool_dir_;
  asio::io_context io_;
};

TEST_F(RelayPostfixTest, XclientDeliveryDotsAndPooledReuse) {
  const size_t log_start = backend_->maillog().size();
  UpstreamPool pool(io_.get_executor(), test_config(backend_->port()));

  // Transaction 1: XCLIENT as 127.0.0.2, one good and one unknown recipient, dots in the body.
  auto session = pool.new_session();
  smtp::MailArgs m = mail_from("sender@example.org");
  m.size = 200;
  smtp::Reply r = run(io_, session->mail(client(), m));
  ASSERT_EQ(r.code, 250) << r.summary();
  r = run(io_, session->rcpt("user@example.test"));
  EXPECT_EQ(r.code, 250) << r.summary();
  r = run(io_, session->rcpt("nobody@example.test"));
  EXPECT_EQ(r.code, 550) << r.summary();
  EXPECT_EQ(r.enhanced(), "5.1.1");
  EXPECT_NE(r.text().find("User unknown"), std::string_view::npos) << r.summary();

  spool::Spool spool(spool_dir_, 1 << 20);
  ASSERT_TRUE(
      spool.write("Subject: dots\r\nFrom: sender@example.org\r\n\r\n"
                  ".leading dot\r\n"
                  "..two dots\r\n"
                  ".\r\n"
                  "middle . line\r\n"
                  "last line\r\n"));
  r = run(io_, session->data("X-Gateway-Test: first\r\n", spool, 0));
  EXPECT_EQ(r.code, 250) << r.summary();
  EXPECT_NE(r.text().find("queued as"), std::string_view::npos) << r.summary();

  // Transaction 2 in the same client session: the connection is kept, XCLIENT not repeated.
  r = run(io_, session->mail(client(), mail_from("")));
  ASSERT_EQ(r.code, 250) << r.summary();
  r = run(io_, session->rcpt("user@example.test"));
  EXPECT_EQ(r.code, 250) << r.summary();
  spool.clear();
  ASSERT_TRUE(spool.write("Subject: second\r\n\r\nsecond body\r\n"));
  r = run(io_, session->data("X-Gateway-Test: second\r\n", spool, 0));
  EXPECT_EQ(r.code, 250) << r.summary();
  session->release();
  EXPECT_EQ(pool.idle_count(), 1u);

  // Transaction 3 in a new client session reuses the pooled connection.
  auto session2 = pool.new_session();
  ClientInfo other = client();
  other.port = 40002;
  r = run(io_, session2->mail(other, mail_from("third@example.org")));
  ASSERT_EQ(r.code, 250) << r.summary();
  EXPECT_EQ(pool.idle_count(), 0u);  // taken from the pool, not a new connection
  r = run(io_, session2->rcpt("user@example.test"));
  EXPECT_EQ(r.code, 250) << r.summary();
  spool.clear();
  ASSERT_TRUE(spool.write("Subject: third\r\n\r\nthird body\r\n"));
  r = run(io_, session2->data("", spool, 0));
  EXPECT_EQ(r.code, 250) << r.summary();
  session2->release();
  EXPECT_EQ(pool.idle_count(), 1u);

  std::vector<std::string> mails = backend_->wait_for_mail(3);
  ASSERT_EQ(mails.size(), 3u) << backend_->maillog();
  auto with_subject = [&](std::string_view subject) {
    for (const auto& mail : mails) {
      if (mail.find("\nSubject: " + std::string(subject) + "\n") != std::string::npos) return mail;
    }
    return std::string();
  };
  const std::string first = with_subject("dots");
  // Postfix stores maildir files with LF line ends; dots must be exactly as the sender wrote.
  EXPECT_NE(first.find("\n\n.leading dot\n..two dots\n.\nmiddle . line\nlast line\n"),
            std::string::npos)
      << first;
  EXPECT_NE(first.find("X-Gateway-Test: first\n"), std::string::npos) << first;
  EXPECT_NE(first.find("Received: from client-helo.example.org (client.example.org "
                       "[127.0.0.2])"),
            std::string::npos)
      << first;
  EXPECT_EQ(with_subject("second").rfind("Return-Path: <>\n", 0), 0u);
  EXPECT_NE(with_subject("third").find("\nthird body\n"), std::string::npos);

  // One backend connection carried all three transactions: Postfix's per-connection summary
  // shows them, and EHLO three times (ours, then once after each of the two XCLIENTs; the
  // second transaction of the same client needed none).
  pool.close_idle();
  drain(io_);
  std::string summary =
      backend_->wait_for_log("disconnect from client.example.org[127.0.0.2]", log_start);
  EXPECT_NE(summary.find(" ehlo=3 "), std::string::npos) << summary;
  EXPECT_NE(summary.find(" mail=3 rcpt=3/4 data=3 quit=1 "), std::string::npos) << summary;
}

TEST_F(RelayPostfixTest, XforwardWhenXclientDisabled) {
  RelayConfig config = test_config(backend_->port());
  config.use_xclient = false;
  UpstreamPool pool(io_.get_executor(), config);
  auto session = pool.new_session();
  ClientInfo c = client();
  c.addr = "198.51.100.7";
  c.name = "xforwarded.example.net";
  smtp::Reply r = run(io_, session->mail(c, mail_from("fwd@example.org")));
  ASSERT_EQ(r.code, 250) << r.summary();
  EXPECT_EQ(run(io_, session->rcpt("user@example.test")).code, 250);
  run(io_, session->reset());
  session->release();
  EXPECT_EQ(pool.idle_count(), 1u);
  pool.close_idle();
  drain(io_);
  // Postfix logs the forwarded client as "orig_client=".
  std::string line = backend_->wait_for_log("orig_client=xforwarded.example.net[198.51.100.7]", 0);
  EXPECT_NE(line.find("orig_client=xforwarded.example.net[198.51.100.7]"), std::string::npos)
      << line;
}

TEST_F(RelayPostfixTest, Smtputf8AndSequenceErrors) {
  UpstreamPool pool(io_.get_executor(), test_config(backend_->port()));
  auto session = pool.new_session();
  // rcpt() before mail(): a sequence error from the gateway, nothing sent.
  smtp::Reply r = run(io_, session->rcpt("user@example.test"));
  EXPECT_EQ(r.code, 503);
  // Postfix offers SMTPUTF8, so the parameter is passed on.
  smtp::MailArgs m = mail_from("s\xc3\xa9@example.org");
  m.reverse_path.utf8 = true;
  m.smtputf8 = true;
  r = run(io_, session->mail(client(), m));
  EXPECT_EQ(r.code, 250) << r.summary();
  // mail() again while a transaction is open resets first.
  r = run(io_, session->mail(client(), mail_from("again@example.org")));
  EXPECT_EQ(r.code, 250) << r.summary();
  session->release();
  pool.close_idle();
  drain(io_);
}

TEST_F(RelayPostfixTest, LargeSpilledMessageGoesOutInBlocks) {
  UpstreamPool pool(io_.get_executor(), test_config(backend_->port()));
  auto session = pool.new_session();
  ClientInfo c = client();
  c.port = 40010;
  ASSERT_EQ(run(io_, session->mail(c, mail_from("big@example.org"))).code, 250);
  ASSERT_EQ(run(io_, session->rcpt("user@example.test")).code, 250);
  spool::Spool spool(spool_dir_, 4096);  // spills to a file almost at once
  std::string body = "Subject: big\r\n\r\n";
  for (int i = 0; i < 20000; ++i) body += (i % 3 == 0 ? "." : "") + std::to_string(i) + " line\r\n";
  ASSERT_TRUE(spool.write(body));
  ASSERT_FALSE(spool.in_memory());
  smtp::Reply r = run(io_, session->data("", spool, 0));
  EXPECT_EQ(r.code, 250) << r.summary();
  session->release();

  std::string expected = body.substr(body.find("\r\n\r\n") + 4);
  for (size_t pos = 0; (pos = expected.find("\r\n", pos)) != std::string::npos;) {
    expected.replace(pos, 2, "\n");
  }
  std::string delivered;
  for (int i = 0; i < 100 && delivered.empty(); ++i) {
    for (const auto& mail : backend_->wait_for_mail(1)) {
      if (mail.find("\nSubject: big\n") != std::string::npos) delivered = mail;
    }
    if (delivered.empty()) std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(delivered.empty());
  ASSERT_GE(delivered.size(), expected.size());
  EXPECT_EQ(delivered.substr(delivered.size() - expected.size()), expected);
  pool.close_idle();
  drain(io_);
}

TEST_F(RelayPostfixTest, SkipReplacesTheOriginalHeaderBlock) {
  UpstreamPool pool(io_.get_executor(), test_config(backend_->port()));
  auto session = pool.new_session();
  auto* relay = dynamic_cast<RelaySession*>(session.get());
  ASSERT_NE(relay, nullptr);
  ClientInfo c = client();
  c.port = 40020;
  ASSERT_EQ(run(io_, relay->mail(c, mail_from("edit@example.org"))).code, 250);
  ASSERT_EQ(run(io_, relay->rcpt("user@example.test")).code, 250);
  spool::Spool spool(spool_dir_, 1 << 20);
  const std::string headers = "Subject: original\r\nX-Old: 1\r\n\r\n";
  ASSERT_TRUE(spool.write(headers + ".dotted body\r\nend\r\n"));
  // A skip beyond the message is refused before DATA; the transaction is reset.
  smtp::Reply r = run(io_, relay->data("", spool, spool.size() + 1));
  EXPECT_EQ(r.code, 451) << r.summary();
  ASSERT_EQ(run(io_, relay->mail(c, mail_from("edit@example.org"))).code, 250);
  ASSERT_EQ(run(io_, relay->rcpt("user@example.test")).code, 250);
  r = run(io_, relay->data("Subject: edited\r\n\r\n", spool, headers.size()));
  EXPECT_EQ(r.code, 250) << r.summary();
  session->release();
  std::string delivered;
  for (int i = 0; i < 100 && delivered.empty(); ++i) {
    for (const auto& mail : backend_->wait_for_mail(1)) {
      if (mail.find("\nSubject: edited\n") != std::string::npos) delivered = mail;
    }
    if (delivered.empty()) std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(delivered.empty());
  EXPECT_EQ(delivered.find("X-Old"), std::string::npos) << delivered;
  EXPECT_EQ(delivered.find("original"), std::string::npos) << delivered;
  EXPECT_NE(delivered.find("\n\n.dotted body\nend\n"), std::string::npos) << delivered;
  pool.close_idle();
  drain(io_);
}

TEST_F(RelayPostfixTest, ConnectionIntroducedAsOutsiderIsNotPooled) {
  // Postfix checks XCLIENT authorisation against the identity in effect: once a connection
  // speaks for 2001:db8::7 (outside smtpd_authorized_xclient_hosts) it cannot be handed to
  // another client, so release() closes it instead of pooling it.
  UpstreamPool pool(io_.get_executor(), test_config(backend_->port()));
  auto session = pool.new_session();
  ClientInfo c = client();
  c.addr = "2001:db8::7";
  c.name = "unknown";
  smtp::Reply r = run(io_, session->mail(c, mail_from("v6@example.org")));
  ASSERT_EQ(r.code, 250) << r.summary();
  EXPECT_EQ(run(io_, session->rcpt("user@example.test")).code, 250);
  run(io_, session->reset());
  // Same client again in this session: still fine on the same connection (no XCLIENT needed).
  r = run(io_, session->mail(c, mail_from("v6@example.org")));
  EXPECT_EQ(r.code, 250) << r.summary();
  EXPECT_EQ(run(io_, session->rcpt("user@example.test")).code, 250);
  run(io_, session->reset());
  session->release();
  EXPECT_EQ(pool.idle_count(), 0u);
  drain(io_);
  std::string line = backend_->wait_for_log("disconnect from unknown[2001:db8::7]", 0);
  EXPECT_NE(line.find("mail=2 rcpt=2"), std::string::npos) << line;
}

// --- failures ----------------------------------------------------------------------------

TEST(RelayFailure, UnreachableBackendIs451_441) {
  asio::io_context io;
  uint16_t port = free_port();  // nothing listens there now
  RelayConfig config = test_config(port);
  UpstreamPool pool(io.get_executor(), config);
  auto session = pool.new_session();
  smtp::Reply r = run(io, session->mail(sample_client(), mail_from("a@example.org")));
  EXPECT_EQ(r.code, 451) << r.summary();
  EXPECT_EQ(r.enhanced(), "4.4.1") << r.summary();
  // MAIL failed, so there is no transaction: rcpt() is a sequence error, nothing is sent.
  EXPECT_EQ(run(io, session->rcpt("user@example.test")).code, 503);
  session->release();
  EXPECT_EQ(pool.idle_count(), 0u);
}

TEST(RelayFailure, SilentBackendTimesOutWith451_442) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<asio::ip::tcp::socket> held;  // accepted, never written to
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](std::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      held.push_back(std::move(s));
      accept_next();
    });
  };
  accept_next();

  RelayConfig config = test_config(acceptor.local_endpoint().port());
  config.greeting_timeout = 300ms;
  UpstreamPool pool(io.get_executor(), config);
  auto session = pool.new_session();
  auto started = std::chrono::steady_clock::now();
  smtp::Reply r = run(io, session->mail(sample_client(), mail_from("a@example.org")));
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(r.code, 451) << r.summary();
  EXPECT_EQ(r.enhanced(), "4.4.2") << r.summary();
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(held.size(), 1u);
  session->release();
  EXPECT_EQ(pool.idle_count(), 0u);
}

// A scripted backend: answers each command through `respond`, which may return an empty string
// to drop the connection instead. Counts connections.
class ScriptedBackend {
 public:
  using Respond = std::function<std::string(int connection, const std::string& line)>;

  ScriptedBackend(asio::io_context& io, Respond respond)
      : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), respond_(std::move(respond)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  asio::awaitable<void> accept_loop() {
    while (true) {
      std::error_code ec;
      auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket), ++connections_),
                     asio::detached);
    }
  }

  asio::awaitable<void> serve(asio::ip::tcp::socket socket, int n) {
    std::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await asio::async_write(socket, asio::buffer(std::string("220 scripted ESMTP\r\n")), token);
    asio::streambuf buf;
    bool in_data = false;
    while (!ec) {
      size_t n_read = co_await asio::async_read_until(socket, buf, "\r\n", token);
      if (ec) break;
      std::string line(asio::buffers_begin(buf.data()),
                       asio::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(n_read) - 2);
      buf.consume(n_read);
      lines_.push_back(line);
      std::string reply;
      if (in_data) {
        if (line != ".") continue;
        in_data = false;
        reply = respond_(n, ".");
      } else {
        reply = respond_(n, line);
        if (line == "DATA" && reply.rfind("354", 0) == 0) in_data = true;
      }
      if (reply.empty()) break;  // drop the connection
      co_await asio::async_write(socket, asio::buffer(reply), token);
    }
  }

  asio::ip::tcp::acceptor acceptor_;
  Respond respond_;
  int connections_ = 0;
  std::vector<std::string> lines_;
};

// The backend closed a pooled connection while it sat idle: the first command on it fails and
// the transaction goes on a new connection, unnoticed by the client. With PIPELINING the first
// command is the group MAIL + RCPT that the first RCPT sends.
TEST(RelayScripted, StalePooledConnectionIsRetriedOnce) {
  for (const bool pipelining : {false, true}) {
    SCOPED_TRACE(pipelining ? "PIPELINING" : "no PIPELINING");
    asio::io_context io;
    int mails_on_first = 0;
    ScriptedBackend backend(io, [&](int connection, const std::string& line) -> std::string {
      if (line.rfind("EHLO", 0) == 0) {
        return pipelining ? "250-scripted\r\n250 PIPELINING\r\n" : "250-scripted\r\n250 8BITMIME\r\n";
      }
      if (line.rfind("MAIL", 0) == 0) {
        // The first connection serves one transaction, then goes away when the next starts.
        if (connection == 1 && ++mails_on_first > 1) return "";
        return "250 2.1.0 Ok\r\n";
      }
      if (line.rfind("RCPT", 0) == 0) return "250 2.1.5 Ok\r\n";
      if (line == "RSET") return "250 2.0.0 Ok\r\n";
      if (line == "QUIT") return "221 2.0.0 Bye\r\n";
      return "502 5.5.2 Error: command not recognized\r\n";
    });
    RelayConfig config = test_config(backend.port());
    config.use_xclient = false;
    config.use_xforward = false;
    UpstreamPool pool(io.get_executor(), config);

    auto s1 = pool.new_session();
    EXPECT_EQ(run(io, s1->mail(sample_client(), mail_from("a@example.org"))).code, 250);
    EXPECT_EQ(run(io, s1->rcpt("u@example.test")).code, 250);
    run(io, s1->reset());
    s1->release();
    ASSERT_EQ(pool.idle_count(), 1u);

    auto s2 = pool.new_session();
    smtp::Reply r = run(io, s2->mail(sample_client(), mail_from("b@example.org")));
    EXPECT_EQ(r.code, 250) << r.summary();  // retried transparently on a new connection
    r = run(io, s2->rcpt("u@example.test"));
    EXPECT_EQ(r.code, 250) << r.summary();
    EXPECT_EQ(backend.connections(), 2);
    const std::vector<std::string>& lines = backend.lines();
    ASSERT_GE(lines.size(), 3u);
    EXPECT_EQ(lines[lines.size() - 2], "MAIL FROM:<b@example.org>");  // on the new connection
    EXPECT_EQ(lines.back(), "RCPT TO:<u@example.test>");
    s2->release();
    drain(io);
  }
}

TEST(RelayScripted, Backend421IsPassedThroughAndGarbageIsLost) {
  asio::io_context io;
  ScriptedBackend backend(io, [&](int, const std::string& line) -> std::string {
    if (line.rfind("EHLO", 0) == 0) return "250 scripted\r\n";
    if (line.rfind("MAIL", 0) == 0) return "250 2.1.0 Ok\r\n";
    if (line == "RCPT TO:<busy@example.test>") return "421 4.3.2 Shutting down\r\n";
    if (line == "RCPT TO:<junk@example.test>") return "this is not smtp\r\n";
    if (line.rfind("RCPT", 0) == 0) return "250 2.1.5 Ok\r\n";
    return "250 Ok\r\n";
  });
  UpstreamPool pool(io.get_executor(), test_config(backend.port()));
  auto s = pool.new_session();
  ASSERT_EQ(run(io, s->mail(sample_client(), mail_from("a@example.org"))).code, 250);
  smtp::Reply r = run(io, s->rcpt("busy@example.test"));
  EXPECT_EQ(r.code, 421);
  EXPECT_EQ(r.summary(), "421 4.3.2 Shutting down");
  // The connection is gone; the transaction's later steps get a transient reply.
  EXPECT_EQ(run(io, s->rcpt("user@example.test")).code, 421);

  ASSERT_EQ(run(io, s->mail(sample_client(), mail_from("a@example.org"))).code, 250);
  r = run(io, s->rcpt("junk@example.test"));
  EXPECT_EQ(r.code, 451);
  EXPECT_EQ(r.enhanced(), "4.5.0");
  s->release();
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(backend.connections(), 2);
  drain(io);
}

// A backend with PIPELINING gets XFORWARD, MAIL and the first RCPT in one group, and only
// when that RCPT comes: mail() answers by itself. The backend's answers decide as they would
// one by one: a refused XFORWARD is the gateway's 451 4.3.5 and the connection goes, a 421
// passes through, a refused MAIL is the answer to every RCPT of the transaction. A transaction
// given up before any RCPT costs the backend nothing.
TEST(RelayScripted, MailDeferredToTheFirstRcptAndItsRefusals) {
  asio::io_context io;
  ScriptedBackend backend(io, [&](int connection, const std::string& line) -> std::string {
    if (line.rfind("EHLO", 0) == 0) return "250-scripted\r\n250-PIPELINING\r\n250 XFORWARD NAME ADDR\r\n";
    if (line.rfind("XFORWARD", 0) == 0) {
      if (connection == 2) return "550 5.7.0 Not authorized\r\n";
      if (connection == 3) return "421 4.3.2 Shutting down\r\n";
      return "250 2.0.0 Ok\r\n";
    }
    if (line == "MAIL FROM:<spammer@example.org>") return "553 5.7.1 Sender refused\r\n";
    if (line.rfind("MAIL", 0) == 0) return "250 2.1.0 Ok\r\n";
    if (line.rfind("RCPT", 0) == 0) return "250 2.1.5 Ok\r\n";
    if (line == "QUIT") return "221 2.0.0 Bye\r\n";
    return "250 2.0.0 Ok\r\n";
  });
  RelayConfig config = test_config(backend.port());
  config.use_xclient = false;
  UpstreamPool pool(io.get_executor(), config);
  const auto lines_since = [&](size_t from) {
    return std::vector<std::string>(backend.lines().begin() + static_cast<std::ptrdiff_t>(from),
                                    backend.lines().end());
  };

  auto accepted = pool.new_session();
  EXPECT_EQ(run(io, accepted->mail(sample_client(), mail_from("a@example.org"))).summary(),
            "250 2.1.0 Ok");
  ASSERT_EQ(backend.lines().size(), 1u);  // EHLO only: MAIL waits for the first RCPT
  EXPECT_EQ(run(io, accepted->rcpt("u@example.test")).code, 250);
  std::vector<std::string> sent = lines_since(1);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].rfind("XFORWARD NAME=", 0), 0u) << sent[0];
  EXPECT_EQ(sent[1], "MAIL FROM:<a@example.org>");
  EXPECT_EQ(sent[2], "RCPT TO:<u@example.test>");
  EXPECT_EQ(run(io, accepted->rcpt("v@example.test")).code, 250);  // one by one from here
  EXPECT_EQ(backend.lines().back(), "RCPT TO:<v@example.test>");
  run(io, accepted->reset());

  // Given up before any RCPT: nothing reaches the backend.
  const size_t before = backend.lines().size();
  EXPECT_EQ(backend.lines().back(), "RSET");  // of the transaction above
  EXPECT_EQ(run(io, accepted->mail(sample_client(), mail_from("b@example.org"))).code, 250);
  run(io, accepted->reset());
  EXPECT_EQ(run(io, accepted->mail(sample_client(), mail_from("c@example.org"))).code, 250);
  EXPECT_EQ(backend.lines().size(), before);

  // The backend refuses the sender: the refusal answers this RCPT and the next; the reply to
  // the RCPT pipelined with MAIL is read (and dropped), and the connection is pooled.
  run(io, accepted->reset());
  EXPECT_EQ(run(io, accepted->mail(sample_client(), mail_from("spammer@example.org"))).code, 250);
  EXPECT_EQ(run(io, accepted->rcpt("u@example.test")).summary(), "553 5.7.1 Sender refused");
  EXPECT_EQ(run(io, accepted->rcpt("v@example.test")).summary(), "553 5.7.1 Sender refused");
  EXPECT_EQ(backend.lines().back(), "RCPT TO:<u@example.test>");  // the second never went
  accepted->release();
  EXPECT_EQ(pool.idle_count(), 1u);
  pool.close_idle();

  auto refused = pool.new_session();
  EXPECT_EQ(run(io, refused->mail(sample_client(), mail_from("b@example.org"))).code, 250);
  smtp::Reply r = run(io, refused->rcpt("u@example.test"));
  EXPECT_EQ(r.summary(), "451 4.3.5 Backend refused the client introduction, try again later");
  r = run(io, refused->rcpt("v@example.test"));
  EXPECT_EQ(r.summary(), "451 4.3.5 Backend refused the client introduction, try again later");
  refused->release();

  auto closing = pool.new_session();
  EXPECT_EQ(run(io, closing->mail(sample_client(), mail_from("c@example.org"))).code, 250);
  r = run(io, closing->rcpt("u@example.test"));
  EXPECT_EQ(r.summary(), "421 4.3.2 Shutting down");
  closing->release();
  EXPECT_EQ(pool.idle_count(), 0u);
  EXPECT_EQ(backend.connections(), 3);
  drain(io);
}

}  // namespace
}  // namespace mailgate::relay
