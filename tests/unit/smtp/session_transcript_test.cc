// session_transcript_test.cc — golden SMTP transcripts through the real Session state machine
// with an in-process backend. Each transcripts/NAME.in holds client lines, NAME.ref the
// expected replies. Both are split into groups by "--" lines: group i of .in is sent in one
// write (pipelined), then exactly the lines of group i of .ref are read and compared.
// In .in, "<CR>", "<LF>" and "<CRLF>" stand for those bytes, and a line ending "<NOEOL>" is
// sent without CRLF; every other line gets CRLF. In .ref, "<CLOSED>" means the server closed
// the connection. The in-process backend answers like Postfix would: recipients whose local
// part is "unknown" get 550 5.1.1, a sender "tempfail@..." gets 451 4.3.0, and each message
// gets "250 2.0.0 Ok: queued as FAKE<n> (<bytes> bytes, <lines> lines)", counted over what it
// received without the gateway's Received field.
// Plugin chains: lines "#! plugin NAME SCRIPT [open|tempfail] [TIMEOUT_MS]" at the top of .in
// put the scripted test plugin tp_NAME (tests/unit/chain/plugins/scripted.c) in the session's
// chain with that script. When NAME.delivered exists, the messages the backend received
// (without the Received field), each followed by a line "====", must equal it (CRLF shown as
// LF).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read_until.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "chain/chain.h"
#include "relay/backend.h"
#include "smtp/session.h"
#include "spool/spool.h"

namespace mailgate::smtp {
namespace {

namespace fs = std::filesystem;

struct FakeBackendState {
  int messages = 0;
  std::vector<std::string> delivered;  // message bytes as the backend got them (no prepend)
};

// Length of a leading "Received:" field (with its continuation lines) in `text`.
size_t received_length(const std::string& text) {
  if (text.rfind("Received:", 0) != 0) return 0;
  size_t at = 0;
  for (;;) {
    size_t eol = text.find("\r\n", at);
    if (eol == std::string::npos) return text.size();
    at = eol + 2;
    if (at >= text.size() || (text[at] != ' ' && text[at] != '\t')) return at;
  }
}

class FakeBackend final : public relay::BackendSession {
 public:
  explicit FakeBackend(FakeBackendState& state) : state_(state) {}
  asio::awaitable<Reply> mail(const relay::ClientInfo&, const MailArgs& mail) override {
    if (mail.reverse_path.address.rfind("tempfail@", 0) == 0)
      co_return Reply::make(451, "4.3.0", "Try again later");
    in_tx_ = true;
    co_return Reply::make(250, "2.1.0", "Ok");
  }
  asio::awaitable<Reply> rcpt(const std::string& address) override {
    if (!in_tx_) co_return Reply::make(503, "5.5.1", "fake backend: RCPT outside transaction");
    if (address.rfind("unknown@", 0) == 0)
      co_return Reply::make(550, "5.1.1", "<" + address + ">: Recipient address rejected");
    co_return Reply::make(250, "2.1.5", "Ok");
  }
  asio::awaitable<Reply> data(const std::string& prepend, const spool::Spool& message,
                              uint64_t skip) override {
    if (!in_tx_) co_return Reply::make(503, "5.5.1", "fake backend: DATA outside transaction");
    in_tx_ = false;
    // What the backend gets, minus the gateway's own Received field (its date varies).
    std::string body = prepend.substr(received_length(prepend)), chunk;
    spool::Spool::Reader reader(message, skip);
    while (reader.next(chunk)) body += chunk;
    size_t lines = 0;
    for (char c : body) lines += c == '\n';
    state_.delivered.push_back(body);
    ++state_.messages;
    co_return Reply::make(250, "2.0.0",
                          "Ok: queued as FAKE" + std::to_string(state_.messages) + " (" +
                              std::to_string(body.size()) + " bytes, " + std::to_string(lines) +
                              " lines)");
  }
  asio::awaitable<void> reset() override {
    in_tx_ = false;
    co_return;
  }
  void release() override {}

 private:
  FakeBackendState& state_;
  bool in_tx_ = false;
};

std::string unescape(const std::string& line) {
  std::string out = line;
  bool eol = true;
  const std::string noeol = "<NOEOL>";
  if (out.size() >= noeol.size() && out.compare(out.size() - noeol.size(), noeol.size(), noeol) == 0) {
    out.resize(out.size() - noeol.size());
    eol = false;
  }
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = out.find(from); at != std::string::npos; at = out.find(from, at + to.size()))
      out.replace(at, from.size(), to);
  };
  replace_all("<CRLF>", "\r\n");
  replace_all("<CR>", "\r");
  replace_all("<LF>", "\n");
  if (eol) out += "\r\n";
  return out;
}

std::vector<std::vector<std::string>> read_groups(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::vector<std::string>> groups(1);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#", 0) == 0) continue;  // comment
    if (line == "--") {
      groups.emplace_back();
      continue;
    }
    groups.back().push_back(line);
  }
  return groups;
}

std::vector<std::string> transcript_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fs::path(MAILGATE_TEST_DATA_DIR) / "smtp/transcripts"))
    if (e.path().extension() == ".in") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<chain::PluginSpec> plugin_specs(const fs::path& file) {
  std::vector<chain::PluginSpec> specs;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("#! plugin ", 0) != 0) continue;
    std::istringstream words(line.substr(10));
    chain::PluginSpec spec;
    std::string script, mode;
    int timeout = 1000;
    words >> spec.name >> script >> mode >> timeout;
    spec.path = std::string(MAILGATE_TEST_PLUGIN_DIR) + "/tp_" + spec.name + ".so";
    spec.settings_json = "{\"script\":\"" + script + "\"}";
    spec.fail_mode = mode == "open" ? chain::FailMode::kOpen : chain::FailMode::kTempfail;
    spec.timeout = std::chrono::milliseconds(timeout);
    specs.push_back(spec);
  }
  return specs;
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class TranscriptTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TranscriptTest, MatchesReference) {
  const fs::path dir = fs::path(MAILGATE_TEST_DATA_DIR) / "smtp/transcripts";
  auto in_groups = read_groups(dir / (GetParam() + ".in"));
  auto ref_groups = read_groups(dir / (GetParam() + ".ref"));
  ASSERT_EQ(in_groups.size() + 1, ref_groups.size())
      << "the .ref has the greeting group plus one group per .in group (groups split by --)";

  fs::path spool_dir = fs::temp_directory_path() / ("mailgate-transcript-" + GetParam());
  fs::create_directories(spool_dir);
  auto config = std::make_shared<SessionConfig>();
  config->hostname = "mx.test";
  config->max_message_size = 10000;
  config->max_recipients = 3;
  config->max_errors = 10;
  config->client_timeout = std::chrono::milliseconds(3000);
  config->spool_dir = spool_dir.string();
  config->spool_memory_limit = 64;  // exercise the file path too
  if (GetParam().find("normalize") != std::string::npos)
    config->bare_eol = BareEolPolicy::kNormalize;

  asio::io_context ctx;
  chain::PluginCache cache;
  chain::WorkerPool pool(2, 16);  // after ctx: joined (abandoned calls done) before ctx goes
  ChainBinding binding;
  auto specs = plugin_specs(dir / (GetParam() + ".in"));
  if (!specs.empty()) {
    auto built = chain::Chain::build(specs, cache);
    ASSERT_TRUE(built) << built.error();
    binding.chain = *built;
    binding.pool = &pool;
  }

  asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  FakeBackendState backend;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto socket = co_await acceptor.async_accept(asio::use_awaitable);
        Session session(std::move(socket), config, std::make_unique<FakeBackend>(backend),
                        ListenerInfo{"127.0.0.1:25", "inbound"}, "TEST", binding);
        co_await session.run();
      },
      asio::detached);
  std::thread server([&] { ctx.run(); });

  asio::io_context client_ctx;
  asio::ip::tcp::socket client(client_ctx);
  client.connect(acceptor.local_endpoint());
  std::string buf;
  std::ostringstream actual, expected;
  auto read_group = [&](const std::vector<std::string>& want) {
    for (const std::string& w : want) {
      expected << w << "\n";
      std::error_code ec;
      size_t n = asio::read_until(client, asio::dynamic_buffer(buf), "\r\n", ec);
      if (ec) {
        actual << "<CLOSED>\n";
        if (w == "<CLOSED>") continue;
        return;
      }
      actual << buf.substr(0, n - 2) << "\n";
      buf.erase(0, n);
    }
  };
  read_group(ref_groups[0]);
  for (size_t i = 0; i < in_groups.size(); ++i) {
    std::string wire;
    for (const std::string& l : in_groups[i]) wire += unescape(l);
    std::error_code ec;
    asio::write(client, asio::buffer(wire), ec);
    read_group(ref_groups[i + 1]);
  }
  client.close();
  server.join();
  EXPECT_EQ(expected.str(), actual.str()) << "transcript " << GetParam();
  fs::path delivered_file = dir / (GetParam() + ".delivered");
  if (fs::exists(delivered_file)) {
    std::string got;
    for (const std::string& m : backend.delivered) got += m + "====\n";
    for (size_t at = got.find("\r\n"); at != std::string::npos; at = got.find("\r\n", at))
      got.erase(at, 1);
    EXPECT_EQ(read_file(delivered_file), got) << "messages delivered in " << GetParam();
  }
  fs::remove_all(spool_dir);
}

INSTANTIATE_TEST_SUITE_P(Golden, TranscriptTest, ::testing::ValuesIn(transcript_names()),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace mailgate::smtp
