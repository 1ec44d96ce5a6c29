// dns/resolver_config.h — how the host's resolver is set up: where it sends queries, how long
// it waits, its caches, DNSSEC, and local zones. A plain struct, filled from flags
// (dns_flags.cc) or directly by tests; Resolver::create() validates it.
// Owns: nothing but its values. Must not touch: libunbound. Thread-safety: plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/expected.h"

namespace mailgate::dns {

// One upstream server, written "IP[@PORT]" ("127.0.0.1@5353", "::1", "2001:db8::53@53").
struct Forwarder {
  std::string address;  // numeric IPv4 or IPv6
  uint16_t port = 53;

  // "IP@PORT", the form libunbound takes.
  std::string to_string() const { return address + "@" + std::to_string(port); }
  bool operator==(const Forwarder&) const = default;
};

// Where queries go. Chosen from the config by upstream_mode() below.
enum class UpstreamMode {
  kForwarders,  // to the configured forwarders, and only to them
  kSystem,      // to the nameservers of resolv_conf (production default)
  kRecursive,   // full recursion from the root servers
  kLocalOnly,   // nowhere: only local zones answer, everything else is REFUSED locally
};

// Bounds of the cache sizes (bytes) when set.
inline constexpr uint64_t kMinCacheSize = 64 * 1024;
inline constexpr uint64_t kMaxCacheSize = uint64_t{64} << 30;

struct ResolverConfig {
  // Forwarders, tried by libunbound in its own order (it prefers the fastest). When set,
  // they are the only upstreams, whatever use_system_resolver says.
  std::vector<Forwarder> forwarders;
  // With no forwarders: forward to the nameservers of resolv_conf. Tests set forwarders or
  // turn this off, so a test never asks the machine's own resolver.
  bool use_system_resolver = true;
  std::string resolv_conf = "/etc/resolv.conf";
  // With no forwarders and use_system_resolver off: recurse from the root when true, else
  // answer from local zones only (nothing leaves the process).
  bool recursive = false;

  // Longest a query may take, end to end; then it ends as kTempfail and libunbound's work on
  // it is cancelled. libunbound's own retries can take far longer (17 s for a silent server).
  std::chrono::milliseconds timeout{5000};
  // libunbound's outbound-msg-retry: how often one upstream is retried after it answered
  // SERVFAIL/REFUSED or timed out, within the timeout above. Unset = libunbound's default (5).
  std::optional<int> retries;

  // Cache sizes in bytes (libunbound msg-cache-size and rrset-cache-size); 0 keeps
  // libunbound's defaults (4 MB each).
  uint64_t msg_cache_size = 0;
  uint64_t rrset_cache_size = 0;

  // DNSSEC validation. Off by default; when on, trust_anchor_file (a DS/DNSKEY file such as
  // Debian's dns-root-data /usr/share/dns/root.key) anchors it and Result::secure is set.
  bool dnssec = false;
  std::string trust_anchor_file = "/usr/share/dns/root.key";

  // Local zones in unbound's syntax (see local_zones.h): a file, and/or the same text inline.
  // They answer before any upstream is asked.
  std::string local_zones_file;
  std::string local_zones_text;

  // Further libunbound options, as in unbound.conf: {"cache-max-ttl", "3600"} (with or
  // without the trailing ':'). Each is checked when the resolver is created.
  std::vector<std::pair<std::string, std::string>> unbound_options;
};

UpstreamMode upstream_mode(const ResolverConfig& config);
std::string_view to_string(UpstreamMode mode);

// Parses one "IP[@PORT]" item. The error names the item.
Expected<Forwarder, std::string> parse_forwarder(std::string_view item);
// Parses a comma-separated list of forwarders ("127.0.0.1@5353,::1"). White space around
// items is ignored; an empty item is an error.
Expected<std::vector<Forwarder>, std::string> parse_forwarders(std::string_view list);

// The nameservers of a resolv.conf text ("nameserver" lines). Addresses with an IPv6 scope
// id (fe80::1%eth0) are skipped: libunbound cannot use them; an error if nothing else is
// left. None listed means 127.0.0.1, as resolv.conf(5) says.
Expected<std::vector<Forwarder>, std::string> parse_resolv_conf(std::string_view text);

// Why the config is unusable (values only: files are read by Resolver::create()), or
// nullopt.
std::optional<std::string> check(const ResolverConfig& config);

}  // namespace mailgate::dns
