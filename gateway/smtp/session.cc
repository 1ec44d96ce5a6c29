// smtp/session.cc — see session.h. The command table is at the top; each handler checks the
// state it is called in, and every reply the gateway makes itself is written here.
#include "smtp/session.h"

#include <ctime>

#include "log/log.h"
#include "smtp/command_parser.h"

namespace mailgate::smtp {
namespace {

const Reply kBadSequenceHelo = Reply::make(503, "5.5.1", "Error: send HELO/EHLO first");
const Reply kBadSequenceMail = Reply::make(503, "5.5.1", "Error: need MAIL command");
const Reply kBadSequenceRcpt = Reply::make(503, "5.5.1", "Error: need RCPT command");
const Reply kNestedMail = Reply::make(503, "5.5.1", "Error: nested MAIL command");
const Reply kNoValidRecipients = Reply::make(554, "5.5.1", "Error: no valid recipients");
const Reply kOk = Reply::make(250, "2.0.0", "Ok");

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
    {Verb::kStarttls, &Session::on_not_implemented},
    {Verb::kAuth, &Session::on_not_implemented},
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
                 std::string id)
    : stream_(std::move(socket)),
      config_(std::move(config)),
      backend_(std::move(backend)),
      spool_(config_->spool_dir, config_->spool_memory_limit),
      decoder_(DataDecoder::Options{config_->bare_eol, config_->max_text_line,
                                    config_->max_message_size}),
      listener_(std::move(listener)),
      id_(std::move(id)) {
  std::error_code ec;
  auto remote = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    asio::ip::address addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    client_.addr = addr.to_string();
    client_.port = remote.port();
  }
  client_.name = "unknown";
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
  stream_.queue(Reply::make(220, "", config_->hostname + " ESMTP mailgate"));
  enter(State::kConnected);
  size_t commands = 0;
  while (state_ != State::kClosing) {
    if (shutting_down_ && (state_ == State::kConnected || state_ == State::kReady)) {
      reply(Reply::make(421, "4.3.2", config_->hostname + " Service shutting down"));
      break;
    }
    LineStatus status = co_await stream_.read_line(config_->max_command_line,
                                                   config_->client_timeout);
    switch (status) {
      case LineStatus::kBareLf:
        if (config_->bare_eol == BareEolPolicy::kNormalize) {
          [[fallthrough]];
        } else {
          reply(Reply::make(500, "5.5.2", "Error: bare <LF> received; lines end with <CR><LF>"),
                true);
          break;
        }
      case LineStatus::kOk:
        ++commands;
        co_await dispatch(parse_command(stream_.line()));
        break;
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
  stream_.close();
  backend_->release();
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
  if (transaction_open()) co_await backend_->reset();
  tx_ = Transaction{};
  if (state_ == State::kMail || state_ == State::kRcpt || state_ == State::kData)
    enter(State::kReady);
}

void Session::begin_helo(std::string_view helo, bool esmtp) {
  client_.helo = sanitize(helo);
  client_.esmtp = esmtp;
  enter(State::kReady);
}

asio::awaitable<void> Session::on_helo(const Command& cmd) {
  Reply bad = check_helo_argument(cmd.argument);
  if (!bad.empty()) {
    reply(bad, true);
    co_return;
  }
  co_await abort_transaction();
  begin_helo(cmd.argument, false);
  reply(Reply::make(250, "", config_->hostname));
}

asio::awaitable<void> Session::on_ehlo(const Command& cmd) {
  Reply bad = check_helo_argument(cmd.argument);
  if (!bad.empty()) {
    reply(bad, true);
    co_return;
  }
  co_await abort_transaction();
  begin_helo(cmd.argument, true);
  Reply r;
  r.code = 250;
  r.lines = {config_->hostname,
             "PIPELINING",
             "SIZE " + std::to_string(config_->max_message_size),
             "8BITMIME",
             "ENHANCEDSTATUSCODES",
             "SMTPUTF8"};
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
  Reply r = co_await backend_->mail(client_, args);
  if (r.positive()) {
    tx_ = Transaction{};
    tx_.mail = std::move(args);
    tx_.number = ++transactions_;
    tx_.start = std::chrono::steady_clock::now();
    enter(State::kMail);
  } else {
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
  if (tx_.recipients.size() >= config_->max_recipients) {
    reply(Reply::make(452, "4.5.3", "Error: too many recipients"));
    co_return;
  }
  ++tx_.rcpt_attempts;
  std::string& address = parsed->forward_path.address;
  Reply r = co_await backend_->rcpt(address);
  if (r.positive()) {
    tx_.recipients.push_back(std::move(address));
    enter(State::kRcpt);
  } else {
    MG_LOG_INFO("{}: reject: RCPT from {}[{}]: {}; from=<{}> to=<{}>", id_, client_.name,
                client_.addr, r.summary(), sanitize(tx_.mail.reverse_path.address),
                sanitize(address));
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
  reply(Reply::make(354, "", "End data with <CR><LF>.<CR><LF>"));
  enter(State::kData);
  Reply final_reply = co_await receive_message();
  if (state_ == State::kClosing) {
    if (!final_reply.empty()) stream_.queue(final_reply);
    co_return;
  }
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

  Reply r = co_await backend_->data(received_header(), spool_);
  log_transaction(r, r.positive() ? "accepted" : r.transient() ? "tempfail" : "rejected");
  if (r.positive()) errors_ = 0;  // like Postfix: the error limit counts errors without mail
  co_return r;
}

std::string Session::received_header() const {
  std::string h = "Received: from ";
  h += client_.helo.empty() ? std::string("unknown") : client_.helo;
  h += " (" + client_.name + " [" + client_.addr + "])\r\n\tby " + config_->hostname +
       " (mailgate) with ";
  h += tx_.mail.smtputf8 ? "UTF8SMTP" : client_.esmtp ? "ESMTP" : "SMTP";
  h += " id " + id_ + "." + std::to_string(tx_.number);
  if (tx_.recipients.size() == 1) h += "\r\n\tfor <" + tx_.recipients.front() + ">";
  h += "; " + rfc5322_date() + "\r\n";
  return h;
}

void Session::log_transaction(const Reply& final_reply, const char* status) {
  std::string to;
  for (const std::string& r : tx_.recipients) {
    if (!to.empty()) to += ',';
    to += '<' + sanitize(r) + '>';
  }
  double delay = std::chrono::duration<double>(std::chrono::steady_clock::now() - tx_.start)
                     .count();
  MG_LOG_INFO(
      "{}.{}: client={}[{}]:{} helo=<{}> from=<{}> to={} nrcpt={} size={} queue_id={} "
      "status={} reply=\"{}\" delay={:.3f}",
      id_, tx_.number, client_.name, client_.addr, client_.port, client_.helo,
      sanitize(tx_.mail.reverse_path.address), to, tx_.recipients.size(), decoder_.size(),
      queue_id_from(final_reply), status, sanitize(final_reply.summary()), delay);
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

asio::awaitable<void> Session::on_not_implemented(const Command&) {
  reply(Reply::make(502, "5.5.1", "Error: command not implemented"), true);
  co_return;
}

asio::awaitable<void> Session::on_unknown(const Command&) {
  reply(Reply::make(502, "5.5.2", "Error: command not recognized"), true);
  co_return;
}

}  // namespace mailgate::smtp
