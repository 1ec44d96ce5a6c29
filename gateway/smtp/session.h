// smtp/session.h — one client connection: the server side of RFC 5321 as a state machine.
// Owns: the session's state (see State), its transaction (envelope, spool), the command
// table and every reply the gateway makes itself; the transaction log line.
// Must not touch: backend sockets (relay::BackendSession does that), listeners and limits
// (server/), decoding details of DATA (smtp/data_decoder).
// Thread-safety: runs as one coroutine on one io_context thread; shutdown() must be called
// from that thread (the server posts it there).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include "chain/chain.h"
#include "net/auth_throttle.h"
#include "net/tls_context.h"
#include "relay/backend.h"
#include "smtp/client_stream.h"
#include "smtp/command.h"
#include "smtp/data_decoder.h"
#include "smtp/session_config.h"
#include "spool/spool.h"

namespace mailgate::smtp {

// Where the connection came in, and what that listener offers.
struct ListenerInfo {
  ListenerInfo() = default;
  ListenerInfo(std::string a, std::string p) : address(std::move(a)), profile(std::move(p)) {}

  std::string address;  // "127.0.0.1:2525"
  std::string profile;  // "inbound", "submission", ...
  // The TLS context for STARTTLS or implicit TLS; null: the listener offers no TLS.
  std::shared_ptr<const net::TlsContext> tls;
  bool implicit_tls = false;  // TLS from the first byte (smtps, RFC 8314), no STARTTLS
  bool submission = false;    // AUTH offered (under TLS only) and required before MAIL
  net::AuthThrottle* auth_throttle = nullptr;  // failed AUTH per client address; may be null
  // The client's endpoint as the acceptor saw it (saves a getpeername(2)); when unset the
  // session asks its socket.
  std::optional<asio::ip::tcp::endpoint> peer;
};

// The plugin chain a session runs (may be empty: no plugins configured).
struct ChainBinding {
  std::shared_ptr<const chain::Chain> chain;
  chain::WorkerPool* pool = nullptr;
  // How pool calls get back to this session's I/O thread (closed with the io_context).
  std::shared_ptr<chain::PostTarget> completions;
};

class Session {
 public:
  // Explicit session states. Each command handler checks the state; an event in a state
  // that cannot have it is answered 503, never ignored.
  enum class State {
    kGreeting,     // connected, greeting not sent yet
    kConnected,    // greeted, waiting for HELO/EHLO
    kReady,        // HELO/EHLO done, no transaction
    kMail,         // MAIL accepted by the backend, no recipient yet
    kRcpt,         // at least one RCPT accepted
    kData,         // 354 sent, reading the message
    kClosing,      // QUIT, 421 or I/O failure: the session ends
  };

  Session(asio::ip::tcp::socket socket, std::shared_ptr<const SessionConfig> config,
          std::unique_ptr<relay::BackendSession> backend,
          ListenerInfo listener, std::string id, ChainBinding chain = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs the session to its end. Never throws.
  asio::awaitable<void> run();

  // Asks the session to end: a read in progress is cancelled and the client gets
  // 421 4.3.2; a transaction being relayed finishes first.
  void shutdown();

  State state() const { return state_; }
  const std::string& id() const { return id_; }

  static const char* state_name(State s);

 private:
  struct Transaction {
    MailArgs mail;
    size_t rcpt_attempts = 0;
    bool discard = false;                 // a plugin said DISCARD: accept, do not relay
    size_t dropped_rcpts = 0;             // accepted but dropped by a plugin (never relayed)
    std::string discard_plugin;
    size_t number = 0;                    // 1, 2, ... within the session
    std::chrono::steady_clock::time_point start;
  };
  using Handler = asio::awaitable<void> (Session::*)(const Command&);
  struct CommandSpec {
    Verb verb;
    Handler handler;
  };
  static const CommandSpec kCommands[];

  asio::awaitable<void> on_helo(const Command& cmd);
  asio::awaitable<void> on_ehlo(const Command& cmd);
  asio::awaitable<void> on_mail(const Command& cmd);
  asio::awaitable<void> on_rcpt(const Command& cmd);
  asio::awaitable<void> on_data(const Command& cmd);
  asio::awaitable<void> on_rset(const Command& cmd);
  asio::awaitable<void> on_noop(const Command& cmd);
  asio::awaitable<void> on_quit(const Command& cmd);
  asio::awaitable<void> on_vrfy(const Command& cmd);
  asio::awaitable<void> on_help(const Command& cmd);
  // For STARTTLS and AUTH: true in kReady (after HELO, outside a transaction); otherwise
  // replies with the sequence error and returns false.
  bool ready_between_transactions(const char* verb);
  asio::awaitable<void> on_starttls(const Command& cmd);
  asio::awaitable<void> on_auth(const Command& cmd);
  asio::awaitable<void> on_not_implemented(const Command& cmd);
  asio::awaitable<void> on_unknown(const Command& cmd);

  asio::awaitable<void> dispatch(const Command& cmd);
  // Runs one stage through the plugin chain (CONTINUE at once when no plugin wants it).
  asio::awaitable<chain::Verdict> run_stage(mg_stage stage, std::string text = {});
  // Runs HEADER, EOH, BODY and EOM over the spooled message; fills the header edits.
  asio::awaitable<chain::Verdict> run_message_stages();
  // Applies envelope edits plugins made at EOM by redoing the backend transaction.
  asio::awaitable<Reply> apply_envelope_edits();
  // Recipients the backend accepted, kept once, in the plugins' view of the transaction. Only
  // this session's thread writes them (under the context's mutex, for plugins reading
  // concurrently), so reading them here needs no lock.
  const std::vector<std::string>& recipients() const { return tx_context_->recipients; }
  void add_recipient(std::string address);
  // Forwards recipients plugins added (rcpt_add) during RCPT.
  asio::awaitable<void> forward_added_recipients();
  // Ends the transaction for the plugins (RESET stage) and forgets its data.
  asio::awaitable<void> end_transaction_for_plugins();
  void log_refusal(const char* what, const Reply& r, const std::string& plugin,
                   const std::string& extra);
  // Reads the message after 354 and relays it; returns the final reply.
  asio::awaitable<Reply> receive_message();
  // Ends an open transaction at the backend (RSET) and forgets it.
  asio::awaitable<void> abort_transaction();
  bool transaction_open() const { return tx_.start != std::chrono::steady_clock::time_point{}; }
  // Checks the argument, resets any transaction, records the client's name and runs the HELO
  // stage. Returns false when a reply (error or refusal) has been queued instead.
  asio::awaitable<bool> begin_helo(const Command& cmd, bool esmtp);
  // Queues a reply; counts protocol errors and ends the session past max_errors.
  void reply(const Reply& r, bool counts_as_error = false);
  void enter(State s);
  // Runs the TLS handshake (STARTTLS or implicit TLS); on success records the TLS details for
  // plugins and Received. False when it failed (logged; the session then closes).
  asio::awaitable<bool> handshake(const char* how);
  // Reads one line of an AUTH exchange (after a 334) into *out; false when the session must
  // stop the exchange (a reply has been queued, or the connection is gone).
  asio::awaitable<bool> read_auth_line(std::string* out);
  // "ESMTPSA" and friends (RFC 3848, RFC 6531) for Received and MG_ITEM_PROTOCOL.
  std::string protocol_name(bool smtputf8) const;
  void publish_protocol();
  std::string received_header() const;
  // Received header plus, when plugins edited headers, the whole edited header block; sets
  // *skip to the bytes of the spooled message it replaces.
  std::string message_prefix(uint64_t* skip) const;
  void log_transaction(const Reply& final_reply, const char* status,
                       const std::string& extra = {});

  ClientStream stream_;
  std::shared_ptr<const SessionConfig> config_;
  std::unique_ptr<relay::BackendSession> backend_;
  spool::Spool spool_;
  DataDecoder decoder_;
  ListenerInfo listener_;
  std::string id_;
  relay::ClientInfo client_;
  net::TlsInfo tls_;  // set once TLS is up
  size_t auth_attempts_ = 0;
  std::shared_ptr<chain::TxContext> tx_context_;
  chain::ChainRunner runner_;
  std::vector<chain::TraceEntry> plugin_calls_;  // recorded only when the trace is on (obs/)
  State state_ = State::kGreeting;
  Transaction tx_;
  size_t transactions_ = 0;
  size_t errors_ = 0;
  bool shutting_down_ = false;
  bool forced_ = false;  // shutdown() was called before: the next call cancels any read
};

}  // namespace mailgate::smtp
