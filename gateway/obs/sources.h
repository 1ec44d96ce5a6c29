// obs/sources.h — figures the exposition reads from other modules when it is asked, instead of
// having them counted twice: the DNS resolver's own counters.
// Owns: the registration slot (a mutex-guarded function; read only per scrape).
// Must not touch: the resolver itself (whoever owns it registers and clears the source).
#pragma once

#include <functional>
#include <optional>

#include "dns/resolver.h"

namespace mailgate::obs {

// Sets (or, with an empty function, clears) where DNS figures come from. The owner of the
// resolver clears it before the resolver goes away.
void set_dns_source(std::function<dns::ResolverMetrics()> source);
// The resolver's figures now, or nullopt when no resolver is registered.
std::optional<dns::ResolverMetrics> dns_metrics();

}  // namespace mailgate::obs
