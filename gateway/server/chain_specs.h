// server/chain_specs.h — turns a policy snapshot's plugin rows into the chain's PluginSpecs.
// Owns: that one conversion (enabled rows of a profile, in chain order; relative paths resolved
// against the plugin directory; fail mode and timeout carried over), shared by the daemon
// (server/plugin_host.cc) and `mailgatectl check` (ctl/check_command.cc), so both run the same
// chain from the same rows.
// Must not touch: plugin loading (chain::Chain::build does that) or the database.
// Threading: a pure function of an immutable snapshot; call it from any thread.
#pragma once

#include <string_view>
#include <vector>

#include "chain/chain.h"

namespace mailgate::policy {
class Snapshot;
}

namespace mailgate::server {

// The specs of `profile`'s chain: the enabled plugin rows for `profile` or '*', in order.
// An unknown profile gets an empty chain.
std::vector<chain::PluginSpec> chain_specs_for(const policy::Snapshot& snapshot,
                                               std::string_view profile,
                                               std::string_view plugin_dir);

}  // namespace mailgate::server
