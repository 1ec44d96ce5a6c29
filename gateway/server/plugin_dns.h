// server/plugin_dns.h — the plugins' DNS (mg_host.dns_query) through a dns::Resolver: the
// blocking query and its cache-only twin for tries on the I/O thread, in the host services'
// terms. Shared by the daemon (server/plugin_host.cc) and `mailgatectl check`
// (ctl/check_command.cc), so both give plugins the same answers.
// Owns: the conversion from dns::Result to chain::DnsAnswer; no state of its own.
// Must not touch: the resolver's configuration or lifetime (the caller keeps `resolver` alive
// for as long as the environment is in use).
#pragma once

#include "chain/host_services.h"

namespace mailgate::dns {
class Resolver;
}

namespace mailgate::server {

// Sets env.dns and env.dns_cached to query `resolver`.
void use_resolver(chain::HostEnvironment& env, dns::Resolver* resolver);

}  // namespace mailgate::server
