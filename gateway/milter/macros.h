// milter/macros.h — the MTA's macros as the session items plugins read.
// The MTA sends macros with each protocol step. mailgate asks for the ones it needs
// (smfi_setsymlist, when the MTA allows it; else the MTA's own lists apply: see
// docs/deployment.md for Postfix's milter_*_macros) and copies them into the transaction:
//   j → hostname, {client_addr}/{client_port}/{client_name} → client, {if_addr} (or
//   {daemon_addr}) with {daemon_port} → local address, {tls_version}/{cipher} → TLS,
//   {auth_authen} → authenticated user, i → the MTA's queue id (the transaction id);
//   {daemon_name} names the MTA's listener in the log.
// The protocol item is derived as Postfix writes it in Received: ESMTP, plus S with TLS and
// A when authenticated.
// Owns: the macro lists and the mapping. Must not touch: libmilter (the lookup is passed in).
// Threading: pure functions; the caller holds the context's mutex.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "chain/tx_context.h"

namespace mailgate::milter {

// One smfi_setsymlist request: libmilter's SMFIM_* stage number and a space-separated list.
struct MacroRequest {
  int stage;
  const char* macros;
};
const std::vector<MacroRequest>& macro_requests();

// Returns the macro's value, or nullptr when the MTA has not sent it (smfi_getsymval).
using MacroLookup = std::function<const char*(const char* name)>;

// What the macros say that is not a session item.
struct MacroFacts {
  std::string queue_id;     // i
  std::string daemon_name;  // {daemon_name}
};

// Copies every macro the MTA has sent so far into `tx`'s items (items without a macro keep
// their value) and returns the other facts. Caller holds tx.mu.
MacroFacts apply_macros(const MacroLookup& get, chain::TxContext& tx);

}  // namespace mailgate::milter
