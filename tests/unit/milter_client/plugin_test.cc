// The `milter` plugin (plugins/milter, the built milter.so) through the fake host, against milter
// servers written here: a real socket on 127.0.0.1 (port chosen by the OS), a thread that reads
// the plugin's packets and answers what each test scripts — well (negotiation, macros, stages,
// modifications, NR flags, skip, progress) and badly (oversized packets, unknown responses,
// modifications outside end of message, early close, silence, no listener). The packets the
// server sends are written out by hand here, not with the plugin's encoder.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mailgate/fake_host.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::string_literals;
using mailgate::fake::EnvelopeEdit;
using mailgate::fake::FakeHost;
using mailgate::fake::FakeSession;
using mailgate::fake::HeaderEdit;
using mailgate::fake::LoadedPlugin;

std::string be32(std::uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff),
                     static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string pkt(char command, const std::string& data = "") {
  return be32(static_cast<std::uint32_t>(data.size() + 1)) + command + data;
}

// SMFIF_ADDHDRS | SMFIF_CHGHDRS | ADDRCPT | DELRCPT | CHGFROM
constexpr std::uint32_t kEditActions = 0x1 | 0x10 | 0x4 | 0x8 | 0x40;

std::string optneg(std::uint32_t actions, std::uint32_t protocol, const std::string& extra = "") {
  return pkt('O', be32(6) + be32(actions) + be32(protocol) + extra);
}

struct Received {
  char command;
  std::string data;
};

// Closes the connection when an answer is this string.
const std::string kClose =
    "\xff"
    "close";

// A milter server: accepts connections one after the other and answers each packet with
// what `answer` returns (nothing for "", the connection closed for kClose).
class FakeMilter {
 public:
  using Answer = std::function<std::string(const Received&)>;

  // On 127.0.0.1 at a port the OS picks, or on the unix socket `unix_path` when given.
  explicit FakeMilter(Answer answer, std::string unix_path = "")
      : answer_(std::move(answer)), unix_path_(std::move(unix_path)) {
    if (unix_path_.empty()) {
      listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        throw std::runtime_error("FakeMilter: bind failed");
      socklen_t len = sizeof(addr);
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    } else {
      listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", unix_path_.c_str());
      ::unlink(unix_path_.c_str());
      if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        throw std::runtime_error("FakeMilter: bind to " + unix_path_ + " failed");
    }
    if (::listen(listen_fd_, 8) != 0) throw std::runtime_error("FakeMilter: listen failed");
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeMilter() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  }

  std::string socket() const {
    return unix_path_.empty() ? "inet:" + std::to_string(port_) + "@127.0.0.1"
                              : "unix:" + unix_path_;
  }
  std::vector<Received> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  // The commands received, as a string of command bytes ("OCDHM...").
  std::string commands() const {
    std::string out;
    for (const Received& r : received()) out += r.command;
    return out;
  }
  int connections() const { return connections_.load(); }
  // Waits (up to 5 s) until `command` arrived: commands without an answer (QUIT, ABORT) may
  // still be on their way when the plugin returns.
  bool wait_for(char command) const {
    for (int i = 0; i < 500; ++i) {
      if (commands().find(command) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  bool wait_readable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }
  bool read_exact(int fd, std::string* out, std::size_t n) {
    out->clear();
    while (out->size() < n) {
      if (!wait_readable(fd)) return false;
      char buf[65536];
      const ssize_t got = ::recv(fd, buf, std::min(sizeof(buf), n - out->size()), 0);
      if (got <= 0) return false;
      out->append(buf, static_cast<std::size_t>(got));
    }
    return true;
  }
  void serve() {
    while (!stop_) {
      if (!wait_readable(listen_fd_)) return;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      for (;;) {
        std::string head;
        std::string body;
        if (!read_exact(fd, &head, 4)) break;
        const std::uint32_t len =
            (static_cast<std::uint32_t>(static_cast<unsigned char>(head[0])) << 24) |
            (static_cast<std::uint32_t>(static_cast<unsigned char>(head[1])) << 16) |
            (static_cast<std::uint32_t>(static_cast<unsigned char>(head[2])) << 8) |
            static_cast<std::uint32_t>(static_cast<unsigned char>(head[3]));
        if (len == 0 || !read_exact(fd, &body, len)) break;
        Received r{body[0], body.substr(1)};
        {
          std::lock_guard lock(mu_);
          received_.push_back(r);
        }
        const std::string reply = answer_(r);
        if (reply == kClose || r.command == 'Q') break;
        if (!reply.empty()) (void)::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      ::close(fd);
    }
  }

  Answer answer_;
  std::string unix_path_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<Received> received_;
  std::thread thread_;
};

// A well-behaved milter: negotiates `actions`/`protocol`, continues everything; at end of
// body sends `eom` (modifications and a final reply).
FakeMilter::Answer polite(std::uint32_t actions, std::uint32_t protocol, std::string eom,
                          std::string symlist = "") {
  return [=](const Received& r) -> std::string {
    switch (r.command) {
      case 'O':
        return optneg(actions, protocol, symlist);
      case 'D':
      case 'A':
        return "";
      case 'E':
        return eom;
      default:
        return pkt('c');
    }
  };
}

std::string settings(const std::string& socket, const std::string& extra = "") {
  return R"({"milters":[{"name":"test","socket":")" + socket + "\"" + extra + "}]}";
}

// The macro pairs of the 'D' packet sent for `command`.
std::vector<std::pair<std::string, std::string>> macros_for(const std::vector<Received>& got,
                                                            char command) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Received& r : got) {
    if (r.command != 'D' || r.data.empty() || r.data[0] != command) continue;
    std::size_t pos = 1;
    while (pos < r.data.size()) {
      const std::size_t a = r.data.find('\0', pos);
      const std::size_t b = r.data.find('\0', a + 1);
      out.emplace_back(r.data.substr(pos, a - pos), r.data.substr(a + 1, b - a - 1));
      pos = b + 1;
    }
  }
  return out;
}

const char* kMessage =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.net\r\n"
    "Subject: hello\r\n"
    " folded\r\n"
    "\r\n"
    "Body line\r\n";

class MilterPlugin : public ::testing::Test {
 protected:
  LoadedPlugin load(const std::string& json) {
    return LoadedPlugin::open(host_, MAILGATE_MILTER_PLUGIN, json);
  }
  FakeHost host_;
};

TEST_F(MilterPlugin, SendsEveryStageAndAppliesModifications) {
  const std::string eom =
      pkt('h', "X-Milter\0seen\0"s) + pkt('i', be32(0) + "X-Top\0first\n\tsecond\0"s) +
      pkt('m', be32(1) + "Subject\0changed\0"s) + pkt('m', be32(1) + "To\0\0"s) +
      pkt('+', "<carol@example.net>\0"s) + pkt('-', "<bob@example.net>\0"s) +
      pkt('e', "<bounce@example.org>\0"s) + pkt('p') + pkt('c');
  FakeMilter milter(polite(kEditActions, 0, eom));
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  s.set(MG_ITEM_CLIENT_ADDR, "192.0.2.7").set(MG_ITEM_CLIENT_NAME, "client.example.net");
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_helo(plugin, s, "client.example.net"), MG_CONTINUE);
  s.set_mail_param("SIZE", "120");
  EXPECT_EQ(run_mail(plugin, s, "alice@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "bob@example.net"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);

  const std::vector<Received> got = milter.received();
  std::string commands;
  for (const Received& r : got)
    if (r.command != 'D') commands += r.command;
  EXPECT_EQ(commands, "OCHMRTLLLNBE");
  ASSERT_GE(got.size(), 2u);
  // Every action, body replacement and quarantine included (the fake host is ABI 1.3).
  EXPECT_EQ(got[0].data, be32(6) + be32(0x1ff) + be32(0x1ff7ff));
  for (const Received& r : got) {
    if (r.command == 'C') {
      EXPECT_EQ(r.data, "client.example.net\0"s + "4" + be32(40000).substr(2) + "192.0.2.7\0"s);
    }
    if (r.command == 'M') {
      EXPECT_EQ(r.data, "<alice@example.org>\0SIZE=120\0"s);
    }
    if (r.command == 'R') {
      EXPECT_EQ(r.data, "<bob@example.net>\0"s);
    }
    if (r.command == 'L' && r.data.rfind("Subject", 0) == 0) {
      EXPECT_EQ(r.data, "Subject\0hello\n folded\0"s);  // folding sent as sendmail sends it
    }
    if (r.command == 'B') {
      EXPECT_EQ(r.data, "Body line\r\n");
    }
  }
  const auto connect_macros = macros_for(got, 'C');
  EXPECT_NE(std::find(connect_macros.begin(), connect_macros.end(),
                      std::make_pair("{client_addr}"s, "192.0.2.7"s)),
            connect_macros.end());
  EXPECT_NE(std::find(connect_macros.begin(), connect_macros.end(),
                      std::make_pair("j"s, "mx.fake.test"s)),
            connect_macros.end());
  const auto mail_macros = macros_for(got, 'M');
  EXPECT_NE(std::find(mail_macros.begin(), mail_macros.end(),
                      std::make_pair("{mail_addr}"s, "alice@example.org"s)),
            mail_macros.end());
  const auto rcpt_macros = macros_for(got, 'R');
  EXPECT_NE(std::find(rcpt_macros.begin(), rcpt_macros.end(),
                      std::make_pair("{rcpt_addr}"s, "bob@example.net"s)),
            rcpt_macros.end());

  EXPECT_EQ(s.header("X-Milter"), "seen");
  EXPECT_EQ(s.header("X-Top"), "first\r\n\tsecond");
  EXPECT_EQ(s.headers().front().name, "X-Top");
  EXPECT_EQ(s.header("Subject"), "changed");
  EXPECT_FALSE(s.header("To").has_value());
  const auto& env = s.envelope_edits();
  ASSERT_EQ(env.size(), 3u);
  EXPECT_EQ(env[0].kind, EnvelopeEdit::Kind::kRcptAdd);
  EXPECT_EQ(env[0].address, "carol@example.net");
  EXPECT_EQ(env[1].kind, EnvelopeEdit::Kind::kRcptRemove);
  EXPECT_EQ(env[1].address, "bob@example.net");
  EXPECT_EQ(env[2].kind, EnvelopeEdit::Kind::kSetSender);
  EXPECT_EQ(env[2].address, "bounce@example.org");

  run_reset(plugin, s);
  run_close(plugin, s);
  EXPECT_TRUE(host_.violations().empty());
}

TEST_F(MilterPlugin, HeaderValuesAreExactWithAndWithoutLeadingSpace) {
  const auto headers_seen = [](const FakeMilter& m) {
    std::vector<std::string> out;
    for (const Received& r : m.received())
      if (r.command == 'L') out.push_back(r.data);
    return out;
  };
  {
    // Without HDR_LEADSPC one space (not a tab) after the colon is eaten, as sendmail does.
    FakeMilter milter(polite(kEditActions, 0, pkt('h', "X-Added\0 kept space\0"s) + pkt('c')));
    LoadedPlugin plugin = load(settings(milter.socket()));
    FakeSession s(host_);
    EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
    EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
    s.set_stage(MG_STAGE_DATA);
    for (const char* f : {"Subject:  two spaces", "X-Tab:\tafter a tab", "X-None:nothing"})
      s.add_raw_header(f);
    EXPECT_EQ(run_eoh(plugin, s), MG_CONTINUE);
    EXPECT_EQ(run_eom(plugin, s), MG_CONTINUE);
    EXPECT_EQ(headers_seen(milter),
              (std::vector<std::string>{"Subject\0 two spaces\0"s, "X-Tab\0\tafter a tab\0"s,
                                        "X-None\0nothing\0"s}));
    EXPECT_EQ(s.header("X-Added"), " kept space");
    run_close(plugin, s);
  }
  {
    // With HDR_LEADSPC the value is sent as is, and an edit's leading space is the one the
    // gateway writes after the colon.
    FakeMilter milter(
        polite(kEditActions, 0x100000, pkt('h', "X-Added\0 one space\0"s) + pkt('c')));
    LoadedPlugin plugin = load(settings(milter.socket()));
    FakeSession s(host_);
    EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
    EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
    s.set_stage(MG_STAGE_DATA);
    for (const char* f : {"Subject:  two spaces", "X-Tab:\tafter a tab", "X-None:nothing"})
      s.add_raw_header(f);
    EXPECT_EQ(run_eoh(plugin, s), MG_CONTINUE);
    EXPECT_EQ(run_eom(plugin, s), MG_CONTINUE);
    EXPECT_EQ(headers_seen(milter),
              (std::vector<std::string>{"Subject\0  two spaces\0"s, "X-Tab\0\tafter a tab\0"s,
                                        "X-None\0nothing\0"s}));
    EXPECT_EQ(s.header("X-Added"), "one space");
    run_close(plugin, s);
  }
}

TEST_F(MilterPlugin, NoReplyAndNoSendFlagsAreHonouredAndSymbolListsChooseMacros) {
  // NOHELO | NOBODY | NR_HDR | NR_RCPT; the symbol list asks for {rcpt_addr} only at MAIL.
  const std::uint32_t proto = 0x2 | 0x10 | 0x80 | 0x8000;
  FakeMilter milter([&](const Received& r) -> std::string {
    switch (r.command) {
      case 'O':
        return optneg(0x100, proto, be32(2) + "{mail_addr} i\0"s);
      case 'D':
      case 'A':
      case 'L':  // no reply: NR_HDR
      case 'R':  // no reply: NR_RCPT
        return "";
      default:
        return pkt('c');
    }
  });
  LoadedPlugin plugin = load(settings(milter.socket(), R"(,"timeout_ms":2000)"));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_helo(plugin, s, "h"), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "b@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);
  std::string commands;
  for (const Received& r : milter.received())
    if (r.command != 'D') commands += r.command;
  EXPECT_EQ(commands, "OCMRTLLLNE");  // no H, no B
  const auto mail_macros = macros_for(milter.received(), 'M');
  ASSERT_EQ(mail_macros.size(), 2u);
  EXPECT_EQ(mail_macros[0].first, "{mail_addr}");
  EXPECT_EQ(mail_macros[1].first, "i");
  run_close(plugin, s);
}

TEST_F(MilterPlugin, ReplyCodesRefuseWithTheMiltersText) {
  FakeMilter milter([](const Received& r) -> std::string {
    switch (r.command) {
      case 'O':
        return optneg(0, 0);
      case 'D':
      case 'A':
        return "";
      case 'R':
        if (r.data.rfind("<spam", 0) == 0) return pkt('y', "550 5.7.1 No spam here\0"s);
        return pkt('c');
      case 'E':
        return pkt('y', "451 4.7.1 Greylisted by milter\0"s);
      default:
        return pkt('c');
    }
  });
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "spam@example.org"), MG_REJECT);
  ASSERT_TRUE(s.reply());
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  EXPECT_EQ(s.reply()->text, "No spam here");
  // The refused recipient does not end the milter's transaction.
  EXPECT_EQ(run_rcpt(plugin, s, "ham@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_TEMPFAIL);
  EXPECT_EQ(s.reply()->code, 451);
  EXPECT_EQ(s.reply()->text, "Greylisted by milter");
  run_reset(plugin, s);
  run_close(plugin, s);
}

TEST_F(MilterPlugin, RejectAndDiscardAndAcceptAndAbort) {
  int message = 0;
  FakeMilter milter([&](const Received& r) -> std::string {
    switch (r.command) {
      case 'O':
        return optneg(0, 0);
      case 'D':
      case 'A':
        return "";
      case 'M':
        ++message;
        if (message == 1) return pkt('r');
        if (message == 2) return pkt('a');
        return pkt('c');
      case 'E':
        return pkt('d');
      default:
        return pkt('c');
    }
  });
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_REJECT);
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_EQ(s.reply()->enhanced, "5.7.1");
  run_reset(plugin, s);
  // Accepted: the milter hears nothing more of this message.
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "b@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);
  run_reset(plugin, s);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_DISCARD);
  run_reset(plugin, s);
  run_close(plugin, s);
  EXPECT_TRUE(milter.wait_for('Q'));
  std::string commands;
  for (const Received& r : milter.received())
    if (r.command != 'D') commands += r.command;
  // reject → ABORT at reset; accept → quiet, ABORT at reset; the third message runs to EOM
  // (no ABORT after it); QUIT at close.
  EXPECT_EQ(commands, "OCMAMAMTLLLNBEQ");
}

TEST_F(MilterPlugin, MailWithoutResetAbortsTheOpenTransactionFirst) {
  FakeMilter milter(polite(0, 0, pkt('c')));
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "b@example.org"), MG_CONTINUE);
  run_close(plugin, s);
  EXPECT_TRUE(milter.wait_for('Q'));
  std::string commands;
  for (const Received& r : milter.received())
    if (r.command != 'D') commands += r.command;
  EXPECT_EQ(commands, "OCMAMQ");
}

TEST_F(MilterPlugin, OversizedPacketFailsWithTempfail) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0);
    if (r.command == 'D') return "";
    if (r.command == 'M') return be32(0x7fffffff) + "c";
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_TEMPFAIL);
  EXPECT_EQ(s.reply()->code, 451);
  EXPECT_EQ(s.reply()->enhanced, "4.7.1");
  EXPECT_TRUE(host_.logged("exceeds the limit"));
  EXPECT_TRUE(host_.logged("fail mode tempfail"));
  run_reset(plugin, s);
  // Still failed for the rest of the session: the next transaction is refused too.
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_TEMPFAIL);
  run_close(plugin, s);
}

TEST_F(MilterPlugin, UnknownResponseWithContinueModeGoesOnWithoutTheMilter) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0);
    if (r.command == 'D') return "";
    if (r.command == 'H') return pkt('Z', "what");
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket(), R"(,"fail_mode":"continue")"));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_helo(plugin, s, "h"), MG_CONTINUE);
  EXPECT_TRUE(host_.logged("unknown response command 0x5a"));
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "b@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);
  run_close(plugin, s);
  EXPECT_EQ(milter.commands().find('M'), std::string::npos);  // never asked again
}

TEST_F(MilterPlugin, ModificationBeforeEndOfMessageIsAProtocolError) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(kEditActions, 0);
    if (r.command == 'D') return "";
    if (r.command == 'R') return pkt('h', "X-Early\0x\0"s);
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket(), R"(,"fail_mode":"reject")"));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "b@example.org"), MG_REJECT);
  EXPECT_EQ(s.reply()->code, 550);
  EXPECT_TRUE(host_.logged("modification ADDHEADER before the end of the message"));
  run_close(plugin, s);
}

TEST_F(MilterPlugin, UnnegotiatedModificationIsAProtocolError) {
  // Negotiates no actions, then adds a header at end of body.
  FakeMilter milter(polite(0, 0, pkt('h', "X-Sneaky\0x\0"s) + pkt('c')));
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_TEMPFAIL);
  EXPECT_TRUE(host_.logged("modification ADDHEADER without negotiating it"));
  EXPECT_FALSE(s.header("X-Sneaky").has_value());
  run_close(plugin, s);
}

TEST_F(MilterPlugin, OnAHostBeforeAbi13BodyReplacementIsNotOfferedAndRefusedAtNegotiation) {
  host_.set_table_size(offsetof(mg_host, body_replace));  // a 1.2 gateway
  FakeMilter milter(polite(0x2 /* CHGBODY */, 0, pkt('c')));
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);  // failures before MAIL answer at MAIL
  EXPECT_TRUE(host_.logged("body replacement and quarantine need a gateway of SDK ABI 1.3"));
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_TEMPFAIL);
  const std::vector<Received> got = milter.received();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].data.substr(4, 4), be32(0x1dd));  // neither CHGBODY nor QUARANTINE offered
  run_close(plugin, s);
}

// 'b' chunks (one with a line starting with a dot, one empty) make one body; 'q' quarantines.
TEST_F(MilterPlugin, ReplacesTheBodyFromItsChunksAndQuarantines) {
  const std::string eom = pkt('b', "New first line\r\n"s) + pkt('b', ".dot line\r\n"s) +
                          pkt('b', ""s) + pkt('b', "last\r\n"s) +
                          pkt('q', "suspicious attachment\0"s) + pkt('c');
  FakeMilter milter(polite(kEditActions | 0x2 | 0x20, 0, eom));
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_rcpt(plugin, s, "b@example.net"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);
  ASSERT_TRUE(s.replaced_body().has_value());
  EXPECT_EQ(*s.replaced_body(), "New first line\r\n.dot line\r\nlast\r\n");
  EXPECT_EQ(s.body(), "Body line\r\n");
  EXPECT_EQ(s.quarantine_reason(), "suspicious attachment");
  run_reset(plugin, s);
  run_close(plugin, s);
  EXPECT_TRUE(host_.violations().empty());
}

// Every milter is sent the body as received: a later milter's replacement replaces an earlier
// one's instead of being appended to it.
TEST_F(MilterPlugin, TheLastMilterReplacingTheBodyWins) {
  FakeMilter first(polite(0x2, 0, pkt('b', "first\r\n"s) + pkt('c')));
  FakeMilter second(polite(0x2, 0, pkt('b', "sec"s) + pkt('b', "ond\r\n"s) + pkt('c')));
  FakeMilter third(polite(0x2, 0, pkt('c')));
  LoadedPlugin plugin = load(R"({"milters":[{"name":"one","socket":")" + first.socket() +
                             R"("},{"name":"two","socket":")" + second.socket() +
                             R"("},{"name":"three","socket":")" + third.socket() + R"("}]})");
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);
  ASSERT_TRUE(s.replaced_body().has_value());
  EXPECT_EQ(*s.replaced_body(), "second\r\n");
  EXPECT_FALSE(s.quarantine_reason().has_value());
  run_close(plugin, s);
}

// A replacement over the gateway's maximum size is refused: the milter's fail mode applies
// (tempfail by default).
TEST_F(MilterPlugin, ABodyOverTheMaximumSizeAppliesTheFailMode) {
  FakeMilter milter(polite(0x2, 0, pkt('b', std::string(2000, 'x')) + pkt('c')));
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  s.set_max_message_size(1024);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin, s, kMessage), MG_TEMPFAIL);
  EXPECT_TRUE(host_.logged("the gateway refused the modification REPLBODY (2000 octets"));
  EXPECT_FALSE(s.replaced_body().has_value());
  run_close(plugin, s);
}

TEST_F(MilterPlugin, EarlyCloseInsideAPacketAndAfterNegotiation) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0);
    if (r.command == 'D') return "";
    if (r.command == 'C') return kClose;
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_TRUE(host_.logged("the milter closed the connection"));
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_TEMPFAIL);
  run_close(plugin, s);

  FakeMilter half([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0);
    if (r.command == 'D') return "";
    if (r.command == 'E') return be32(40) + "h" + "X-Cut\0"s;  // then closes: see below
    return pkt('c');
  });
  // The server closes after its half packet because the next thing it reads fails: the
  // plugin waits for the rest until the timeout, then reports it.
  LoadedPlugin plugin2 = load(settings(half.socket(), R"(,"timeout_ms":300)"));
  FakeSession s2(host_);
  EXPECT_EQ(run_connect(plugin2, s2), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin2, s2, "a@example.org"), MG_CONTINUE);
  EXPECT_EQ(run_message(plugin2, s2, kMessage), MG_TEMPFAIL);
  EXPECT_TRUE(host_.logged("no answer within 300 ms"));
  run_close(plugin2, s2);
}

TEST_F(MilterPlugin, SilentMilterTimesOut) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0);
    if (r.command == 'M') return "";  // never answers MAIL
    if (r.command == 'D') return "";
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket(), R"(,"timeout_ms":200)"));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_TEMPFAIL);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(190));
  EXPECT_TRUE(host_.logged("no answer within 200 ms"));
  run_close(plugin, s);
}

TEST_F(MilterPlugin, NoListenerAppliesTheFailMode) {
  // A port that was free a moment ago: bind, read it, close.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  const std::string socket = "inet:" + std::to_string(ntohs(addr.sin_port)) + "@127.0.0.1";
  {
    LoadedPlugin plugin = load(settings(socket));
    FakeSession s(host_);
    EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
    EXPECT_EQ(run_helo(plugin, s, "h"), MG_CONTINUE);
    EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_TEMPFAIL);
    EXPECT_EQ(s.reply()->code, 451);
    EXPECT_TRUE(host_.logged("connect: Connection refused"));
    run_close(plugin, s);
  }
  {
    LoadedPlugin plugin = load(settings(socket, R"(,"fail_mode":"continue")"));
    FakeSession s(host_);
    EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
    EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
    EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);
    run_close(plugin, s);
  }
}

TEST_F(MilterPlugin, SkipStopsTheBody) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0x400 /* SKIP */);
    if (r.command == 'D') return "";
    if (r.command == 'B') return pkt('s');
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  const std::string body(100, 'x');
  EXPECT_EQ(run_message(plugin, s, std::string("Subject: s\r\n\r\n") + body, 10), MG_CONTINUE);
  std::string commands;
  for (const Received& r : milter.received())
    if (r.command != 'D') commands += r.command;
  EXPECT_EQ(commands, "OCMTLNBE");  // one chunk, then skipped
  run_close(plugin, s);
}

TEST_F(MilterPlugin, RefusedHeloRefusesThatCommandOnly) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0);
    if (r.command == 'D') return "";
    if (r.command == 'H' && r.data == "bad.example\0"s) return pkt('y', "550 5.7.1 Bad HELO\0"s);
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_helo(plugin, s, "bad.example"), MG_REJECT);
  EXPECT_EQ(s.reply()->text, "Bad HELO");
  EXPECT_EQ(run_helo(plugin, s, "good.example"), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
  run_close(plugin, s);
  EXPECT_TRUE(milter.wait_for('Q'));
  std::string commands;
  for (const Received& r : milter.received())
    if (r.command != 'D') commands += r.command;
  EXPECT_EQ(commands, "OCHHMQ");
}

TEST_F(MilterPlugin, ConnectionRefusedByMilterRefusesTheSession) {
  FakeMilter milter([](const Received& r) -> std::string {
    if (r.command == 'O') return optneg(0, 0);
    if (r.command == 'D') return "";
    if (r.command == 'C') return pkt('y', "554 5.7.1 You are not welcome\0"s);
    return pkt('c');
  });
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  EXPECT_EQ(run_connect(plugin, s), MG_REJECT);
  EXPECT_EQ(s.reply()->code, 554);
  EXPECT_EQ(s.reply()->text, "You are not welcome");
  run_close(plugin, s);
}

TEST_F(MilterPlugin, TwoMiltersInOrderAndEachSessionHasItsOwnConnection) {
  FakeMilter first(polite(kEditActions, 0, pkt('h', "X-First\0one\0"s) + pkt('c')));
  FakeMilter second(polite(kEditActions, 0, pkt('h', "X-Second\0two\0"s) + pkt('c')));
  LoadedPlugin plugin = load(R"({"milters":[{"name":"one","socket":")" + first.socket() +
                             R"("},{"name":"two","socket":")" + second.socket() + R"("}]})");
  for (int i = 0; i < 2; ++i) {
    FakeSession s(host_);
    EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
    EXPECT_EQ(run_mail(plugin, s, "a@example.org"), MG_CONTINUE);
    EXPECT_EQ(run_message(plugin, s, kMessage), MG_CONTINUE);
    ASSERT_GE(s.header_edits().size(), 2u);
    EXPECT_EQ(s.header_edits()[0].name, "X-First");
    EXPECT_EQ(s.header_edits()[1].name, "X-Second");
    run_reset(plugin, s);
    run_close(plugin, s);
  }
  // Connections are accepted one after the other; wait until the second is counted.
  for (int i = 0; i < 100 && (first.connections() < 2 || second.connections() < 2); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(first.connections(), 2);
  EXPECT_EQ(second.connections(), 2);
}

TEST_F(MilterPlugin, UnixSocketAndAnIpv6Client) {
  const std::string path = "/tmp/mailgate-milterc-test-" + std::to_string(::getpid()) + ".sock";
  FakeMilter milter(polite(0, 0, pkt('c')), path);
  LoadedPlugin plugin = load(settings(milter.socket()));
  FakeSession s(host_);
  s.set(MG_ITEM_CLIENT_ADDR, "2001:db8::25").set(MG_ITEM_CLIENT_PORT, "4000");
  EXPECT_EQ(run_connect(plugin, s), MG_CONTINUE);
  EXPECT_EQ(run_mail(plugin, s, ""), MG_CONTINUE);  // the null sender
  run_close(plugin, s);
  bool seen_connect = false;
  bool seen_mail = false;
  for (const Received& r : milter.received()) {
    if (r.command == 'C') {
      seen_connect = true;
      EXPECT_EQ(r.data, "[2001:db8::25]\0"s + "6" + be32(4000).substr(2) + "2001:db8::25\0"s);
    }
    if (r.command == 'M') {
      seen_mail = true;
      EXPECT_EQ(r.data, "<>\0"s);
    }
  }
  EXPECT_TRUE(seen_connect);
  EXPECT_TRUE(seen_mail);
}

TEST_F(MilterPlugin, BadSettingsFailCreate) {
  EXPECT_THROW(load(R"({"milters":[{"socket":"inet:x@127.0.0.1"}]})"), std::runtime_error);
}

}  // namespace
