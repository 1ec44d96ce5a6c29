// chain/call_context.h — one plugin callback in flight: the object behind the mg_session*
// that plugin receives.
// Owns: which plugin is calling (for its data slot, log prefix and reply), the stage, the
// reply the plugin set, and the strings handed to the plugin during the call (kept here so a
// call abandoned after its timeout never reads freed memory).
// Threading: created by the chain on the session's thread, used by one plugin call on one
// thread, read back by the chain after the call; fields marked (mu) are guarded by tx->mu.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>

#include "chain/tx_context.h"
#include "mailgate/plugin.h"

namespace mailgate::chain {

struct CallContext {
  std::shared_ptr<TxContext> tx;
  size_t plugin_index = 0;
  std::string plugin_name;
  bool nonblocking = false;
  // A try on the I/O thread (MG_PLUGIN_TRY_INLINE): DNS answers from the cache only.
  bool cache_only = false;
  mg_stage stage = MG_STAGE_CONNECT;
  // Set when the chain stopped waiting (timeout): edits are ignored from then on.
  std::atomic<bool> abandoned{false};
  // body_replace() was called in this callback: later calls append (mu).
  bool body_replace_started = false;

  // The reply set with set_reply() (mu).
  int reply_code = 0;
  std::string reply_enhanced;
  std::string reply_text;

  // Strings returned to the plugin (mu): stable addresses for the whole call.
  std::deque<std::string> arena;
  const char* keep(std::string s) {
    arena.push_back(std::move(s));
    return arena.back().c_str();
  }

  mg_session* handle() { return reinterpret_cast<mg_session*>(this); }
  static CallContext* from(mg_session* s) { return reinterpret_cast<CallContext*>(s); }
};

}  // namespace mailgate::chain
