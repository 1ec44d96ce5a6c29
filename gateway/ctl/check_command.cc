// ctl/check_command.cc — `mailgatectl check`: runs a listener profile's plugin chain over a
// message file with a given envelope, as a gateway session would, and reports every plugin call
// (stage, plugin, action, reply, note, time), the symbols and score, the header and envelope
// edits and the final verdict, as text or (--json) one JSON object.
// Owns: the dry run. The chain is built from the policy rows exactly as the daemon builds it
// (server::chain_specs_for), plugins get the same host services (policy lookups from the same
// snapshot; DNS through the host resolver, which answers nothing unless --dns-servers is
// given), blocking plugins run on a worker pool with their timeouts and fail modes, and the
// stages are driven in smtp::Session's order with its semantics: connect, helo, mail, rcpt for
// each recipient (a refused one is reported and skipped; rewrites and added recipients are
// applied), data, then header, eoh, body and eom over the message as parsed by
// message::HeaderParser, the envelope edits of end of message, reset and close. The first
// refusing stage ends the run; ACCEPT ends only its own stage; DISCARD is noted and the message
// is then dropped, not relayed.
// Exit codes, besides cli.h's 1 and 2: 0 accept, 3 reject, 4 tempfail, 5 discard.
// Must not touch: any backend (nothing is relayed) or the database's rows (read only).
// Threading: the chain runs on an io_context driven by this thread; blocking plugins on a small
// chain::WorkerPool, whose late (timed-out) calls are waited for before the command returns.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chain/chain.h"
#include "chain/host_services.h"
#include "ctl/commands.h"
#include "ctl/edit.h"
#include "dns/resolver.h"
#include "message/header_parser.h"
#include "policy/snapshot.h"
#include "policy/validate.h"
#include "server/chain_specs.h"
#include "server/plugin_dns.h"
#include "smtp/command_parser.h"
#include "spool/spool.h"

namespace mailgate::ctl {
namespace {

constexpr int kExitReject = 3;
constexpr int kExitTempfail = 4;
constexpr int kExitDiscard = 5;

// The worker pool of one check: the daemon's default size (--plugin_threads), a small queue.
constexpr size_t kWorkerThreads = 4;
constexpr size_t kWorkerQueue = 64;

// The command line, validated.
struct CheckOptions {
  std::string client_ip;
  std::string client_name = "unknown";
  std::string helo;
  smtp::MailArgs mail;  // --from, parsed as the argument of MAIL
  std::vector<std::string> to;
  std::string profile = "inbound";
  std::string plugin_dir = MAILGATE_DEFAULT_PLUGIN_DIR;
  std::optional<std::string> auth_user;
  dns::ResolverConfig dns;
  std::string dns_text = "none";  // --dns-servers as given, for the report
  std::string file;
};

// One plugin call, with the recipient it was about in the RCPT stage.
struct Call {
  chain::TraceEntry trace;
  std::string recipient;
};

// One --to as the session would have handled it.
struct RecipientResult {
  std::string address;             // as given
  mg_action action = MG_CONTINUE;  // CONTINUE: accepted; TEMPFAIL or REJECT: refused
  std::string relayed_as;          // accepted: the address after a rewrite
  smtp::Reply reply;               // refused: what the client would get
  std::string plugin;              // refused: by whom
};

struct HeaderEdit {
  bool added = true;  // added (or the new value of a changed field); false: removed
  std::string name;
  std::string value;
};

struct EnvelopeEdit {
  mg_stage stage = MG_STAGE_MAIL;  // when the gateway applies it
  std::string op;  // "sender", "rcpt_rewrite", "rcpt_add", "rcpt_remove", "rcpt_drop"
  std::string address;             // the old sender / recipient ("" for the null sender)
  std::string new_address;         // sender and rcpt_rewrite: the new one
};

// The end of the run.
struct Final {
  mg_action action = MG_CONTINUE;  // CONTINUE: accepted (would be relayed)
  mg_stage stage = MG_STAGE_CONNECT;
  std::string recipient;  // refusal at RCPT: the (last) recipient refused
  std::string plugin;     // who decided; empty for the gateway's own decisions
  smtp::Reply reply;      // what the client would get
  std::string note;
  std::string sender;                   // accept: the envelope relayed
  std::vector<std::string> recipients;  // accept: the recipients relayed
};

struct Report {
  std::vector<Call> calls;
  std::vector<RecipientResult> recipients;
  std::vector<chain::Symbol> symbols;
  double score = 0;
  std::vector<HeaderEdit> header_edits;
  std::vector<EnvelopeEdit> envelope_edits;
  Final verdict;
};

bool refused(const chain::Verdict& v) { return v.action == MG_TEMPFAIL || v.action == MG_REJECT; }

// CR LF removed (RFC 5322 unfolding): a header value on one line.
std::string unfold(std::string_view value) {
  std::string out;
  for (char c : value)
    if (c != '\r' && c != '\n') out.push_back(c);
  return out;
}

// What the session does with one transaction, without a client or a backend: every stage
// through the ChainRunner in the session's order, recording what happened.
class DrySession {
 public:
  DrySession(const CheckOptions& options, std::shared_ptr<const chain::Chain> chain,
             chain::WorkerPool* pool, asio::any_io_executor executor, const spool::Spool& spool)
      : options_(options),
        spool_(spool),
        tx_(std::make_shared<chain::TxContext>(chain->entries().size())),
        runner_(std::move(chain), tx_, pool, std::move(executor)) {
    runner_.set_trace(&trace_);
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0)
      std::snprintf(host, sizeof host, "localhost");
    std::lock_guard lock(tx_->mu);
    tx_->set_item(MG_ITEM_SESSION_ID, "check");
    tx_->set_item(MG_ITEM_CLIENT_ADDR, options_.client_ip);
    tx_->set_item(MG_ITEM_CLIENT_PORT, "0");
    tx_->set_item(MG_ITEM_CLIENT_NAME, options_.client_name);
    tx_->set_item(MG_ITEM_LOCAL_ADDR, "0.0.0.0:0");
    tx_->set_item(MG_ITEM_PROFILE, options_.profile);
    tx_->set_item(MG_ITEM_HOSTNAME, host);
    tx_->set_item(MG_ITEM_PROTOCOL, "SMTP");
  }

  // The whole session: the transaction, then what the plugins hear when it ends.
  asio::awaitable<void> run() {
    co_await transaction();
    collect();
    // The session resets a transaction once MAIL was given (at once when MAIL is refused,
    // after the message, or at QUIT), and every session ends with CLOSE.
    if (mail_given_) co_await run_stage(MG_STAGE_RESET);
    co_await run_stage(MG_STAGE_CLOSE);
    // Data slots are freed now, as the session frees them, while the plugins (whose code
    // free_fn is) are still loaded: the context itself may outlive the chain.
    std::lock_guard lock(tx_->mu);
    tx_->reset_transaction();
    for (chain::Slot& s : tx_->session_slots) s.reset();
  }

  Report& report() { return report_; }

 private:
  // Runs one stage (CONTINUE at once when no plugin wants it), as Session::run_stage.
  asio::awaitable<chain::Verdict> run_stage(mg_stage stage, std::string text = {},
                                            const std::string& recipient = {}) {
    stage_ = stage;
    if (!runner_.wants(stage)) co_return chain::Verdict{};
    chain::StageInput input;
    input.text = std::move(text);
    chain::Verdict v = co_await runner_.run(stage, std::move(input));
    take_trace(recipient);
    co_return v;
  }

  void take_trace(const std::string& recipient) {
    for (chain::TraceEntry& t : trace_) report_.calls.push_back(Call{std::move(t), recipient});
    trace_.clear();
  }

  void decide(const chain::Verdict& v, std::string recipient = {}) {
    Final& f = report_.verdict;
    f.action = v.action;
    f.stage = stage_;
    f.plugin = v.plugin;
    f.reply = v.reply;
    f.recipient = std::move(recipient);
  }

  void note_discard(const chain::Verdict& v) {
    if (v.action != MG_DISCARD || discard_) return;
    discard_ = true;
    discard_stage_ = stage_;
    discard_plugin_ = v.plugin;
  }

  asio::awaitable<void> transaction() {
    chain::Verdict v = co_await run_stage(MG_STAGE_CONNECT);
    if (refused(v)) {
      if (v.action == MG_TEMPFAIL) v.reply.code = 421;  // refused before the greeting
      decide(v);
      co_return;
    }

    {
      std::lock_guard lock(tx_->mu);
      tx_->set_item(MG_ITEM_HELO, options_.helo);
      tx_->set_item(MG_ITEM_PROTOCOL, "ESMTP");
    }
    v = co_await run_stage(MG_STAGE_HELO, options_.helo);
    if (refused(v)) {
      decide(v);
      co_return;
    }
    if (options_.auth_user) {  // AUTH comes after EHLO
      std::lock_guard lock(tx_->mu);
      tx_->set_item(MG_ITEM_AUTH_USER, *options_.auth_user);
      tx_->set_item(MG_ITEM_PROTOCOL, "ESMTPA");
    }

    mail_given_ = true;
    sender_ = options_.mail.reverse_path.address;
    {
      std::lock_guard lock(tx_->mu);
      tx_->reset_transaction();
      tx_->set_item(MG_ITEM_SENDER, sender_);
      tx_->set_item(MG_ITEM_TX_ID, "check.1");
      if (options_.mail.smtputf8) tx_->mail_params.emplace_back("SMTPUTF8", "");
    }
    v = co_await run_stage(MG_STAGE_MAIL, sender_);
    if (refused(v)) {
      decide(v);
      co_return;
    }
    {
      std::lock_guard lock(tx_->mu);
      if (tx_->new_sender) {
        report_.envelope_edits.push_back({MG_STAGE_MAIL, "sender", sender_, *tx_->new_sender});
        sender_ = *tx_->new_sender;
        tx_->set_item(MG_ITEM_SENDER, sender_);
        tx_->new_sender.reset();
      }
    }
    note_discard(v);

    std::optional<size_t> last_refusal;  // index into report_.recipients
    for (const std::string& given : options_.to) {
      std::string address = given;
      {
        std::lock_guard lock(tx_->mu);
        tx_->set_item(MG_ITEM_CURRENT_RCPT, address);
        tx_->rewritten_rcpt.reset();
        tx_->drop_current_rcpt = false;
      }
      v = co_await run_stage(MG_STAGE_RCPT, address, given);
      RecipientResult r;
      r.address = given;
      if (refused(v)) {
        r.action = v.action;
        r.reply = v.reply;
        r.plugin = v.plugin;
        last_refusal = report_.recipients.size();
        report_.recipients.push_back(std::move(r));
        continue;
      }
      note_discard(v);
      bool dropped = false;
      {
        std::lock_guard lock(tx_->mu);
        dropped = std::exchange(tx_->drop_current_rcpt, false);
        if (dropped) tx_->rewritten_rcpt.reset();
      }
      if (dropped) {
        // rcpt_remove of the recipient being checked: accepted (250), never relayed.
        report_.envelope_edits.push_back({MG_STAGE_RCPT, "rcpt_drop", address, ""});
        ++dropped_;
        report_.recipients.push_back(std::move(r));  // relayed_as stays empty
        forward_added_recipients();
        continue;
      }
      {
        std::lock_guard lock(tx_->mu);
        if (tx_->rewritten_rcpt) {
          report_.envelope_edits.push_back(
              {MG_STAGE_RCPT, "rcpt_rewrite", address, *tx_->rewritten_rcpt});
          address = *tx_->rewritten_rcpt;
          tx_->rewritten_rcpt.reset();
        }
        tx_->recipients.push_back(address);
      }
      recipients_.push_back(address);
      r.relayed_as = address;
      report_.recipients.push_back(std::move(r));
      forward_added_recipients();
    }
    if (recipients_.empty() && dropped_ > 0 && !discard_) {
      // Every accepted recipient was dropped: the gateway takes the message and discards it.
      discard_ = true;
      discard_stage_ = MG_STAGE_RCPT;
      discard_plugin_ = "rcpt-drop";
    }
    if (recipients_.empty() && dropped_ == 0) {
      // No recipient left: the verdict is the last refusal (the client gets no DATA).
      const RecipientResult& last = report_.recipients.at(*last_refusal);
      Final& f = report_.verdict;
      f.action = last.action;
      f.stage = MG_STAGE_RCPT;
      f.recipient = last.address;
      f.plugin = last.plugin;
      f.reply = last.reply;
      f.note = "no recipient accepted";
      co_return;
    }

    v = co_await run_stage(MG_STAGE_DATA);
    if (refused(v)) {
      decide(v);
      co_return;
    }
    note_discard(v);

    if (runner_.wants(MG_STAGE_HEADER) || runner_.wants(MG_STAGE_EOH) ||
        runner_.wants(MG_STAGE_BODY) || runner_.wants(MG_STAGE_EOM)) {
      v = co_await run_message_stages();
      if (refused(v)) {
        decide(v);
        co_return;
      }
      note_discard(v);
    }
    if (discard_) {
      Final& f = report_.verdict;
      f.action = MG_DISCARD;
      f.stage = discard_stage_;
      f.plugin = discard_plugin_;
      f.reply = smtp::Reply::make(250, "2.0.0", "Ok: discarded");
      f.note = "nothing is relayed";
      co_return;
    }
    if (auto refusal = apply_envelope_edits()) {
      Final& f = report_.verdict;
      f.action = MG_REJECT;
      f.stage = MG_STAGE_EOM;
      f.reply = *refusal;
      f.note = "envelope edits removed every recipient";
      co_return;
    }
    report_.verdict.action = MG_CONTINUE;
    report_.verdict.sender = sender_;
    report_.verdict.recipients = recipients_;
  }

  // As Session::run_message_stages: the spooled message parsed into header fields, then
  // HEADER (every field), EOH, BODY and EOM; the first stage that does not continue ends it.
  asio::awaitable<chain::Verdict> run_message_stages() {
    message::HeaderParser parser;
    spool::Spool::Reader reader(spool_);
    std::string chunk;
    while (!parser.done() && reader.next(chunk)) parser.feed(chunk);
    parser.finish();
    original_headers_ = parser.fields();
    chain::StageInput headers;
    {
      std::lock_guard lock(tx_->mu);
      tx_->headers = parser.fields();
      tx_->headers_edited = false;
      tx_->body_offset = parser.body_offset();
      tx_->spool = &spool_;
      if (runner_.wants(MG_STAGE_HEADER)) headers.headers = tx_->headers;
    }
    if (runner_.wants(MG_STAGE_HEADER)) {
      stage_ = MG_STAGE_HEADER;
      chain::Verdict v = co_await runner_.run(MG_STAGE_HEADER, std::move(headers));
      take_trace({});
      if (v.action != MG_CONTINUE) co_return v;
    }
    for (mg_stage stage : {MG_STAGE_EOH, MG_STAGE_BODY, MG_STAGE_EOM}) {
      chain::Verdict v = co_await run_stage(stage);
      if (v.action != MG_CONTINUE) co_return v;
    }
    co_return chain::Verdict{};
  }

  // As Session::forward_added_recipients (the backend taking every one).
  void forward_added_recipients() {
    std::vector<std::string> added;
    {
      std::lock_guard lock(tx_->mu);
      added.swap(tx_->added_rcpts);
    }
    for (std::string& a : added) {
      if (std::find(recipients_.begin(), recipients_.end(), a) != recipients_.end()) continue;
      {
        std::lock_guard lock(tx_->mu);
        tx_->recipients.push_back(a);
      }
      report_.envelope_edits.push_back({MG_STAGE_RCPT, "rcpt_add", a, {}});
      recipients_.push_back(std::move(a));
    }
  }

  // As Session::apply_envelope_edits: sender change and recipients added or removed since
  // RCPT. Returns the refusal when no recipient is left.
  std::optional<smtp::Reply> apply_envelope_edits() {
    std::optional<std::string> new_sender;
    std::vector<std::string> added, removed;
    {
      std::lock_guard lock(tx_->mu);
      new_sender.swap(tx_->new_sender);
      added.swap(tx_->added_rcpts);
      removed.swap(tx_->removed_rcpts);
    }
    if (!new_sender && added.empty() && removed.empty()) return std::nullopt;
    auto& edits = report_.envelope_edits;
    std::vector<std::string> wanted;
    for (const std::string& r : recipients_) {
      if (std::find(removed.begin(), removed.end(), r) == removed.end()) {
        wanted.push_back(r);
      } else {
        edits.push_back({MG_STAGE_EOM, "rcpt_remove", r, {}});
      }
    }
    for (const std::string& a : added) {
      if (std::find(wanted.begin(), wanted.end(), a) != wanted.end()) continue;
      wanted.push_back(a);
      edits.push_back({MG_STAGE_EOM, "rcpt_add", a, {}});
    }
    if (new_sender) {
      edits.push_back({MG_STAGE_EOM, "sender", sender_, *new_sender});
      sender_ = *new_sender;
    }
    if (wanted.empty())
      return smtp::Reply::make(550, "5.7.1", "No recipients left after filtering");
    recipients_ = std::move(wanted);
    return std::nullopt;
  }

  // Symbols, score and header edits, before RESET forgets them.
  void collect() {
    std::lock_guard lock(tx_->mu);
    report_.symbols = tx_->symbols;
    report_.score = tx_->score();
    if (!tx_->headers_edited) return;
    // Fields a plugin added or changed have no raw text; original fields that are gone were
    // removed (or changed: they show as removed, their new value as added).
    std::vector<const chain::HeaderField*> kept;
    for (const chain::HeaderField& f : tx_->headers)
      if (!f.raw.empty()) kept.push_back(&f);
    for (const chain::HeaderField& o : original_headers_) {
      auto it = std::find_if(kept.begin(), kept.end(),
                             [&](const chain::HeaderField* f) { return f && f->raw == o.raw; });
      if (it != kept.end()) {
        *it = nullptr;  // matched once
      } else {
        report_.header_edits.push_back({false, o.name, o.value});
      }
    }
    for (const chain::HeaderField& f : tx_->headers)
      if (f.raw.empty()) report_.header_edits.push_back({true, f.name, f.value});
  }

  const CheckOptions& options_;
  const spool::Spool& spool_;
  std::shared_ptr<chain::TxContext> tx_;
  chain::ChainRunner runner_;
  std::vector<chain::TraceEntry> trace_;
  Report report_;
  mg_stage stage_ = MG_STAGE_CONNECT;  // the stage running (or last run)
  bool mail_given_ = false;
  std::string sender_;
  std::vector<std::string> recipients_;  // accepted, after rewrites and additions
  std::vector<chain::HeaderField> original_headers_;
  bool discard_ = false;
  size_t dropped_ = 0;  // recipients dropped by a plugin (accepted, never relayed)
  mg_stage discard_stage_ = MG_STAGE_MAIL;
  std::string discard_plugin_;
};

// --- command line ---

bool printable(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return !s.empty();
}

// "<a@b>" -> "a@b": both forms are accepted for --from and --to.
std::string strip_brackets(std::string s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
  return s;
}

bool has_non_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

std::optional<CheckOptions> parse_options(Context& ctx, const Args& args, int* exit) {
  CheckOptions o;
  auto bad = [&](std::string_view message) {
    *exit = usage_error(ctx, message);
    return std::nullopt;
  };

  std::string ip_text = *args.value("--client-ip");
  std::error_code ec;
  asio::ip::address ip = asio::ip::make_address(ip_text, ec);
  if (ec) return bad(fmt::format("--client-ip: '{}' is not an IP address", ip_text));
  if (ip.is_v6() && ip.to_v6().is_v4_mapped())
    ip = asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6());
  o.client_ip = ip.to_string();

  if (auto name = args.value("--client-name")) {
    if (!printable(*name)) return bad(fmt::format("--client-name: '{}' is not a host name", *name));
    o.client_name = *name;
  }

  o.helo = args.value("--helo").value_or(ip.is_v4() ? "[" + o.client_ip + "]"
                                                    : "[IPv6:" + o.client_ip + "]");
  if (smtp::Reply r = smtp::check_helo_argument(o.helo); !r.empty())
    return bad(fmt::format("--helo: '{}' is not a valid HELO argument ({})", o.helo, r.summary()));

  // A non-ASCII address anywhere in the envelope needs SMTPUTF8, as a client would declare it.
  std::string from = strip_brackets(*args.value("--from"));
  const std::vector<std::string> to_given = args.values("--to");
  bool utf8 = has_non_ascii(from);
  for (const std::string& t : to_given) utf8 = utf8 || has_non_ascii(t);
  auto mail = smtp::parse_mail_args("FROM:<" + from + ">" + (utf8 ? " SMTPUTF8" : ""));
  if (!mail) return bad(fmt::format("--from: '{}' is refused: {}", from, mail.error().summary()));
  o.mail = std::move(*mail);

  for (const std::string& given : to_given) {
    std::string to = strip_brackets(given);
    auto rcpt = smtp::parse_rcpt_args("TO:<" + to + ">", o.mail.smtputf8);
    if (!rcpt) return bad(fmt::format("--to: '{}' is refused: {}", to, rcpt.error().summary()));
    o.to.push_back(rcpt->forward_path.address);
  }

  if (auto profile = args.value("--profile")) {
    if (*profile == "*")
      return bad("--profile: name a listener profile ('*' only marks rows for every profile)");
    if (auto problem = policy::check_profile(*profile)) return bad("--profile: " + *problem);
    o.profile = *profile;
  }
  if (auto dir = args.value("--plugin-dir")) {
    if (dir->empty()) return bad("--plugin-dir: the path is empty");
    o.plugin_dir = *dir;
  }
  if (auto user = args.value("--auth-user")) {
    if (!printable(*user)) return bad(fmt::format("--auth-user: '{}' is not a user name", *user));
    o.auth_user = *user;
  }

  // DNS: nothing leaves the process unless asked for.
  o.dns_text = args.value("--dns-servers").value_or("none");
  o.dns.use_system_resolver = false;
  o.dns.recursive = false;
  if (o.dns_text == "system") {
    o.dns.use_system_resolver = true;
  } else if (o.dns_text == "recursive") {
    o.dns.recursive = true;
  } else if (o.dns_text != "none") {
    auto forwarders = dns::parse_forwarders(o.dns_text);
    if (!forwarders) return bad("--dns-servers: " + forwarders.error());
    o.dns.forwarders = std::move(*forwarders);
  }
  if (auto text = args.value("--dns-timeout-ms")) {
    auto ms = int_arg(ctx, "--dns-timeout-ms", *text, exit);
    if (!ms) return std::nullopt;
    if (*ms < 1 || *ms > 300000) return bad("--dns-timeout-ms: must be from 1 to 300000");
    o.dns.timeout = std::chrono::milliseconds(*ms);
  }

  o.file = args.arg(0);
  return o;
}

// The message file ('-' = stdin), with bare LF line ends made CRLF (the spool's canonical
// form) and a missing final line end added. On failure prints a usage error naming FILE.
std::optional<std::string> read_message(Context& ctx, const std::string& path, int* exit) {
  auto bad = [&](int err) {
    *exit = usage_error(ctx, fmt::format("FILE: cannot read '{}': {}", path, std::strerror(err)));
    return std::nullopt;
  };
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bad(errno);
  struct Closer {
    int fd;
    ~Closer() {
      if (fd != STDIN_FILENO) ::close(fd);
    }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) return bad(EISDIR);
  std::string raw;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return bad(errno);
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  std::string message;
  message.reserve(raw.size() + raw.size() / 16 + 2);
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')) message.push_back('\r');
    message.push_back(raw[i]);
  }
  if (!message.empty() && !message.ends_with("\r\n")) message += "\r\n";
  return message;
}

// --- output ---

std::string angle(std::string_view address) { return fmt::format("<{}>", address); }

std::string where(const Final& f) {
  std::string w = chain::stage_name(f.stage);
  if (!f.recipient.empty()) w += " " + angle(f.recipient);
  return w;
}

const char* verdict_name(mg_action a) {
  return a == MG_CONTINUE ? "accept" : chain::action_name(a);
}

std::string verdict_line(const Final& f) {
  if (f.action == MG_CONTINUE) {
    size_t n = f.recipients.size();
    return fmt::format("verdict: accept (would be relayed to {} recipient{})", n,
                       n == 1 ? "" : "s");
  }
  std::string by = f.plugin.empty() ? std::string() : " by " + f.plugin;
  std::string note = f.note.empty() ? std::string() : " (" + f.note + ")";
  return fmt::format("verdict: {} at {}{}: {}{}", verdict_name(f.action), where(f), by,
                     f.reply.summary(), note);
}

int exit_code_for(const Final& f) {
  switch (f.action) {
    case MG_CONTINUE:
    case MG_ACCEPT:
      return kExitOk;
    case MG_REJECT:
      return kExitReject;
    case MG_TEMPFAIL:
      return kExitTempfail;
    case MG_DISCARD:
      return kExitDiscard;
    case MG_FAILED:
    case MG_RETRY_BLOCKING:  // never a verdict (the chain runs such a call again)
      break;
  }
  return kExitFailure;
}

std::string edit_text(const EnvelopeEdit& e) {
  if (e.op == "sender")
    return fmt::format("sender {} changed to {}", angle(e.address), angle(e.new_address));
  if (e.op == "rcpt_rewrite")
    return fmt::format("recipient {} rewritten to {}", angle(e.address), angle(e.new_address));
  if (e.op == "rcpt_add") return fmt::format("recipient {} added", angle(e.address));
  if (e.op == "rcpt_drop")
    return fmt::format("recipient {} dropped (accepted, not relayed)", angle(e.address));
  return fmt::format("recipient {} removed", angle(e.address));
}

// Rows as aligned columns (the last column unpadded); `right` marks right-aligned columns.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows,
                 const std::vector<bool>& right) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    size_t last = row.size();
    while (last > 0 && row[last - 1].empty()) --last;
    for (size_t i = 0; i < last; ++i) {
      bool r = i < right.size() && right[i];
      line += "  ";
      if (i + 1 == last && !r) {
        line += row[i];
      } else {
        line +=
            r ? fmt::format("{:>{}}", row[i], width[i]) : fmt::format("{:<{}}", row[i], width[i]);
      }
    }
    out << line << "\n";
  }
}

void print_text(std::ostream& out, const CheckOptions& o, const std::vector<std::string>& chain,
                const Report& r) {
  std::vector<std::string> to;
  for (const std::string& t : o.to) to.push_back(angle(t));
  out << fmt::format("envelope: client {} [{}] helo {} from {} to {}{}\n", o.client_name,
                     o.client_ip, o.helo, angle(o.mail.reverse_path.address), fmt::join(to, " "),
                     o.auth_user ? " auth " + *o.auth_user : std::string());
  if (chain.empty()) {
    out << fmt::format("chain: empty (no enabled plugin for profile '{}')\n", o.profile);
  } else {
    out << fmt::format("chain: {} (profile '{}')\n", fmt::join(chain, ", "), o.profile);
  }

  if (r.calls.empty()) {
    out << "calls: none\n";
  } else {
    out << "calls:\n";
    std::vector<std::vector<std::string>> rows;
    for (const Call& c : r.calls) {
      const chain::TraceEntry& t = c.trace;
      std::string stage = chain::stage_name(t.stage);
      if (!c.recipient.empty()) stage += " " + angle(c.recipient);
      std::string detail = t.reply.empty() ? std::string() : t.reply.summary();
      if (!t.note.empty()) detail += (detail.empty() ? "(" : " (") + t.note + ")";
      rows.push_back({stage, t.plugin, chain::action_name(t.action),
                      fmt::format("{:.2f} ms", t.milliseconds), detail});
    }
    print_table(out, rows, {false, false, false, true, false});
  }

  if (r.symbols.empty()) {
    out << "symbols: none\n";
  } else {
    out << "symbols:\n";
    std::vector<std::vector<std::string>> rows = {{"NAME", "SCORE", "PLUGIN", "DETAIL"}};
    for (const chain::Symbol& s : r.symbols)
      rows.push_back({s.name, fmt::format("{:.2f}", s.score), s.plugin, s.detail});
    print_table(out, rows, {false, true, false, false});
  }
  out << fmt::format("score: {:.2f}\n", r.score);

  if (r.header_edits.empty()) {
    out << "header edits: none\n";
  } else {
    out << "header edits:\n";
    for (const HeaderEdit& e : r.header_edits)
      out << fmt::format("  {} {}: {}\n", e.added ? '+' : '-', e.name, unfold(e.value));
  }
  if (r.envelope_edits.empty()) {
    out << "envelope edits: none\n";
  } else {
    out << "envelope edits:\n";
    for (const EnvelopeEdit& e : r.envelope_edits)
      out << fmt::format("  {}: {}\n", chain::stage_name(e.stage), edit_text(e));
  }

  if (!r.recipients.empty()) {
    out << "recipients:\n";
    for (const RecipientResult& rr : r.recipients) {
      if (rr.action == MG_CONTINUE && rr.relayed_as.empty()) {
        out << fmt::format("  {}: accepted and dropped\n", angle(rr.address));
      } else if (rr.action == MG_CONTINUE) {
        out << fmt::format(
            "  {}: accepted{}\n", angle(rr.address),
            rr.relayed_as != rr.address ? " as " + angle(rr.relayed_as) : std::string());
      } else {
        out << fmt::format("  {}: {} by {}: {}\n", angle(rr.address),
                           rr.action == MG_REJECT ? "rejected" : "tempfailed", rr.plugin,
                           rr.reply.summary());
      }
    }
  }
  out << verdict_line(r.verdict) << "\n";
}

nlohmann::ordered_json reply_json(const smtp::Reply& reply) {
  if (reply.empty()) return nullptr;
  return {{"code", reply.code},
          {"enhanced", std::string(reply.enhanced())},
          {"text", std::string(reply.text())}};
}

nlohmann::ordered_json optional_text(const std::string& s) {
  return s.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(s);
}

void print_json(std::ostream& out, const CheckOptions& o, const std::vector<std::string>& chain,
                const Report& r, int exit_code) {
  using Json = nlohmann::ordered_json;
  Json envelope = {{"client_ip", o.client_ip},
                   {"client_name", o.client_name},
                   {"helo", o.helo},
                   {"from", o.mail.reverse_path.address},
                   {"to", o.to},
                   {"profile", o.profile},
                   {"auth_user", o.auth_user ? Json(*o.auth_user) : Json()},
                   {"dns_servers", o.dns_text}};
  Json calls = Json::array();
  for (const Call& c : r.calls) {
    const chain::TraceEntry& t = c.trace;
    calls.push_back({{"stage", chain::stage_name(t.stage)},
                     {"recipient", optional_text(c.recipient)},
                     {"plugin", t.plugin},
                     {"action", chain::action_name(t.action)},
                     {"reply", reply_json(t.reply)},
                     {"note", optional_text(t.note)},
                     {"ms", std::round(t.milliseconds * 1000) / 1000}});
  }
  Json recipients = Json::array();
  for (const RecipientResult& rr : r.recipients) {
    bool ok = rr.action == MG_CONTINUE;
    recipients.push_back({{"address", rr.address},
                          {"status", !ok                    ? chain::action_name(rr.action)
                                     : rr.relayed_as.empty() ? "dropped"
                                                             : "accepted"},
                          {"relayed_as", ok ? Json(rr.relayed_as) : Json()},
                          {"plugin", optional_text(rr.plugin)},
                          {"reply", reply_json(rr.reply)}});
  }
  Json symbols = Json::array();
  for (const chain::Symbol& s : r.symbols)
    symbols.push_back(
        {{"name", s.name}, {"score", s.score}, {"plugin", s.plugin}, {"detail", s.detail}});
  Json headers = Json::array();
  for (const HeaderEdit& e : r.header_edits)
    headers.push_back({{"op", e.added ? "add" : "remove"}, {"name", e.name}, {"value", e.value}});
  Json envelope_edits = Json::array();
  for (const EnvelopeEdit& e : r.envelope_edits)
    envelope_edits.push_back({{"stage", chain::stage_name(e.stage)},
                              {"op", e.op},
                              {"address", e.address},
                              {"new_address", optional_text(e.new_address)}});
  const Final& f = r.verdict;
  bool accepted = f.action == MG_CONTINUE;
  Json verdict = {{"action", verdict_name(f.action)},
                  {"stage", accepted ? Json() : Json(chain::stage_name(f.stage))},
                  {"recipient", optional_text(f.recipient)},
                  {"plugin", optional_text(f.plugin)},
                  {"reply", reply_json(f.reply)},
                  {"note", optional_text(f.note)},
                  {"sender", accepted ? Json(f.sender) : Json()},
                  {"recipients", accepted ? Json(f.recipients) : Json()},
                  {"exit_code", exit_code},
                  {"text", verdict_line(f).substr(9)}};  // without "verdict: "
  Json j = {{"envelope", envelope},
            {"chain", chain},
            {"calls", calls},
            {"recipients", recipients},
            {"symbols", symbols},
            {"score", r.score},
            {"edits", {{"headers", headers}, {"envelope", envelope_edits}}},
            {"verdict", verdict}};
  out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
}

}  // namespace

int run_check(Context& ctx, const Args& args) {
  int exit = kExitOk;
  std::optional<CheckOptions> options = parse_options(ctx, args, &exit);
  if (!options) return exit;
  std::optional<std::string> message = read_message(ctx, options->file, &exit);
  if (!message) return exit;

  policy::SnapshotPtr snapshot;
  {
    auto db = open_policy_db(ctx);
    if (!db) return kExitFailure;
    auto read = policy::read_snapshot(db.get(), ctx.db_path, /*assign_version=*/false);
    if (!read)
      return fail(ctx, fmt::format("{}: {}", ctx.db_path, policy::join_problems(read.error())));
    snapshot = std::move(*read);
  }

  // Declared in the order they must outlive each other: the resolver serves plugins until the
  // pool has joined; the spool is read by BODY calls, late ones included.
  auto resolver = dns::Resolver::create(options->dns);
  if (!resolver) return fail(ctx, "--dns-servers: " + resolver.error());
  chain::HostEnvironment env;
  server::use_resolver(env, resolver->get());
  env.policy = [snapshot](std::string_view table, std::string_view key, std::string* value) {
    return snapshot->lookup(table, key, value);
  };
  chain::set_host_environment(std::move(env));
  // Plugins are gone before the resolver: the environment must not outlive it.
  struct ResetEnvironment {
    ~ResetEnvironment() { chain::set_host_environment({}); }
  } reset_environment;

  // Held in memory (no limit), so the spool directory is never written.
  std::error_code tmp_error;
  std::filesystem::path tmp = std::filesystem::temp_directory_path(tmp_error);
  spool::Spool spool(tmp_error ? std::filesystem::path("/tmp") : tmp,
                     std::numeric_limits<size_t>::max());
  if (!spool.write(*message))
    return fail(ctx, "cannot hold the message: " + spool.error().message());

  int code = kExitOk;
  {
    chain::PluginCache cache;
    auto built = chain::Chain::build(
        server::chain_specs_for(*snapshot, options->profile, options->plugin_dir), cache);
    if (!built) return fail(ctx, fmt::format("profile '{}': {}", options->profile, built.error()));
    std::vector<std::string> names;
    for (const chain::ChainEntry& e : (*built)->entries()) names.push_back(e.name);

    asio::io_context io;
    auto pool = std::make_unique<chain::WorkerPool>(kWorkerThreads, kWorkerQueue);
    DrySession dry(*options, std::move(*built), pool.get(), io.get_executor(), spool);
    std::exception_ptr failure;
    asio::co_spawn(io, dry.run(), [&failure](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        code = fail(ctx, std::string("check failed: ") + e.what());
      } catch (...) {
        code = fail(ctx, "check failed");
      }
    } else {
      code = exit_code_for(dry.report().verdict);
      if (ctx.json) {
        print_json(ctx.out, *options, names, dry.report(), code);
      } else {
        print_text(ctx.out, *options, names, dry.report());
      }
      ctx.out.flush();
    }
    pool.reset();  // waits for calls abandoned after their timeout to return
    io.restart();
    io.poll();  // and lets their late results go
  }
  return code;
}

}  // namespace mailgate::ctl
