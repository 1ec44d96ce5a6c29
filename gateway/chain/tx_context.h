// chain/tx_context.h — what plugins see of a session and its transaction, behind the opaque
// mg_session handle of the SDK.
// Owns: the session items (client, HELO, TLS, auth), the transaction (sender, parameters,
// recipients, headers, symbols, body access), edits plugins asked for (header edits apply
// to `headers` directly; envelope edits are recorded for the session to apply) and the
// plugins' data slots.
// Threading: the session's thread writes it between stages; plugin calls read and edit it
// from the I/O thread or a worker. A plugin call abandoned after its timeout may still be
// running while the session goes on, so every access goes through `mu`.
// Must not touch: sockets, the backend, replies to the client.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mailgate/plugin.h"

namespace mailgate::spool {
class Spool;
}

namespace mailgate::chain {

struct Symbol {
  std::string name;
  double score = 0;
  std::string detail;
  std::string plugin;  // who added it
};

// One header field. `value` follows the milter convention: the text after the colon with one
// leading space removed, folding (CRLF + WSP) kept, no final CRLF. `raw` is the field exactly
// as received (with its CRLF) and is what gets relayed; it is empty for fields added or
// changed by a plugin, which are written as "name: value" CRLF.
struct HeaderField {
  std::string name;
  std::string value;
  std::string raw;
};

// One authentication result (RFC 8601 resinfo) recorded by a plugin; empty reason or
// properties mean none.
struct AuthResult {
  std::string method;
  std::string result;
  std::string reason;
  std::string properties;
};

// A plugin's data slot: one pointer and its destructor.
struct Slot {
  void* data = nullptr;
  void (*free_fn)(void*) = nullptr;
  void reset();
};

class TxContext {
 public:
  explicit TxContext(size_t plugin_count);
  ~TxContext();
  TxContext(const TxContext&) = delete;
  TxContext& operator=(const TxContext&) = delete;

  std::mutex mu;

  // --- session (set by the session; guarded by mu) ---
  std::array<std::optional<std::string>, MG_ITEM_COUNT> items;
  void set_item(mg_item item, std::string value);
  void clear_item(mg_item item);

  // --- transaction ---
  std::vector<std::pair<std::string, std::string>> mail_params;  // keyword upper-case, value
  std::vector<std::string> recipients;  // accepted so far; written by the session thread only
  std::vector<HeaderField> headers;                               // the message's, edited
  bool headers_edited = false;
  std::vector<Symbol> symbols;
  // Authentication results: those recorded before MAIL last for the session, later ones for
  // the transaction. Listed session ones first.
  std::vector<AuthResult> session_auth_results;
  std::vector<AuthResult> auth_results;
  const spool::Spool* spool = nullptr;  // from EOM on
  uint64_t body_offset = 0;             // where the body starts in the spool
  mg_stage stage = MG_STAGE_CONNECT;

  // Envelope edits requested by plugins.
  std::optional<std::string> new_sender;            // set_sender
  std::optional<std::string> rewritten_rcpt;        // rcpt_rewrite in the RCPT stage
  std::vector<std::string> added_rcpts;             // rcpt_add
  std::vector<std::string> removed_rcpts;           // rcpt_remove
  bool drop_current_rcpt = false;  // rcpt_remove of the recipient being checked, in RCPT

  // Message edits of the EOM stage (ABI 1.3): the body relayed instead of the received one
  // (CRLF lines, not dot-stuffed; the spool keeps the original) and the quarantine reason.
  std::optional<std::string> new_body;
  std::optional<std::string> quarantine_reason;
  // Bound on new_body (--max_message_size); 0 = none. Set by the session.
  uint64_t max_message_size = 0;

  std::vector<Slot> tx_slots;       // per plugin, freed at reset_transaction()
  std::vector<Slot> session_slots;  // per plugin, freed with the context

  double score() const;  // sum of symbols (caller holds mu)
  // Adds or replaces a symbol (caller holds mu).
  void add_symbol(std::string name, double score, std::string detail, std::string plugin);
  // Forgets the transaction (RSET, end of message): keeps session items and session slots.
  void reset_transaction();
};

}  // namespace mailgate::chain
