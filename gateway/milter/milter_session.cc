// milter/milter_session.cc — see milter_session.h.
#include "milter/milter_session.h"

#include <strings.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <cctype>
#include <utility>

#include "chain/post_target.h"
#include "log/log.h"

namespace mailgate::milter {
namespace {

// "<a@b>" → "a@b"; "<>" → "". Surrounding blanks are dropped.
std::string strip_brackets(std::string_view a) {
  while (!a.empty() && (a.front() == ' ' || a.front() == '\t')) a.remove_prefix(1);
  while (!a.empty() && (a.back() == ' ' || a.back() == '\t')) a.remove_suffix(1);
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
  return std::string(a);
}

// Printable form of MTA-supplied text for logs: no control characters.
std::string sanitize(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  return out;
}

// Folds as the transaction keeps them: CRLF followed by white space.
std::string crlf_folds(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 8);
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\n' && (i == 0 || v[i - 1] != '\r')) out.push_back('\r');
    out.push_back(v[i]);
  }
  return out;
}

bool refused(const chain::Verdict& v) { return v.action == MG_TEMPFAIL || v.action == MG_REJECT; }

const chain::Verdict kContinue{};

}  // namespace

const char* MilterSession::state_name(State s) {
  switch (s) {
    case State::kNew:
      return "new";
    case State::kIdle:
      return "idle";
    case State::kEnvelope:
      return "envelope";
    case State::kMessage:
      return "message";
    case State::kClosed:
      return "closed";
  }
  return "?";
}

MilterSession::MilterSession(smtp::ChainBinding chain, SessionOptions options, std::string id)
    : id_(std::move(id)),
      options_(std::move(options)),
      completions_(std::make_shared<chain::PostTarget>(io_.get_executor())),
      tx_(std::make_shared<chain::TxContext>(chain.chain ? chain.chain->entries().size() : 0)),
      runner_(chain.chain, tx_, chain.pool, io_.get_executor(), completions_),
      spool_(options_.spool_dir, options_.spool_memory_limit) {
  std::lock_guard lock(tx_->mu);
  tx_->set_item(MG_ITEM_SESSION_ID, id_);
  tx_->set_item(MG_ITEM_PROFILE, options_.profile);
  tx_->set_item(MG_ITEM_HOSTNAME, options_.hostname);
  tx_->set_item(MG_ITEM_PROTOCOL, "ESMTP");
  tx_->set_item(MG_ITEM_CLIENT_NAME, client_name_);
  tx_->max_message_size = options_.max_message_size;
}

MilterSession::~MilterSession() {
  close();
  // A plugin call abandoned after its timeout may finish later: it must not post to io_.
  completions_->close();
}

void MilterSession::enter(State s) {
  if (s == state_) return;
  MG_LOG_DEBUG("{}: milter state {} -> {}", id_, state_name(state_), state_name(s));
  state_ = s;
}

bool MilterSession::wants_message() const {
  return wants(MG_STAGE_HEADER) || wants(MG_STAGE_EOH) || wants(MG_STAGE_BODY) ||
         wants(MG_STAGE_EOM);
}

chain::Verdict MilterSession::run(mg_stage stage, chain::StageInput input) {
  if (!runner_.wants(stage)) return kContinue;
  chain::Verdict verdict;
  bool done = false;
  asio::co_spawn(io_, runner_.run(stage, std::move(input)),
                 [&](std::exception_ptr e, chain::Verdict v) {
                   done = true;
                   if (!e) {
                     verdict = std::move(v);
                     return;
                   }
                   // The runner catches what plugins throw; this is the host failing.
                   verdict.action = MG_TEMPFAIL;
                   verdict.reply =
                       smtp::Reply::make(451, "4.3.0", "Temporary filter failure, try again later");
                   verdict.plugin = "(host)";
                 });
  io_.restart();
  io_.run();
  if (!done) {
    MG_LOG_ERROR("{}: BUG: {} stage did not finish", id_, chain::stage_name(stage));
    verdict.action = MG_TEMPFAIL;
    verdict.reply = smtp::Reply::make(451, "4.3.0", "Temporary filter failure, try again later");
  }
  return verdict;
}

void MilterSession::update_macros(const MacroLookup& get) {
  MacroFacts facts;
  {
    std::lock_guard lock(tx_->mu);
    facts = apply_macros(get, *tx_);
    if (tx_->items[MG_ITEM_CLIENT_NAME]) client_name_ = *tx_->items[MG_ITEM_CLIENT_NAME];
    if (tx_->items[MG_ITEM_CLIENT_ADDR]) client_addr_ = *tx_->items[MG_ITEM_CLIENT_ADDR];
  }
  if (!facts.queue_id.empty()) queue_id_ = facts.queue_id;
  if (!facts.daemon_name.empty()) daemon_name_ = facts.daemon_name;
}

void MilterSession::log_refusal(const char* what, const chain::Verdict& v,
                                const std::string& extra) const {
  MG_LOG_INFO("{}: reject: {} from {}[{}]: {}; plugin={}{}{}", id_, what, client_name_,
              client_addr_, sanitize(v.reply.summary()), v.plugin, extra.empty() ? "" : " ", extra);
}

chain::Verdict MilterSession::connect(const std::string& client_name,
                                      const std::string& client_addr, int client_port,
                                      const MacroLookup& get) {
  {
    std::lock_guard lock(tx_->mu);
    if (!client_name.empty() && client_name.front() != '[') {
      client_name_ = client_name;
      tx_->set_item(MG_ITEM_CLIENT_NAME, client_name_);
    }
    if (!client_addr.empty()) {
      client_addr_ = client_addr;
      tx_->set_item(MG_ITEM_CLIENT_ADDR, client_addr_);
    }
    if (client_port > 0) {
      client_port_ = client_port;
      tx_->set_item(MG_ITEM_CLIENT_PORT, std::to_string(client_port));
    }
  }
  update_macros(get);
  enter(State::kIdle);
  std::string local;
  {
    std::lock_guard lock(tx_->mu);
    if (tx_->items[MG_ITEM_LOCAL_ADDR]) local = *tx_->items[MG_ITEM_LOCAL_ADDR];
  }
  MG_LOG_INFO("{}: milter connect from {}[{}]:{} to {} (MTA service {}, profile {})", id_,
              client_name_, client_addr_, client_port_, local.empty() ? "?" : local,
              daemon_name_.empty() ? "?" : daemon_name_, options_.profile);
  chain::Verdict v = run(MG_STAGE_CONNECT);
  if (refused(v)) log_refusal("CONNECT", v, "");
  return v;
}

chain::Verdict MilterSession::helo(const std::string& name) {
  if (state_ == State::kEnvelope || state_ == State::kMessage) end_transaction();
  helo_ = sanitize(name);
  {
    std::lock_guard lock(tx_->mu);
    tx_->set_item(MG_ITEM_HELO, helo_);
  }
  enter(State::kIdle);
  chain::Verdict v = run(MG_STAGE_HELO, chain::StageInput{helo_, {}});
  if (refused(v)) log_refusal("HELO", v, "helo=<" + helo_ + ">");
  return v;
}

chain::Verdict MilterSession::mail(const std::vector<std::string>& argv) {
  if (state_ == State::kEnvelope || state_ == State::kMessage) end_transaction();
  std::string sender = argv.empty() ? std::string() : strip_brackets(argv[0]);
  ++transactions_;
  tx_start_ = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(tx_->mu);
    chain::TxContext& t = *tx_;
    t.reset_transaction();
    t.set_item(MG_ITEM_SENDER, sender);
    t.set_item(MG_ITEM_TX_ID,
               queue_id_.empty() ? id_ + "." + std::to_string(transactions_) : queue_id_);
    // The parameters proxy mode passes on, in the same form (keyword upper-case).
    for (size_t i = 1; i < argv.size(); ++i) {
      std::string_view p = argv[i];
      size_t eq = p.find('=');
      std::string key(p.substr(0, eq));
      for (char& c : key) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      std::string value =
          eq == std::string_view::npos ? std::string() : std::string(p.substr(eq + 1));
      if (key == "BODY")
        for (char& c : value) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (key == "SIZE" || key == "BODY" || key == "SMTPUTF8")
        t.mail_params.emplace_back(std::move(key), std::move(value));
    }
  }
  sender_ = sender;
  new_sender_.reset();
  rcpt_raw_.clear();
  pending_adds_.clear();
  pending_dels_.clear();
  discard_ = false;
  rcpt_dropped_ = false;
  discard_plugin_.clear();
  headers_.clear();
  header_done_ = false;
  body_offset_ = 0;
  spool_.clear();
  enter(State::kEnvelope);
  chain::Verdict v = run(MG_STAGE_MAIL, chain::StageInput{sender, {}});
  if (refused(v)) {
    log_refusal("MAIL", v, "from=<" + sanitize(sender) + ">");
    end_transaction();
    return v;
  }
  if (v.action == MG_DISCARD) {
    discard_ = true;
    discard_plugin_ = v.plugin;
  }
  std::lock_guard lock(tx_->mu);
  if (tx_->new_sender) {
    sender_ = *tx_->new_sender;
    new_sender_ = sender_;
    tx_->set_item(MG_ITEM_SENDER, sender_);
    tx_->new_sender.reset();
  }
  return v;
}

chain::Verdict MilterSession::rcpt(const std::vector<std::string>& argv) {
  if (state_ != State::kEnvelope) {
    MG_LOG_ERROR("{}: BUG: RCPT in milter state {}", id_, state_name(state_));
    return kContinue;
  }
  std::string raw = argv.empty() ? std::string() : argv[0];
  std::string address = strip_brackets(raw);
  {
    std::lock_guard lock(tx_->mu);
    tx_->set_item(MG_ITEM_CURRENT_RCPT, address);
    tx_->rewritten_rcpt.reset();
    tx_->added_rcpts.clear();
  }
  chain::Verdict v = run(MG_STAGE_RCPT, chain::StageInput{address, {}});
  if (refused(v)) {
    log_refusal("RCPT", v, "from=<" + sanitize(sender_) + "> to=<" + sanitize(address) + ">");
    return v;
  }
  if (v.action == MG_DISCARD) {
    discard_ = true;
    discard_plugin_ = v.plugin;
  }
  std::lock_guard lock(tx_->mu);
  if (std::exchange(tx_->drop_current_rcpt, false)) {
    // Dropped (proxy mode never forwards it): the MTA has it already, so it is deleted at
    // EOM.
    MG_LOG_INFO("{}: recipient <{}> dropped by a plugin", id_, sanitize(address));
    tx_->removed_rcpts.push_back(tx_->rewritten_rcpt ? *tx_->rewritten_rcpt : address);
    rcpt_dropped_ = true;
  }
  if (tx_->rewritten_rcpt) {
    MG_LOG_INFO("{}: recipient <{}> rewritten to <{}> by a plugin", id_, sanitize(address),
                sanitize(*tx_->rewritten_rcpt));
    pending_dels_.push_back(raw);
    address = *tx_->rewritten_rcpt;
    pending_adds_.push_back(address);
    tx_->rewritten_rcpt.reset();
  } else {
    rcpt_raw_.emplace_back(address, raw);
  }
  auto& accepted = tx_->recipients;
  if (std::find(accepted.begin(), accepted.end(), address) == accepted.end())
    accepted.push_back(address);
  for (std::string& a : tx_->added_rcpts) {
    if (std::find(accepted.begin(), accepted.end(), a) != accepted.end()) continue;
    accepted.push_back(a);
    pending_adds_.push_back(std::move(a));
  }
  tx_->added_rcpts.clear();
  return v;
}

chain::Verdict MilterSession::data() {
  chain::Verdict v = run(MG_STAGE_DATA);
  if (refused(v)) log_refusal("DATA", v, "from=<" + sanitize(sender_) + ">");
  if (v.action == MG_DISCARD) {
    discard_ = true;
    discard_plugin_ = v.plugin;
  }
  return v;
}

void MilterSession::header(const std::string& name, const std::string& value) {
  enter(State::kMessage);
  if (header_done_) return;  // a header after the end of the header: not ours to judge
  // The raw field as it stands in the message; the value without its one leading space.
  std::string after_colon = crlf_folds(value);
  if (!leading_space_) after_colon.insert(0, " ");
  chain::HeaderField f;
  f.name = name;
  f.value = after_colon;
  if (!f.value.empty() && f.value.front() == ' ') f.value.erase(0, 1);
  f.raw = name + ":" + after_colon + "\r\n";
  spool_.write(f.raw);
  headers_.push_back(std::move(f));
}

void MilterSession::finish_header() {
  if (header_done_) return;
  header_done_ = true;
  spool_.write("\r\n");
  body_offset_ = spool_.size();
}

void MilterSession::end_of_header() {
  enter(State::kMessage);
  finish_header();
}

void MilterSession::body(std::string_view chunk) {
  enter(State::kMessage);
  finish_header();
  spool_.write(chunk);
}

EomOutcome MilterSession::end_of_message() {
  EomOutcome out;
  finish_header();
  if (spool_.error()) {
    MG_LOG_ERROR("{}: spool write failed: {}", id_, spool_.error().message());
    out.verdict.action = MG_TEMPFAIL;
    out.verdict.reply = smtp::Reply::make(452, "4.3.1", "Insufficient system storage");
    log_transaction("tempfail", out.verdict.reply.summary(), "");
    end_transaction();
    return out;
  }
  chain::Verdict v;
  if (wants_message()) {
    chain::StageInput headers;
    {
      std::lock_guard lock(tx_->mu);
      tx_->headers = headers_;
      tx_->headers_edited = false;
      tx_->body_offset = body_offset_;
      tx_->spool = &spool_;
      if (wants(MG_STAGE_HEADER)) headers.headers = headers_;
    }
    if (wants(MG_STAGE_HEADER)) v = run(MG_STAGE_HEADER, std::move(headers));
    for (mg_stage stage : {MG_STAGE_EOH, MG_STAGE_BODY, MG_STAGE_EOM}) {
      if (v.action != MG_CONTINUE) break;
      v = run(stage);
    }
  }
  if (refused(v)) {
    out.verdict = v;
    log_transaction(v.action == MG_TEMPFAIL ? "tempfail" : "rejected", v.reply.summary(),
                    "plugin=" + v.plugin);
    end_transaction();
    return out;
  }
  if (v.action == MG_DISCARD) {
    discard_ = true;
    discard_plugin_ = v.plugin;
  }
  if (discard_) {
    // The one deliberate drop: the MTA tells the client it took the message.
    out.verdict.action = MG_DISCARD;
    out.verdict.plugin = discard_plugin_;
    log_transaction("discarded", "", "plugin=" + discard_plugin_);
    end_transaction();
    return out;
  }
  std::vector<std::string> removed, final_rcpts;
  {
    std::lock_guard lock(tx_->mu);
    if (tx_->headers_edited) out.header_ops = diff_headers(headers_, tx_->headers);
    if (tx_->new_sender) new_sender_ = *tx_->new_sender;
    out.new_body = std::move(tx_->new_body);
    out.quarantine = std::move(tx_->quarantine_reason);
    for (std::string& a : tx_->added_rcpts) pending_adds_.push_back(std::move(a));
    removed = tx_->removed_rcpts;
    final_rcpts = tx_->recipients;
  }
  out.new_sender = new_sender_;
  // Recipients: the plugins' view minus removals plus additions, as proxy mode computes it.
  for (const std::string& a : pending_adds_)
    if (std::find(final_rcpts.begin(), final_rcpts.end(), a) == final_rcpts.end())
      final_rcpts.push_back(a);
  std::erase_if(final_rcpts, [&](const std::string& r) {
    return std::find(removed.begin(), removed.end(), r) != removed.end();
  });
  if (final_rcpts.empty() && rcpt_dropped_) {
    // Every recipient was dropped by a plugin: accepted and discarded, as in proxy mode.
    out.verdict.action = MG_DISCARD;
    out.verdict.plugin = "rcpt-drop";
    log_transaction("discarded", "", "plugin=rcpt-drop");
    end_transaction();
    return out;
  }
  if (final_rcpts.empty()) {
    out.verdict.action = MG_REJECT;
    out.verdict.reply = smtp::Reply::make(550, "5.7.1", "No recipients left after filtering");
    out.verdict.plugin = "(envelope edits)";
    log_transaction("rejected", out.verdict.reply.summary(), "envelope-edit");
    end_transaction();
    return out;
  }
  out.del_rcpts = pending_dels_;
  for (const std::string& r : removed) {
    auto added = std::find(pending_adds_.begin(), pending_adds_.end(), r);
    if (added != pending_adds_.end()) {
      pending_adds_.erase(added);  // added by a plugin and removed again: never tell the MTA
      continue;
    }
    auto it = std::find_if(rcpt_raw_.begin(), rcpt_raw_.end(),
                           [&](const auto& p) { return p.first == r; });
    out.del_rcpts.push_back(it != rcpt_raw_.end() ? it->second : "<" + r + ">");
  }
  out.add_rcpts = pending_adds_;
  std::string edits;
  if (!out.header_ops.empty()) edits += " header_edits=" + std::to_string(out.header_ops.size());
  if (out.new_sender) edits += " new_from=<" + sanitize(*out.new_sender) + ">";
  if (!out.add_rcpts.empty()) edits += " rcpt_added=" + std::to_string(out.add_rcpts.size());
  if (!out.del_rcpts.empty()) edits += " rcpt_deleted=" + std::to_string(out.del_rcpts.size());
  if (out.new_body) edits += " body=replaced(" + std::to_string(out.new_body->size()) + ")";
  if (out.quarantine) edits += " quarantined=\"" + sanitize(*out.quarantine) + '"';
  log_transaction("accepted", "", edits.empty() ? std::string() : edits.substr(1));
  end_transaction();
  return out;
}

void MilterSession::log_transaction(const char* status, const std::string& reply,
                                    const std::string& extra) const {
  std::string to;
  size_t n = 0;
  double score = 0;
  {
    std::lock_guard lock(tx_->mu);
    for (const std::string& r : tx_->recipients) {
      if (!to.empty()) to += ',';
      to += '<' + sanitize(r) + '>';
      ++n;
    }
    score = tx_->score();
  }
  double delay =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - tx_start_).count();
  MG_LOG_INFO(
      "{}.{}: milter client={}[{}]:{} helo=<{}> from=<{}> to={} nrcpt={} size={} queue_id={} "
      "status={} reply=\"{}\" score={:.2f} delay={:.3f}{}{}",
      id_, transactions_, client_name_, client_addr_, client_port_, helo_, sanitize(sender_), to, n,
      spool_.size(), queue_id_, status, sanitize(reply), score, delay, extra.empty() ? "" : " ",
      extra);
}

void MilterSession::end_transaction() {
  if (state_ != State::kEnvelope && state_ != State::kMessage) return;
  run(MG_STAGE_RESET);
  {
    std::lock_guard lock(tx_->mu);
    tx_->reset_transaction();
  }
  spool_.clear();
  headers_.clear();
  header_done_ = false;
  enter(State::kIdle);
}

void MilterSession::abort() { end_transaction(); }

void MilterSession::close() {
  if (closed_) return;
  closed_ = true;
  end_transaction();
  if (state_ != State::kNew) run(MG_STAGE_CLOSE);
  enter(State::kClosed);
}

}  // namespace mailgate::milter
