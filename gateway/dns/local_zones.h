// dns/local_zones.h — the local-zones file: zones and records the resolver answers itself,
// before and instead of any upstream. Tests use it so they need no DNS server; operators can
// use it to pin or override names. The syntax is unbound.conf's, so the same file can be
// include:d by an unbound server:
//
//   # comment
//   server:                                  (optional, ignored)
//   local-zone: "example.test." static       (types as in unbound.conf(5); "nodefault"
//                                             removes one of libunbound's default zones)
//   local-data: "mx.example.test. 300 IN MX 10 mail.example.test."
//   local-data: 'txt.example.test. TXT "v=spf1 -all" "second string"'
//   local-data-ptr: "192.0.2.1 mail.example.test."       (or "IP TTL NAME")
//
// A value is one quoted string ('…' or "…", ended by the next quote of the same kind) or a
// bare word; '#' outside quotes starts a comment.
// Owns: the parsing only (loading into libunbound is resolver.cc's job, which reports
// libunbound's verdict on each record with the same file:line).
// Must not touch: libunbound. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace mailgate::dns {

struct LocalZoneEntry {
  enum class Kind {
    kZone,  // name + type
    kData,  // data: one RR in zone-file syntax
  };
  Kind kind = Kind::kData;
  std::string where;  // "FILE:LINE" for error messages
  std::string name;   // kZone
  std::string type;   // kZone: static, transparent, refuse, nodefault, ...
  std::string data;   // kData (local-data-ptr is turned into its PTR record)
};

// Parses the text of a local-zones file. `source` names it in errors ("zones.conf:3: ...").
Expected<std::vector<LocalZoneEntry>, std::string> parse_local_zones(std::string_view text,
                                                                     std::string_view source);

// Reads and parses a local-zones file.
Expected<std::vector<LocalZoneEntry>, std::string> load_local_zones_file(const std::string& path);

}  // namespace mailgate::dns
