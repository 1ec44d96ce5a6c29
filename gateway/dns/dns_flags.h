// dns/dns_flags.h — the resolver's command-line flags (--dns_*) and the ResolverConfig they
// make. The flags are defined in dns_flags.cc; config_from_flags() validates them and names
// the flag at fault in its error ("--dns_servers: forwarder 'x': ...").
// Owns: the --dns_* flags. Must not touch: other modules' flags.
// Thread-safety: read flags at start-up or on reload, from one thread.
#pragma once

#include <string>

#include "dns/resolver_config.h"
#include "util/expected.h"

namespace mailgate::dns {

Expected<ResolverConfig, std::string> config_from_flags();

}  // namespace mailgate::dns
