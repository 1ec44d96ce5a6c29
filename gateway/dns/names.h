// dns/names.h — query names: the reverse-lookup name of an address (in-addr.arpa, ip6.arpa)
// and the check a name passes before it is sent to the resolver.
// Owns: no state. Must not touch: libunbound. Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/expected.h"

namespace mailgate::dns {

// The PTR query name of a numeric IPv4 or IPv6 address:
//   "192.0.2.1"   -> "1.2.0.192.in-addr.arpa"
//   "2001:db8::1" -> "1.0.0.0. ... .8.b.d.0.1.0.0.2.ip6.arpa" (32 nibbles, RFC 3596 §2.5)
// An IPv4-mapped IPv6 address ("::ffff:192.0.2.1") gives the in-addr.arpa name, since that
// is where its reverse data lives. Anything else (names, CIDR, zone ids) is an error.
Expected<std::string, std::string> ptr_name(std::string_view address);

// Why `name` cannot be queried, or nullopt when it can: non-empty, at most 253 characters
// without the trailing dot, no empty label, labels of at most 63 octets, no white space or
// control characters. A trailing dot is allowed. "\DDD" escapes are not accepted: the names
// mail needs (host names, SPF/DKIM/DMARC names, reverse names) never need them.
std::optional<std::string> check_query_name(std::string_view name);

}  // namespace mailgate::dns
