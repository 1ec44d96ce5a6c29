// milter/callbacks.h — the libmilter callback table (xxfi_*) of milter mode.
// Each callback finds its connection's MilterSession (smfi_getpriv), copies the macros the
// MTA sent into it, runs the step, and answers with reply_map's SMFIS_* value and reply.
// At the end of a message it applies the plugins' edits with smfi_chgheader, smfi_insheader,
// smfi_addheader, smfi_chgfrom, smfi_addrcpt and smfi_delrcpt. xxfi_negotiate asks for
// only the protocol steps the connection's chain needs (no header/body without a message
// plugin, no DATA without a DATA plugin, no unknown commands, no replies to header and
// body chunks) and for the macros of milter/macros.h.
// Owns: the translation between libmilter and MilterSession. Must not touch: the chain's
// semantics (MilterSession) or process setup (milter_main.cc).
// Threading: libmilter calls these on its connection threads, one connection's at a time.
#pragma once

#include <libmilter/mfapi.h>

#include "milter/milter_session.h"

namespace mailgate::server {
class PluginHost;
}

namespace mailgate::milter {

// Where connections get their chain and settings. Set once, before smfi_main().
void set_callback_context(server::PluginHost* host, SessionOptions options);

// The filter description for smfi_register(), named `name`.
smfiDesc make_filter_description(char* name);

}  // namespace mailgate::milter
