// obs/session_trace.h — turns what a session knows at the end of a transaction (or at a
// refusal) into a TraceRecord for the writer, and counts the outcome.
// Owns: the mapping from session facts to trace fields (message-id from the parsed header or,
// when no plugin parsed it, from the spooled header block; queue id from the backend's 250;
// the deciding plugin; symbols and plugin calls).
// Threading: called on the session's I/O thread; the copy is made there, the write elsewhere.
// Must not touch: the session's state (reads only; clears the plugin-call list it is given).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chain/chain.h"
#include "chain/tx_context.h"
#include "relay/backend.h"
#include "smtp/reply.h"
#include "spool/spool.h"

namespace mailgate::obs {

// What the session knows when it logs a transaction or a refusal.
struct TransactionFacts {
  std::string_view session;  // session id
  size_t number;             // transaction number in the session (0 before the first MAIL)
  std::string_view profile;
  const relay::ClientInfo& client;
  std::string_view sender;
  const std::vector<std::string>& recipients;
  std::string_view status;  // accepted, rejected, tempfail, discarded, aborted
  const smtp::Reply& reply;
  uint64_t size;
  double delay_seconds;
  std::string_view extra;  // the log line's extra ("plugin=NAME", "envelope-edit", ...)
};

// End of a transaction that reached DATA: counts it and, when the trace is on, queues its
// record. `spool` (may be null) is read for the Message-ID only when no plugin parsed the
// header. `plugin_calls` is emptied.
void trace_transaction(const TransactionFacts& facts, chain::TxContext& tx,
                       const spool::Spool* spool, std::vector<chain::TraceEntry>& plugin_calls);

// A command refused on a plugin's verdict (the session's log_refusal), or a recipient the
// backend refused (`plugin` empty): counts a plugin refusal, lists it for the status page
// and, when the trace is on, queues a record with stage = `what`.
void trace_refusal(std::string_view what, const TransactionFacts& facts, std::string_view plugin,
                   chain::TxContext& tx, std::vector<chain::TraceEntry>& plugin_calls);

}  // namespace mailgate::obs
