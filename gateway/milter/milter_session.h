// milter/milter_session.h — one MTA connection in milter mode: the plugin chain driven by the
// milter protocol steps instead of SMTP commands.
// Each step runs the same chain stage, with the same transaction view (chain::TxContext), as
// proxy mode does for the matching SMTP command (smtp/session.cc): CONNECT, HELO, MAIL, RCPT,
// DATA when the MTA reports them; HEADER, EOH, BODY and EOM together at the end of the
// message, over the header and body the MTA sent (kept in a spool, so body_read and the
// BODY stage work as in proxy mode). What the plugins decided comes back as a chain verdict;
// at the end of the message also as the edits the MTA must make (header operations, new
// sender, recipients to add and delete). A recipient rewritten at RCPT is deleted and its
// new address added at the end of the message (the milter protocol has no rewrite).
// Owns: the connection's TxContext, its ChainRunner and a private io_context that runs the
// runner synchronously, on the libmilter thread that calls in; the spool of the message.
// Must not touch: libmilter (callbacks.cc translates), sockets, the MTA's replies.
// Threading: libmilter calls one connection's callbacks one at a time (possibly on different
// threads); blocking plugins run on the shared worker pool while the calling thread waits
// in io_context::run().
#pragma once

#include <asio/io_context.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chain/chain.h"
#include "milter/header_edits.h"
#include "milter/macros.h"
#include "smtp/session.h"
#include "spool/spool.h"

namespace mailgate::milter {

struct SessionOptions {
  std::string profile = "inbound";  // MG_ITEM_PROFILE
  std::string hostname;             // MG_ITEM_HOSTNAME until the MTA sends j
  std::filesystem::path spool_dir;
  size_t spool_memory_limit = 1 << 20;
  uint64_t max_message_size = 0;  // bounds a plugin's body_replace() (--max_message_size)
};

// What the end of a message asks of the MTA.
struct EomOutcome {
  chain::Verdict verdict;                 // CONTINUE, TEMPFAIL, REJECT or DISCARD
  std::vector<HeaderOp> header_ops;       // in the order to apply them
  std::optional<std::string> new_sender;  // smfi_chgfrom, without <>
  std::vector<std::string> add_rcpts;     // smfi_addrcpt, without <>
  std::vector<std::string> del_rcpts;     // smfi_delrcpt, exactly as the MTA sent them
  std::optional<std::string> new_body;    // smfi_replacebody (CRLF lines, in chunks)
  std::optional<std::string> quarantine;  // smfi_quarantine reason
};

class MilterSession {
 public:
  // Explicit states of the milter conversation.
  enum class State {
    kNew,       // negotiated, connect not seen yet
    kIdle,      // connected; no transaction
    kEnvelope,  // MAIL seen: RCPT, DATA, header and body may follow
    kMessage,   // header or body data arriving
    kClosed,    // close seen: nothing more runs
  };

  MilterSession(smtp::ChainBinding chain, SessionOptions options, std::string id);
  ~MilterSession();
  MilterSession(const MilterSession&) = delete;
  MilterSession& operator=(const MilterSession&) = delete;

  const std::string& id() const { return id_; }
  State state() const { return state_; }
  static const char* state_name(State s);

  // Stages some plugin of this connection's chain has a callback for.
  bool wants(mg_stage stage) const { return runner_.wants(stage); }
  // Whether the header and body are needed (a HEADER, EOH, BODY or EOM plugin).
  bool wants_message() const;
  // The MTA keeps a header value's leading space (SMFIP_HDR_LEADSPC was negotiated).
  void set_header_leading_space(bool on) { leading_space_ = on; }
  bool header_leading_space() const { return leading_space_; }

  // Copies the macros sent so far into the plugins' view (call before each step).
  void update_macros(const MacroLookup& get);

  chain::Verdict connect(const std::string& client_name, const std::string& client_addr,
                         int client_port, const MacroLookup& get);
  chain::Verdict helo(const std::string& name);
  // argv[0] is the address as the MTA sent it ("<a@b>"), then ESMTP parameters.
  chain::Verdict mail(const std::vector<std::string>& argv);
  chain::Verdict rcpt(const std::vector<std::string>& argv);
  chain::Verdict data();
  // `value` as libmilter gives it: folds as LF (or CRLF), a leading space only when
  // set_header_leading_space(true).
  void header(const std::string& name, const std::string& value);
  void end_of_header();
  void body(std::string_view chunk);
  EomOutcome end_of_message();
  // The MTA aborted the transaction (RSET, a refused step, a lost client).
  void abort();
  // The connection ends. Idempotent; the destructor calls it.
  void close();

 private:
  chain::Verdict run(mg_stage stage, chain::StageInput input = {});
  void end_transaction();  // RESET stage, then forget the transaction
  void finish_header();    // the blank line after the header, once
  void enter(State s);
  void log_refusal(const char* what, const chain::Verdict& v, const std::string& extra) const;
  void log_transaction(const char* status, const std::string& reply,
                       const std::string& extra) const;

  std::string id_;
  SessionOptions options_;
  asio::io_context io_;  // first: destroyed last
  std::shared_ptr<chain::PostTarget> completions_;
  std::shared_ptr<chain::TxContext> tx_;
  chain::ChainRunner runner_;
  spool::Spool spool_;
  State state_ = State::kNew;
  bool leading_space_ = false;
  bool closed_ = false;

  // The client, for logs.
  std::string client_name_ = "unknown";
  std::string client_addr_;
  int client_port_ = 0;
  std::string helo_;
  std::string daemon_name_;

  // The transaction.
  size_t transactions_ = 0;
  std::string queue_id_;
  std::string sender_;                     // as the plugins see it
  std::optional<std::string> new_sender_;  // a MAIL-stage set_sender, applied at the end
  std::vector<std::pair<std::string, std::string>> rcpt_raw_;  // address -> MTA's form
  std::vector<std::string> pending_adds_;  // rcpt_rewrite targets and rcpt_add at RCPT
  std::vector<std::string> pending_dels_;  // MTA forms of rewritten recipients
  bool discard_ = false;
  std::string discard_plugin_;
  bool rcpt_dropped_ = false;  // a plugin dropped a recipient (rcpt_remove of it in RCPT)
  std::vector<chain::HeaderField> headers_;  // as the MTA sent them
  bool header_done_ = false;
  uint64_t body_offset_ = 0;
  std::chrono::steady_clock::time_point tx_start_;
};

}  // namespace mailgate::milter
