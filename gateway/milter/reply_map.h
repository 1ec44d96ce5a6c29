// milter/reply_map.h — a chain verdict as a milter answer: the SMFIS_* status and the reply
// the MTA is to give (smfi_setreply / smfi_setmlreply arguments).
// Owns: that mapping, and making reply text safe for libmilter (a '%' is doubled: the MTA
// reads the text as a format). Must not touch: libmilter calls (callbacks.cc makes them).
// Threading: pure functions.
#pragma once

#include <string>
#include <vector>

#include "mailgate/plugin.h"
#include "smtp/reply.h"

namespace mailgate::milter {

// libmilter's SMFIS_* values, repeated here so this module does not need libmilter's headers.
enum class Status {
  kContinue = 0,  // SMFIS_CONTINUE
  kReject = 1,    // SMFIS_REJECT
  kDiscard = 2,   // SMFIS_DISCARD
  kAccept = 3,    // SMFIS_ACCEPT
  kTempfail = 4,  // SMFIS_TEMPFAIL
};

// What the MTA is told: a status and, for kReject/kTempfail, the reply to use.
struct MilterReply {
  Status status = Status::kContinue;
  std::string code;                // "550"; empty: no smfi_setreply
  std::string enhanced;            // "5.7.1" (may be empty)
  std::vector<std::string> lines;  // text lines after the enhanced code, '%' doubled
};

// CONTINUE → kContinue, ACCEPT → kAccept, DISCARD → kDiscard, TEMPFAIL → kTempfail with a
// 4xx reply, REJECT → kReject with a 5xx reply. A reply whose class disagrees with the
// action (a 5xx with TEMPFAIL) is replaced by the chain's default for that action, as the
// chain itself does. MG_FAILED never reaches here (the chain applies fail modes).
MilterReply map_verdict(mg_action action, const smtp::Reply& reply);

// Doubles every '%' (libmilter passes reply text through the MTA's formatter).
std::string escape_percent(std::string_view text);

// The sfsistat value for `status`.
int to_sfsistat(Status status);

}  // namespace mailgate::milter
