// smtp/session.cc — see session.h. The command table is at the top; each handler checks the
// state it is called in, and every reply the gateway makes itself is written here.
#include "smtp/session.h"

#include <ctime>
#include <string_view>
#include <utility>

#include "log/log.h"
#include "message/header_parser.h"
#include "obs/session_trace.h"
#include "obs/trace_writer.h"
#include "smtp/command_parser.h"
#include "smtp/sasl.h"
#include "util/ascii.h"

namespace mailgate::smtp {
namespace {

// The header field a quarantine adds for the backend to hold the message on.
constexpr std::string_view kQuarantineField = "X-Mailgate-Quarantine";

bool is_quarantine_field(std::string_view name) { return iequals(name, kQuarantineField); }

// The request methods of HTTP (RFC 9110 and the common extensions): never SMTP verbs.
bool is_http_method(std::string_view verb) {
  static constexpr std::string_view kMethods[] = {"GET",     "POST",  "HEAD",  "PUT",
                                                  "CONNECT", "DELETE", "OPTIONS", "PATCH",
                                                  "TRACE"};
  for (std::string_view m : kMethods) {
    if (verb.size() != m.size()) continue;
    bool same = true;
    for (size_t i = 0; i < m.size() && same; ++i)
      same = (verb[i] & ~0x20) == m[i];
    if (same) return true;
  }
  return false;
}

const Reply kBadSequenceHelo = Reply::make(503, "5.5.1", "Error: send HELO/EHLO first");
const Reply kBadSequenceMail = Reply::make(503, "5.5.1", "Error: need MAIL command");
const Reply kBadSequenceRcpt = Reply::make(503, "5.5.1", "Error: need RCPT command");
const Reply kNestedMail = Reply::make(503, "5.5.1", "Error: nested MAIL command");
const Reply kNoValidRecipients = Reply::make(554, "5.5.1", "Error: no valid recipients");
const Reply kOk = Reply::make(250, "2.0.0", "Ok");
const Reply kInTransaction = Reply::make(503, "5.5.1", "Error: MAIL transaction in progress");

// RFC 4954 §4: a line of an AUTH exchange may be 12288 octets long (with CRLF).
constexpr size_t kMaxAuthLine = 12288;
// Bounds on what a client may authenticate with (RFC 4616 §2 allows 255 octets each, more
// than any real password manager produces for the user; passwords get more room).
constexpr size_t kMaxAuthUser = 255;
constexpr size_t kMaxAuthPassword = 1024;

bool printable_identity(std::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

// Postfix's queue id is in "250 2.0.0 Ok: queued as 4Xyz"; other MTAs say "id=..." or put
// it last. Returns the best guess, or empty.
std::string queue_id_from(const Reply& r) {
  if (!r.positive() || r.lines.empty()) return {};
  std::string_view text = r.lines.back();
  for (std::string_view marker : {std::string_view("queued as "), std::string_view("id=")}) {
    size_t at = text.find(marker);
    if (at != std::string_view::npos) {
      std::string_view rest = text.substr(at + marker.size());
      size_t end = rest.find_first_of(" ,;)\t");
      return std::string(rest.substr(0, end));
    }
  }
  size_t last_space = text.rfind(' ');
  return std::string(last_space == std::string_view::npos ? text : text.substr(last_space + 1));
}

std::string rfc5322_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z", &tm);
  return buf;
}

// Printable form of client-supplied text for logs and headers: no control characters.
std::string sanitize(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  return out;
}

}  // namespace

const Session::CommandSpec Session::kCommands[] = {
    {Verb::kHelo, &Session::on_helo},
    {Verb::kEhlo, &Session::on_ehlo},
    {Verb::kMail, &Session::on_mail},
    {Verb::kRcpt, &Session::on_rcpt},
    {Verb::kData, &Session::on_data},
    {Verb::kRset, &Session::on_rset},
    {Verb::kNoop, &Session::on_noop},
    {Verb::kQuit, &Session::on_quit},
    {Verb::kVrfy, &Session::on_vrfy},
    {Verb::kHelp, &Session::on_help},
    {Verb::kExpn, &Session::on_not_implemented},   // no mailing-list disclosure
    {Verb::kBdat, &Session::on_not_implemented},   // CHUNKING is not offered
    {Verb::kStarttls, &Session::on_starttls},
    {Verb::kAuth, &Session::on_auth},
    {Verb::kUnknown, &Session::on_unknown},
};

const char* Session::state_name(State s) {
  switch (s) {
    case State::kGreeting: return "greeting";
    case State::kConnected: return "connected";
    case State::kReady: return "ready";
    case State::kMail: return "mail";
    case State::kRcpt: return "rcpt";
    case State::kData: return "data";
    case State::kClosing: return "closing";
  }
  return "?";
}

Session::Session(asio::ip::tcp::socket socket, std::shared_ptr<const SessionConfig> config,
                 std::unique_ptr<relay::BackendSession> backend, ListenerInfo listener,
                 std::string id, ChainBinding chain)
    : stream_(std::move(socket)),
      config_(std::move(config)),
      backend_(std::move(backend)),
      spool_(config_->spool_dir, config_->spool_memory_limit),
      decoder_(DataDecoder::Options{config_->bare_eol, config_->max_text_line,
                                    config_->max_message_size}),
      listener_(std::move(listener)),
      id_(std::move(id)),
      tx_context_(std::make_shared<chain::TxContext>(chain.chain ? chain.chain->entries().size()
                                                                 : 0)),
      runner_(chain.chain, tx_context_, chain.pool, stream_.socket().get_executor(),
              chain.completions) {
  std::error_code ec;
  auto remote = listener_.peer ? *listener_.peer : stream_.socket().remote_endpoint(ec);
  if (!ec) {
    asio::ip::address addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    client_.addr = addr.to_string();
    client_.port = remote.port();
  }
  client_.name = "unknown";
  std::lock_guard lock(tx_context_->mu);
  tx_context_->set_item(MG_ITEM_SESSION_ID, id_);
  tx_context_->set_item(MG_ITEM_CLIENT_ADDR, client_.addr);
  tx_context_->set_item(MG_ITEM_CLIENT_PORT, std::to_string(client_.port));
  tx_context_->set_item(MG_ITEM_CLIENT_NAME, client_.name);
  tx_context_->set_item(MG_ITEM_LOCAL_ADDR, listener_.address);
  tx_context_->set_item(MG_ITEM_PROFILE, listener_.profile);
  tx_context_->set_item(MG_ITEM_HOSTNAME, config_->hostname);
  tx_context_->set_item(MG_ITEM_PROTOCOL, "SMTP");
  tx_context_->max_message_size = config_->max_message_size;  // bounds body_replace()
  if (obs::trace_writer() != nullptr) runner_.set_trace(&plugin_calls_);
}

Session::~Session() = default;

void Session::enter(State s) {
  if (s == state_) return;
  MG_LOG_DEBUG("{}: state {} -> {}", id_, state_name(state_), state_name(s));
  state_ = s;
}

void Session::reply(const Reply& r, bool counts_as_error) {
  if (counts_as_error && ++errors_ >= config_->max_errors) {
    stream_.queue(Reply::make(421, "4.7.0", config_->hostname + " Error: too many errors"));
    MG_LOG_INFO("{}: too many errors from {}[{}]", id_, client_.name, client_.addr);
    enter(State::kClosing);
    return;
  }
  stream_.queue(r);
  if (r.closes()) enter(State::kClosing);
}

void Session::shutdown() {
  shutting_down_ = true;
  // Idle sessions end at once; a session in a transaction ends when it completes (or when
  // the server's grace period forces it, by calling shutdown() a second time).
  bool idle = state_ == State::kConnected || state_ == State::kReady;
  if (idle || forced_) stream_.cancel();
  forced_ = true;
}

asio::awaitable<void> Session::run() {
  MG_LOG_INFO("{}: connect from {}[{}]:{} to {} ({})", id_, client_.name, client_.addr,
              client_.port, listener_.address, listener_.profile);
  bool tls_ok = true;
  if (listener_.implicit_tls) tls_ok = co_await handshake("TLS");
  chain::Verdict connect;
  if (tls_ok) connect = co_await run_stage(MG_STAGE_CONNECT);
  if (!tls_ok) {
    enter(State::kClosing);  // nothing can be said to a client we share no TLS with
  } else if (connect.action == MG_TEMPFAIL || connect.action == MG_REJECT) {
    // Refused before the greeting: say why and close (a 421 must close; so do we after 554).
    Reply r = connect.reply;
    if (connect.action == MG_TEMPFAIL) r.code = 421;
    log_refusal("CONNECT", r, connect.plugin, "");
    stream_.queue(r);
    enter(State::kClosing);
  } else {
    // Anything the client sent before our greeting (during the CONNECT plugins or the greet
    // pause) means it does not wait for the server: a bot, or a cross-protocol attack.
    const bool early = co_await stream_.talked_within(config_->greet_pause);
    if (early) {
      MG_LOG_INFO("{}: reject: early talker {}[{}]: sent data before the greeting", id_,
                  client_.name, client_.addr);
      stream_.discard_buffered();
      stream_.queue(
          Reply::make(554, "5.5.1", "Error: protocol error, data sent before the greeting"));
      enter(State::kClosing);
    } else {
      stream_.queue(Reply::make(220, "", config_->hostname + " ESMTP mailgate"));
      enter(State::kConnected);
    }
  }
  size_t commands = 0;
  while (state_ != State::kClosing) {
    if (shutting_down_ && (state_ == State::kConnected || state_ == State::kReady)) {
      reply(Reply::make(421, "4.3.2", config_->hostname + " Service shutting down"));
      break;
    }
    // AUTH with an initial response may be longer than other commands (RFC 4954 §4); the
    // length of every other command is checked against max_command_line below.
    const bool auth_possible = listener_.submission && stream_.tls_active();
    const size_t max_line = auth_possible ? kMaxAuthLine : config_->max_command_line;
    LineStatus status = co_await stream_.read_line(max_line, config_->client_timeout);
    switch (status) {
      case LineStatus::kBareLf:
        if (config_->bare_eol == BareEolPolicy::kNormalize) {
          [[fallthrough]];
        } else {
          reply(Reply::make(500, "5.5.2", "Error: bare <LF> received; lines end with <CR><LF>"),
                true);
          break;
        }
      case LineStatus::kOk: {
        ++commands;
        const Command cmd = parse_command(stream_.line());
        if (stream_.line().size() + 2 > config_->max_command_line && cmd.verb != Verb::kAuth) {
          reply(Reply::make(500, "5.5.2", "Error: command line too long"), true);
          break;
        }
        co_await dispatch(cmd);
        break;
      }
      case LineStatus::kBareCr:
        reply(Reply::make(500, "5.5.2", "Error: bare <CR> received"), true);
        break;
      case LineStatus::kTooLong:
        reply(Reply::make(500, "5.5.2", "Error: command line too long"), true);
        break;
      case LineStatus::kClosed:
        MG_LOG_INFO("{}: lost connection after {} from {}[{}]", id_, state_name(state_),
                    client_.name, client_.addr);
        enter(State::kClosing);
        break;
      case LineStatus::kTimedOut:
        MG_LOG_INFO("{}: timeout after {} from {}[{}]", id_, state_name(state_), client_.name,
                    client_.addr);
        reply(Reply::make(421, "4.4.2", config_->hostname + " Error: timeout exceeded"));
        break;
      case LineStatus::kCancelled:
        reply(Reply::make(421, "4.3.2", config_->hostname + " Service shutting down"));
        break;
    }
  }
  co_await abort_transaction();
  co_await stream_.flush(config_->client_timeout);
  co_await stream_.shutdown_tls(std::chrono::milliseconds(500));
  stream_.close();
  backend_->release();
  co_await run_stage(MG_STAGE_CLOSE);
  MG_LOG_INFO("{}: disconnect from {}[{}] commands={} errors={} transactions={}", id_,
              client_.name, client_.addr, commands, errors_, transactions_);
}

asio::awaitable<void> Session::dispatch(const Command& cmd) {
  for (const CommandSpec& spec : kCommands) {
    if (spec.verb == cmd.verb) {
      co_await (this->*spec.handler)(cmd);
      co_return;
    }
  }
  co_await on_unknown(cmd);
}

asio::awaitable<void> Session::abort_transaction() {
  if (transaction_open()) {
    co_await backend_->reset();
    co_await end_transaction_for_plugins();
  }
  tx_ = Transaction{};
  if (state_ == State::kMail || state_ == State::kRcpt || state_ == State::kData)
    enter(State::kReady);
}

asio::awaitable<bool> Session::begin_helo(const Command& cmd, bool esmtp) {
  Reply bad = check_helo_argument(cmd.argument);
  if (!bad.empty()) {
    reply(bad, true);
    co_return false;
  }
  co_await abort_transaction();  // HELO/EHLO in a transaction resets it (RFC 5321 §4.1.4)
  client_.helo = sanitize(cmd.argument);
  client_.esmtp = esmtp;
  {
    std::lock_guard lock(tx_context_->mu);
    tx_context_->set_item(MG_ITEM_HELO, client_.helo);
  }
  publish_protocol();
  enter(State::kReady);
  chain::Verdict v = co_await run_stage(MG_STAGE_HELO, client_.helo);
  if (v.action == MG_TEMPFAIL || v.action == MG_REJECT) {
    log_refusal(esmtp ? "EHLO" : "HELO", v.reply, v.plugin, "helo=<" + client_.helo + ">");
    enter(State::kConnected);
    reply(v.reply, v.reply.permanent());
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> Session::on_helo(const Command& cmd) {
  bool ok = co_await begin_helo(cmd, false);
  if (ok) reply(Reply::make(250, "", config_->hostname));
}

asio::awaitable<void> Session::on_ehlo(const Command& cmd) {
  bool ok = co_await begin_helo(cmd, true);
  if (!ok) co_return;
  Reply r;
  r.code = 250;
  r.lines = {config_->hostname,
             "PIPELINING",
             "SIZE " + std::to_string(config_->max_message_size),
             "8BITMIME",
             "ENHANCEDSTATUSCODES",
             "SMTPUTF8"};
  if (listener_.tls && !stream_.tls_active()) r.lines.push_back("STARTTLS");
  // RFC 4954 §4 and RFC 8314: credentials travel under TLS only.
  if (listener_.submission && stream_.tls_active()) r.lines.push_back("AUTH PLAIN LOGIN");
  reply(r);
}

asio::awaitable<void> Session::on_mail(const Command& cmd) {
  switch (state_) {
    case State::kConnected:
      reply(kBadSequenceHelo, true);
      co_return;
    case State::kMail:
    case State::kRcpt:
      reply(kNestedMail, true);
      co_return;
    case State::kReady:
      break;
    default:
      MG_LOG_ERROR("{}: BUG: MAIL in state {}", id_, state_name(state_));
      co_return;
  }
  if (listener_.submission && client_.login.empty()) {
    MG_LOG_INFO("{}: reject: MAIL from {}[{}]: not authenticated on a submission listener",
                id_, client_.name, client_.addr);
    reply(Reply::make(530, "5.7.0", "Authentication required"), true);
    co_return;
  }
  auto parsed = parse_mail_args(cmd.argument);
  if (!parsed) {
    reply(parsed.error(), true);
    co_return;
  }
  MailArgs& args = *parsed;
  if (args.size && *args.size > config_->max_message_size) {
    reply(Reply::make(552, "5.3.4", "Message size exceeds fixed maximum message size"));
    co_return;
  }
  if (args.body == BodyType::kBinaryMime) {
    reply(Reply::make(555, "5.5.4", "Unsupported BODY=BINARYMIME (CHUNKING is not offered)"),
          true);
    co_return;
  }
  if (args.smtputf8 && !client_.esmtp) {
    reply(Reply::make(555, "5.5.4", "SMTPUTF8 requires EHLO"), true);
    co_return;
  }
  {
    std::lock_guard lock(tx_context_->mu);
    chain::TxContext& t = *tx_context_;
    t.reset_transaction();
    t.set_item(MG_ITEM_SENDER, args.reverse_path.address);
    t.set_item(MG_ITEM_TX_ID, id_ + "." + std::to_string(transactions_ + 1));
    if (args.size) t.mail_params.emplace_back("SIZE", std::to_string(*args.size));
    if (args.body == BodyType::k7Bit) t.mail_params.emplace_back("BODY", "7BIT");
    if (args.body == BodyType::k8BitMime) t.mail_params.emplace_back("BODY", "8BITMIME");
    if (args.smtputf8) t.mail_params.emplace_back("SMTPUTF8", "");
  }
  chain::Verdict v = co_await run_stage(MG_STAGE_MAIL, args.reverse_path.address);
  if (v.action == MG_TEMPFAIL || v.action == MG_REJECT) {
    log_refusal("MAIL", v.reply, v.plugin, "from=<" + sanitize(args.reverse_path.address) + ">");
    co_await end_transaction_for_plugins();
    reply(v.reply, v.reply.permanent());
    co_return;
  }
  {
    std::lock_guard lock(tx_context_->mu);
    if (tx_context_->new_sender) {
      args.reverse_path.address = *tx_context_->new_sender;
      tx_context_->set_item(MG_ITEM_SENDER, args.reverse_path.address);
      tx_context_->new_sender.reset();
    }
  }
  Reply r = co_await backend_->mail(client_, args);
  if (r.positive()) {
    tx_ = Transaction{};
    tx_.mail = std::move(args);
    tx_.number = ++transactions_;
    tx_.start = std::chrono::steady_clock::now();
    if (v.action == MG_DISCARD) {
      tx_.discard = true;
      tx_.discard_plugin = v.plugin;
    }
    enter(State::kMail);
  } else {
    co_await end_transaction_for_plugins();
    MG_LOG_INFO("{}: reject: MAIL from {}[{}]: {}; from=<{}>", id_, client_.name, client_.addr,
                r.summary(), sanitize(args.reverse_path.address));
  }
  reply(r);
}

asio::awaitable<void> Session::on_rcpt(const Command& cmd) {
  switch (state_) {
    case State::kConnected:
      reply(kBadSequenceHelo, true);
      co_return;
    case State::kReady:
      reply(kBadSequenceMail, true);
      co_return;
    case State::kMail:
    case State::kRcpt:
      break;
    default:
      MG_LOG_ERROR("{}: BUG: RCPT in state {}", id_, state_name(state_));
      co_return;
  }
  auto parsed = parse_rcpt_args(cmd.argument, tx_.mail.smtputf8);
  if (!parsed) {
    reply(parsed.error(), true);
    co_return;
  }
  if (recipients().size() >= config_->max_recipients) {
    reply(Reply::make(452, "4.5.3", "Error: too many recipients"));
    co_return;
  }
  ++tx_.rcpt_attempts;
  std::string& address = parsed->forward_path.address;
  {
    std::lock_guard lock(tx_context_->mu);
    tx_context_->set_item(MG_ITEM_CURRENT_RCPT, address);
    tx_context_->rewritten_rcpt.reset();
    tx_context_->drop_current_rcpt = false;
  }
  chain::Verdict v = co_await run_stage(MG_STAGE_RCPT, address);
  if (v.action == MG_TEMPFAIL || v.action == MG_REJECT) {
    {
      std::lock_guard lock(tx_context_->mu);
      tx_context_->added_rcpts.clear();  // added for this recipient: refused with it
    }
    log_refusal("RCPT", v.reply, v.plugin,
                "from=<" + sanitize(tx_.mail.reverse_path.address) + "> to=<" + sanitize(address) +
                    ">");
    reply(v.reply, v.reply.permanent());
    co_return;
  }
  if (v.action == MG_DISCARD) {
    tx_.discard = true;
    tx_.discard_plugin = v.plugin;
  }
  bool dropped = false;
  {
    std::lock_guard lock(tx_context_->mu);
    dropped = std::exchange(tx_context_->drop_current_rcpt, false);
  }
  if (dropped) {
    // A plugin removed the recipient being checked: accepted, never forwarded.
    MG_LOG_INFO("{}.{}: recipient <{}> dropped by a plugin", id_, tx_.number, sanitize(address));
    ++tx_.dropped_rcpts;
    enter(State::kRcpt);
    co_await forward_added_recipients();
    reply(Reply::make(250, "2.1.5", "Ok"));
    co_return;
  }
  {
    std::lock_guard lock(tx_context_->mu);
    if (tx_context_->rewritten_rcpt) {
      MG_LOG_INFO("{}.{}: recipient <{}> rewritten to <{}> by a plugin", id_, tx_.number,
                  sanitize(address), sanitize(*tx_context_->rewritten_rcpt));
      address = *tx_context_->rewritten_rcpt;
      tx_context_->rewritten_rcpt.reset();
    }
  }
  Reply r = co_await backend_->rcpt(address);
  if (r.positive()) {
    add_recipient(std::move(address));
    enter(State::kRcpt);
    co_await forward_added_recipients();
  } else {
    {
      // Recipients a plugin added for this one (e.g. a route's other destinations) go with it.
      std::lock_guard lock(tx_context_->mu);
      tx_context_->added_rcpts.clear();
    }
    MG_LOG_INFO("{}: reject: RCPT from {}[{}]: {}; from=<{}> to=<{}>", id_, client_.name,
                client_.addr, r.summary(), sanitize(tx_.mail.reverse_path.address),
                sanitize(address));
    obs::trace_refusal("RCPT",
                       {id_, tx_.number, listener_.profile, client_, tx_.mail.reverse_path.address,
                        recipients(), "", r, 0, 0, "to=<" + address + ">"},
                       "", *tx_context_, plugin_calls_);  // refused by the backend
  }
  reply(r, r.permanent());
}

asio::awaitable<void> Session::on_data(const Command& cmd) {
  switch (state_) {
    case State::kConnected:
      reply(kBadSequenceHelo, true);
      co_return;
    case State::kReady:
      reply(kBadSequenceMail, true);
      co_return;
    case State::kMail:
      reply(tx_.rcpt_attempts > 0 ? kNoValidRecipients : kBadSequenceRcpt, true);
      co_return;
    case State::kRcpt:
      break;
    default:
      MG_LOG_ERROR("{}: BUG: DATA in state {}", id_, state_name(state_));
      co_return;
  }
  if (!cmd.argument.empty()) {
    reply(Reply::make(501, "5.5.4", "Syntax: DATA"), true);
    co_return;
  }
  chain::Verdict v = co_await run_stage(MG_STAGE_DATA);
  if (v.action == MG_TEMPFAIL || v.action == MG_REJECT) {
    log_refusal("DATA", v.reply, v.plugin, "from=<" + sanitize(tx_.mail.reverse_path.address) + ">");
    reply(v.reply, v.reply.permanent());
    co_return;
  }
  if (v.action == MG_DISCARD) {
    tx_.discard = true;
    tx_.discard_plugin = v.plugin;
  }
  reply(Reply::make(354, "", "End data with <CR><LF>.<CR><LF>"));
  stream_.expect_message();
  enter(State::kData);
  Reply final_reply = co_await receive_message();
  if (state_ == State::kClosing) {
    if (!final_reply.empty()) stream_.queue(final_reply);
    co_return;
  }
  co_await end_transaction_for_plugins();
  tx_ = Transaction{};
  enter(State::kReady);
  reply(final_reply);
  if (state_ != State::kClosing && !client_.esmtp && stream_.has_buffered_input()) {
    // Without PIPELINING the client must wait for our reply: bytes already sent after the
    // end of data are not taken as commands.
    MG_LOG_WARNING("{}: improper pipelining after DATA from {}[{}]", id_, client_.name,
                   client_.addr);
    stream_.discard_buffered();
    reply(Reply::make(421, "4.5.0",
                      config_->hostname + " Error: improper command pipelining after DATA"));
  }
  if (shutting_down_ && state_ != State::kClosing) {
    reply(Reply::make(421, "4.3.2", config_->hostname + " Service shutting down"));
  }
}

asio::awaitable<Reply> Session::receive_message() {
  spool_.clear();
  decoder_.reset();
  for (;;) {
    std::string_view data = stream_.buffered();
    if (data.empty()) {
      LineStatus status = co_await stream_.fill(config_->client_timeout);
      if (status == LineStatus::kOk) continue;
      const char* why = status == LineStatus::kTimedOut    ? "timeout"
                        : status == LineStatus::kCancelled ? "shutdown"
                                                           : "lost connection";
      MG_LOG_INFO("{}.{}: {} during DATA from {}[{}]", id_, tx_.number, why, client_.name,
                  client_.addr);
      co_await backend_->reset();
      log_transaction(Reply{}, "aborted");
      co_await end_transaction_for_plugins();
      tx_ = Transaction{};
      enter(State::kClosing);
      if (status == LineStatus::kTimedOut)
        co_return Reply::make(421, "4.4.2", config_->hostname + " Error: timeout exceeded");
      if (status == LineStatus::kCancelled)
        co_return Reply::make(421, "4.3.2", config_->hostname + " Service shutting down");
      co_return Reply{};
    }
    size_t used = decoder_.feed(data, spool_);
    stream_.consume(used);
    if (decoder_.done()) break;
  }

  Reply refusal;
  if (decoder_.size_exceeded()) {
    refusal = Reply::make(552, "5.3.4", "Message size exceeds fixed maximum message size");
  } else if (decoder_.sink_failed()) {
    MG_LOG_ERROR("{}.{}: spool write failed: {}", id_, tx_.number, spool_.error().message());
    refusal = Reply::make(452, "4.3.1", "Insufficient system storage");
  } else if (decoder_.bare_eol_seen() && config_->bare_eol == BareEolPolicy::kReject) {
    refusal = Reply::make(554, "5.6.0",
                          "Message contains bare <CR> or <LF>; lines must end with <CR><LF>");
  } else if (decoder_.line_too_long()) {
    refusal = Reply::make(554, "5.6.0", "Message contains a line longer than 1000 octets");
  } else if (decoder_.has_nul()) {
    refusal = Reply::make(554, "5.6.0", "Message contains NUL characters");
  }
  if (!refusal.empty()) {
    co_await backend_->reset();
    log_transaction(refusal, refusal.transient() ? "tempfail" : "rejected");
    co_return refusal;
  }

  if (runner_.wants(MG_STAGE_HEADER) || runner_.wants(MG_STAGE_EOH) ||
      runner_.wants(MG_STAGE_BODY) || runner_.wants(MG_STAGE_EOM)) {
    chain::Verdict v = co_await run_message_stages();
    if (v.action == MG_TEMPFAIL || v.action == MG_REJECT) {
      co_await backend_->reset();
      log_transaction(v.reply, v.action == MG_TEMPFAIL ? "tempfail" : "rejected",
                      "plugin=" + v.plugin);
      co_return v.reply;
    }
    if (v.action == MG_DISCARD) {
      tx_.discard = true;
      tx_.discard_plugin = v.plugin;
    }
  }
  if (tx_.dropped_rcpts > 0 && recipients().empty()) {
    // Every recipient was dropped by a plugin: nothing to relay.
    tx_.discard = true;
    tx_.discard_plugin = "rcpt-drop";
  }
  if (tx_.discard) {
    // The one deliberate drop: the client is told the message was taken, nothing is relayed.
    co_await backend_->reset();
    Reply discarded = Reply::make(250, "2.0.0", "Ok: discarded");
    log_transaction(discarded, "discarded", "plugin=" + tx_.discard_plugin);
    co_return discarded;
  }
  Reply edit_failure = co_await apply_envelope_edits();
  if (!edit_failure.empty()) {
    co_await backend_->reset();
    log_transaction(edit_failure, edit_failure.transient() ? "tempfail" : "rejected",
                    "envelope-edit");
    co_return edit_failure;
  }
  uint64_t skip = 0;
  std::string prefix = message_prefix(&skip);
  std::string edits;  // the EOM message edits, for the log line and the trace
  {
    std::lock_guard lock(tx_context_->mu);
    if (tx_context_->new_body)
      edits = "body=replaced(" + std::to_string(tx_context_->new_body->size()) + ")";
    if (tx_context_->quarantine_reason)
      edits += (edits.empty() ? "" : " ") + std::string("quarantined=\"") +
               sanitize(*tx_context_->quarantine_reason) + '"';
  }
  Reply r = co_await backend_->data(prefix, spool_, skip);
  log_transaction(r, r.positive() ? "accepted" : r.transient() ? "tempfail" : "rejected", edits);
  if (r.positive()) errors_ = 0;  // like Postfix: the error limit counts errors without mail
  co_return r;
}

std::string Session::received_header() const {
  std::string h = "Received: from ";
  h += client_.helo.empty() ? std::string("unknown") : client_.helo;
  h += " (" + client_.name + " [" + client_.addr + "])\r\n\tby " + config_->hostname +
       " (mailgate) with ";
  h += protocol_name(tx_.mail.smtputf8);
  if (stream_.tls_active()) {
    h += " (" + tls_.version + ':' + tls_.cipher + ':' + std::to_string(tls_.bits) + ')';
  }
  h += " id " + id_ + "." + std::to_string(tx_.number);
  if (recipients().size() == 1) h += "\r\n\tfor <" + recipients().front() + ">";
  h += "; " + rfc5322_date() + "\r\n";
  return h;
}

void Session::log_transaction(const Reply& final_reply, const char* status,
                              const std::string& extra) {
  std::string to;
  for (const std::string& r : recipients()) {
    if (!to.empty()) to += ',';
    to += '<' + sanitize(r) + '>';
  }
  double delay = std::chrono::duration<double>(std::chrono::steady_clock::now() - tx_.start)
                     .count();
  double score;
  {
    std::lock_guard lock(tx_context_->mu);
    score = tx_context_->score();
  }
  MG_LOG_INFO(
      "{}.{}: client={}[{}]:{} helo=<{}> from=<{}> to={} nrcpt={} size={} queue_id={} "
      "status={} reply=\"{}\" score={:.2f} delay={:.3f}{}{}",
      id_, tx_.number, client_.name, client_.addr, client_.port, client_.helo,
      sanitize(tx_.mail.reverse_path.address), to, recipients().size(), decoder_.size(),
      std::string(status) == "accepted" ? queue_id_from(final_reply) : std::string(), status,
      sanitize(final_reply.summary()), score, delay, extra.empty() ? "" : " ", extra);
  obs::trace_transaction({id_, tx_.number, listener_.profile, client_,
                          tx_.mail.reverse_path.address, recipients(), status, final_reply,
                          decoder_.size(), delay, extra},
                         *tx_context_, &spool_, plugin_calls_);
}

asio::awaitable<chain::Verdict> Session::run_stage(mg_stage stage, std::string text) {
  if (!runner_.wants(stage)) co_return chain::Verdict{};
  chain::StageInput input;
  input.text = std::move(text);
  chain::Verdict v = co_await runner_.run(stage, std::move(input));
  co_return v;
}

asio::awaitable<chain::Verdict> Session::run_message_stages() {
  message::HeaderParser parser;
  spool::Spool::Reader reader(spool_);
  std::string chunk;
  while (!parser.done() && reader.next(chunk)) parser.feed(chunk);
  parser.finish();
  chain::StageInput headers;
  {
    std::lock_guard lock(tx_context_->mu);
    tx_context_->headers = parser.fields();
    tx_context_->headers_edited = false;
    tx_context_->body_offset = parser.body_offset();
    tx_context_->spool = &spool_;
    if (runner_.wants(MG_STAGE_HEADER)) headers.headers = tx_context_->headers;
  }
  if (runner_.wants(MG_STAGE_HEADER)) {
    chain::Verdict v = co_await runner_.run(MG_STAGE_HEADER, std::move(headers));
    if (v.action != MG_CONTINUE) co_return v;
  }
  for (mg_stage stage : {MG_STAGE_EOH, MG_STAGE_BODY, MG_STAGE_EOM}) {
    chain::Verdict v = co_await run_stage(stage);
    if (v.action != MG_CONTINUE) co_return v;
  }
  co_return chain::Verdict{};
}

void Session::add_recipient(std::string address) {
  std::lock_guard lock(tx_context_->mu);
  tx_context_->recipients.push_back(std::move(address));
}

asio::awaitable<void> Session::forward_added_recipients() {
  std::vector<std::string> added;
  {
    std::lock_guard lock(tx_context_->mu);
    added.swap(tx_context_->added_rcpts);
  }
  for (std::string& a : added) {
    if (std::find(recipients().begin(), recipients().end(), a) != recipients().end()) continue;
    Reply r = co_await backend_->rcpt(a);
    if (!r.positive()) {
      MG_LOG_WARNING("{}.{}: recipient <{}> added by a plugin refused by the backend: {}", id_,
                     tx_.number, sanitize(a), r.summary());
      continue;
    }
    add_recipient(std::move(a));
  }
}

asio::awaitable<Reply> Session::apply_envelope_edits() {
  std::optional<std::string> new_sender;
  std::vector<std::string> added, removed;
  {
    std::lock_guard lock(tx_context_->mu);
    new_sender.swap(tx_context_->new_sender);
    added.swap(tx_context_->added_rcpts);
    removed.swap(tx_context_->removed_rcpts);
  }
  if (!new_sender && added.empty() && removed.empty()) co_return Reply{};
  // The backend already has MAIL and RCPT: start its transaction again with the new envelope.
  std::vector<std::string> wanted;
  for (const std::string& r : recipients())
    if (std::find(removed.begin(), removed.end(), r) == removed.end()) wanted.push_back(r);
  for (const std::string& a : added)
    if (std::find(wanted.begin(), wanted.end(), a) == wanted.end()) wanted.push_back(a);
  if (new_sender) tx_.mail.reverse_path.address = *new_sender;
  MG_LOG_INFO("{}.{}: envelope edited by plugins: from=<{}> nrcpt={}", id_, tx_.number,
              sanitize(tx_.mail.reverse_path.address), wanted.size());
  if (wanted.empty()) co_return Reply::make(550, "5.7.1", "No recipients left after filtering");
  co_await backend_->reset();
  Reply r = co_await backend_->mail(client_, tx_.mail);
  if (!r.positive()) co_return r;
  std::vector<std::string> accepted;
  Reply last;
  for (const std::string& w : wanted) {
    last = co_await backend_->rcpt(w);
    if (last.positive()) {
      accepted.push_back(w);
    } else {
      MG_LOG_WARNING("{}.{}: backend refused edited recipient <{}>: {}", id_, tx_.number,
                     sanitize(w), last.summary());
    }
  }
  if (accepted.empty()) co_return last;
  std::lock_guard lock(tx_context_->mu);
  tx_context_->recipients = std::move(accepted);
  co_return Reply{};
}

asio::awaitable<void> Session::end_transaction_for_plugins() {
  co_await run_stage(MG_STAGE_RESET);
  plugin_calls_.clear();  // the trace keeps plugin calls per transaction (obs/session_trace)
  std::lock_guard lock(tx_context_->mu);
  tx_context_->reset_transaction();
}

void Session::log_refusal(const char* what, const Reply& r, const std::string& plugin,
                          const std::string& extra) {
  MG_LOG_INFO("{}: reject: {} from {}[{}]: {}; plugin={}{}{}", id_, what, client_.name,
              client_.addr, sanitize(r.summary()), plugin, extra.empty() ? "" : " ", extra);
  obs::trace_refusal(what,
                     {id_, tx_.number, listener_.profile, client_, tx_.mail.reverse_path.address,
                      recipients(), "", r, 0, 0, extra},
                     plugin, *tx_context_, plugin_calls_);
}

std::string Session::message_prefix(uint64_t* skip) const {
  std::string prefix = received_header();
  *skip = 0;
  std::lock_guard lock(tx_context_->mu);
  // A quarantined message is held by the backend's header_checks rule on this field.
  if (tx_context_->quarantine_reason)
    prefix += std::string(kQuarantineField) + ": " + *tx_context_->quarantine_reason + "\r\n";
  // Only a plugin's quarantine may hold a message: the client's own fields of that name are
  // removed (whenever the header was parsed, i.e. the chain has message-stage plugins, which
  // any plugin able to quarantine is).
  bool forged = false;
  for (const chain::HeaderField& f : tx_context_->headers) forged |= is_quarantine_field(f.name);
  if (!tx_context_->headers_edited && !tx_context_->new_body && !forged) return prefix;
  for (const chain::HeaderField& f : tx_context_->headers) {
    if (is_quarantine_field(f.name)) continue;
    if (!f.raw.empty()) {
      prefix += f.raw;
    } else {
      prefix += f.name;
      prefix += ": ";
      prefix += f.value;
      prefix += "\r\n";
    }
  }
  prefix += "\r\n";
  // The original header block (and its separator line, if it had one) is replaced.
  *skip = tx_context_->body_offset;
  if (tx_context_->new_body) {
    // So is the body (kept in memory, bounded by --max_message_size): nothing of the spool.
    prefix += *tx_context_->new_body;
    *skip = spool_.size();
  }
  return prefix;
}

asio::awaitable<void> Session::on_rset(const Command& cmd) {
  if (!cmd.argument.empty()) {
    reply(Reply::make(501, "5.5.4", "Syntax: RSET"), true);
    co_return;
  }
  co_await abort_transaction();
  reply(kOk);
}

asio::awaitable<void> Session::on_noop(const Command&) {
  reply(kOk);
  co_return;
}

asio::awaitable<void> Session::on_quit(const Command&) {
  co_await abort_transaction();
  reply(Reply::make(221, "2.0.0", "Bye"));
  enter(State::kClosing);
}

asio::awaitable<void> Session::on_vrfy(const Command& cmd) {
  if (cmd.argument.empty()) {
    reply(Reply::make(501, "5.5.4", "Syntax: VRFY address"), true);
    co_return;
  }
  reply(Reply::make(252, "2.0.0", "Cannot VRFY user, but will accept message for delivery"));
}

asio::awaitable<void> Session::on_help(const Command&) {
  Reply r;
  r.code = 214;
  r.lines = {"2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
             "2.0.0 See RFC 5321"};
  reply(r);
  co_return;
}

std::string Session::protocol_name(bool smtputf8) const {
  if (!client_.esmtp) return "SMTP";
  std::string p = smtputf8 ? "UTF8SMTP" : "ESMTP";
  if (stream_.tls_active()) p += 'S';
  if (!client_.login.empty()) p += 'A';
  return p;
}

void Session::publish_protocol() {
  std::lock_guard lock(tx_context_->mu);
  tx_context_->set_item(MG_ITEM_PROTOCOL, protocol_name(false));
}

asio::awaitable<bool> Session::handshake(const char* how) {
  std::string error = co_await stream_.start_tls(listener_.tls, config_->client_timeout);
  if (!error.empty()) {
    MG_LOG_INFO("{}: {} handshake failed with {}[{}]: {}", id_, how, client_.name, client_.addr,
                error);
    co_return false;
  }
  tls_ = stream_.tls_info();
  MG_LOG_INFO("{}: {} established with {}[{}]: {} with cipher {} ({} bits)", id_, how,
              client_.name, client_.addr, tls_.version, tls_.cipher, tls_.bits);
  std::lock_guard lock(tx_context_->mu);
  tx_context_->set_item(MG_ITEM_TLS_VERSION, tls_.version);
  tx_context_->set_item(MG_ITEM_TLS_CIPHER, tls_.cipher);
  co_return true;
}

bool Session::ready_between_transactions(const char* verb) {
  switch (state_) {
    case State::kConnected:
      reply(kBadSequenceHelo, true);
      return false;
    case State::kMail:
    case State::kRcpt:
      reply(kInTransaction, true);
      return false;
    case State::kReady:
      return true;
    default:
      MG_LOG_ERROR("{}: BUG: {} in state {}", id_, verb, state_name(state_));
      return false;
  }
}

asio::awaitable<void> Session::on_starttls(const Command& cmd) {
  if (stream_.tls_active()) {
    reply(Reply::make(503, "5.5.1", "Error: TLS already active"), true);
    co_return;
  }
  if (!listener_.tls) {
    reply(Reply::make(502, "5.5.1", "Error: command not implemented"), true);
    co_return;
  }
  if (!cmd.argument.empty()) {
    reply(Reply::make(501, "5.5.4", "Syntax: STARTTLS"), true);
    co_return;
  }
  if (!ready_between_transactions("STARTTLS")) co_return;
  if (stream_.has_buffered_input()) {
    // Commands pipelined after STARTTLS were sent in plaintext: an attacker in the path may
    // have put them there (CVE-2011-0411). start_tls() drops them; they are never run.
    MG_LOG_WARNING("{}: possible STARTTLS command injection from {}[{}]: {} bytes sent after "
                   "STARTTLS discarded",
                   id_, client_.name, client_.addr, stream_.buffered().size());
  }
  stream_.queue(Reply::make(220, "2.0.0", "Ready to start TLS"));
  bool up = co_await handshake("STARTTLS");
  if (!up) {
    enter(State::kClosing);
    co_return;
  }
  // RFC 3207 §4.2: everything learned from the client before TLS is forgotten; it must EHLO
  // again.
  client_.helo.clear();
  client_.esmtp = false;
  {
    std::lock_guard lock(tx_context_->mu);
    tx_context_->set_item(MG_ITEM_HELO, "");
  }
  publish_protocol();
  enter(State::kConnected);
}

asio::awaitable<bool> Session::read_auth_line(std::string* out) {
  out->clear();
  LineStatus status = co_await stream_.read_line(kMaxAuthLine, config_->client_timeout);
  switch (status) {
    case LineStatus::kOk:
    case LineStatus::kBareLf:
      out->assign(stream_.line());
      co_return true;
    case LineStatus::kTooLong:
      reply(Reply::make(500, "5.5.6", "Error: authentication exchange line is too long"), true);
      co_return false;
    case LineStatus::kBareCr:
      reply(Reply::make(501, "5.5.2", "Error: bare <CR> received"), true);
      co_return false;
    case LineStatus::kClosed:
      MG_LOG_INFO("{}: lost connection during AUTH from {}[{}]", id_, client_.name, client_.addr);
      enter(State::kClosing);
      co_return false;
    case LineStatus::kTimedOut:
      reply(Reply::make(421, "4.4.2", config_->hostname + " Error: timeout exceeded"));
      co_return false;
    case LineStatus::kCancelled:
      reply(Reply::make(421, "4.3.2", config_->hostname + " Service shutting down"));
      co_return false;
  }
  co_return false;
}

asio::awaitable<void> Session::on_auth(const Command& cmd) {
  if (!listener_.submission) {
    reply(Reply::make(503, "5.5.1", "Error: authentication not enabled"), true);
    co_return;
  }
  if (!ready_between_transactions("AUTH")) co_return;
  if (!stream_.tls_active()) {
    reply(Reply::make(538, "5.7.11", "Encryption required for requested authentication mechanism"),
          true);
    co_return;
  }
  if (!client_.login.empty()) {
    reply(Reply::make(503, "5.5.1", "Error: already authenticated"), true);
    co_return;
  }
  if (listener_.auth_throttle != nullptr && listener_.auth_throttle->blocked(client_.addr)) {
    MG_LOG_WARNING("{}: AUTH refused: too many failed attempts from {}[{}]", id_, client_.name,
                   client_.addr);
    reply(Reply::make(421, "4.7.0",
                      config_->hostname +
                          " Error: too many failed authentication attempts, try again later"));
    co_return;
  }
  std::string_view arg = cmd.argument;
  size_t space = arg.find(' ');
  std::string_view mech_name = arg.substr(0, space);
  std::string initial(space == std::string_view::npos ? std::string_view() : arg.substr(space + 1));
  const bool has_initial = space != std::string_view::npos;
  SaslMechanism mech = parse_sasl_mechanism(mech_name);
  if (mech == SaslMechanism::kUnknown) {
    reply(Reply::make(504, "5.5.4", "Unsupported authentication mechanism"), true);
    co_return;
  }
  ++auth_attempts_;
  const Reply aborted = Reply::make(501, "5.7.0", "Authentication aborted");
  const Reply undecodable = Reply::make(501, "5.5.2", "Cannot decode the response");
  relay::Credentials creds;
  std::string line;
  if (mech == SaslMechanism::kPlain) {
    if (has_initial) {
      line = std::move(initial);
    } else {
      stream_.queue(Reply::make(334, "", ""));
      bool got = co_await read_auth_line(&line);
      if (!got) co_return;
    }
    if (line == "*") {
      reply(aborted, true);
      co_return;
    }
    std::optional<std::string> decoded = base64_decode(line);
    wipe(line);
    if (!decoded) {
      reply(undecodable, true);
      co_return;
    }
    std::optional<PlainResponse> plain = parse_plain_response(*decoded);
    wipe(*decoded);
    if (plain) {
      creds.authzid = std::move(plain->authzid);
      creds.user = std::move(plain->authcid);
      creds.password = std::move(plain->password);
    }
  } else {  // LOGIN
    if (has_initial) {
      line = std::move(initial);
    } else {
      stream_.queue(Reply::make(334, "", "VXNlcm5hbWU6"));  // "Username:"
      bool got = co_await read_auth_line(&line);
      if (!got) co_return;
    }
    if (line == "*") {
      reply(aborted, true);
      co_return;
    }
    std::optional<std::string> user = base64_decode(line);
    if (!user) {
      reply(undecodable, true);
      co_return;
    }
    creds.user = std::move(*user);
    stream_.queue(Reply::make(334, "", "UGFzc3dvcmQ6"));  // "Password:"
    bool got = co_await read_auth_line(&line);
    if (!got) co_return;
    if (line == "*") {
      reply(aborted, true);
      co_return;
    }
    std::optional<std::string> password = base64_decode(line);
    wipe(line);
    if (!password) {
      reply(undecodable, true);
      co_return;
    }
    creds.password = std::move(*password);
  }
  const char* mech_text = mech == SaslMechanism::kPlain ? "PLAIN" : "LOGIN";
  const Reply invalid = Reply::make(535, "5.7.8", "Error: authentication failed");
  if (creds.user.empty() || creds.password.empty() || creds.user.size() > kMaxAuthUser ||
      creds.password.size() > kMaxAuthPassword || creds.authzid.size() > kMaxAuthUser ||
      !printable_identity(creds.user) || !printable_identity(creds.authzid) ||
      creds.password.find('\0') != std::string::npos) {
    MG_LOG_INFO("{}: AUTH {} failed from {}[{}]: malformed credentials", id_, mech_text,
                client_.name, client_.addr);
    if (listener_.auth_throttle != nullptr) listener_.auth_throttle->failed(client_.addr);
    reply(invalid, true);
    co_return;
  }
  Reply r = co_await backend_->authenticate(client_, creds);
  if (r.code == 235) {
    client_.login = creds.user;
    MG_LOG_INFO("{}: AUTH {} ok from {}[{}]: user=<{}>", id_, mech_text, client_.name,
                client_.addr, sanitize(client_.login));
    {
      std::lock_guard lock(tx_context_->mu);
      tx_context_->set_item(MG_ITEM_AUTH_USER, client_.login);
    }
    publish_protocol();
    reply(Reply::make(235, "2.7.0", "Authentication successful"));
    co_return;
  }
  if (r.code == 535) {
    MG_LOG_INFO("{}: AUTH {} failed from {}[{}]: user=<{}>: {}", id_, mech_text, client_.name,
                client_.addr, sanitize(creds.user), sanitize(r.summary()));
    if (listener_.auth_throttle != nullptr) listener_.auth_throttle->failed(client_.addr);
    reply(invalid, true);
    co_return;
  }
  MG_LOG_WARNING("{}: AUTH {} from {}[{}] not checked: backend said {}", id_, mech_text,
                 client_.name, client_.addr, sanitize(r.summary()));
  reply(Reply::make(454, "4.7.0", "Temporary authentication failure"));
}

asio::awaitable<void> Session::on_not_implemented(const Command&) {
  reply(Reply::make(502, "5.5.1", "Error: command not implemented"), true);
  co_return;
}

asio::awaitable<void> Session::on_unknown(const Command& cmd) {
  if (is_http_method(cmd.verb_text)) {
    // A web request sent to the SMTP port (a browser tricked into posting a form here, or a
    // scanner): close at once, so no later line of it is ever run as an SMTP command.
    MG_LOG_INFO("{}: reject: HTTP request ({}) from {}[{}]; closing", id_,
                sanitize(cmd.verb_text), client_.name, client_.addr);
    stream_.discard_buffered();
    stream_.queue(Reply::make(554, "5.5.1", "Error: this is an SMTP server, not HTTP; closing"));
    enter(State::kClosing);
    co_return;
  }
  reply(Reply::make(502, "5.5.2", "Error: command not recognized"), true);
  co_return;
}

}  // namespace mailgate::smtp
