// dns/dns_flags.cc — the --dns_* flags. See dns_flags.h.
#include "dns/dns_flags.h"

#include <gflags/gflags.h>

#include <chrono>

DEFINE_string(dns_servers, "",
              "DNS upstreams: comma-separated IP[@PORT] forwarders (127.0.0.1@5353,::1); empty "
              "= the nameservers of /etc/resolv.conf; 'recursive' = recurse from the root "
              "servers; 'none' = answer from --dns_local_zones only");
DEFINE_uint32(dns_timeout_ms, 5000,
              "Longest a DNS query may take, in milliseconds, before it "
              "ends as a temporary failure");
DEFINE_int32(dns_retries, -1,
             "Retries of an upstream that failed or answered SERVFAIL "
             "(libunbound outbound-msg-retry); -1 = libunbound's default");
DEFINE_string(dns_local_zones, "",
              "File of local zones answered by the resolver itself, in "
              "unbound.conf syntax (local-zone:, local-data:, local-data-ptr:)");
DEFINE_uint64(dns_msg_cache_size, 0,
              "Bytes of the DNS message cache; 0 = libunbound's default "
              "(4 MB)");
DEFINE_uint64(dns_rrset_cache_size, 0,
              "Bytes of the DNS RRset cache; 0 = libunbound's default "
              "(4 MB)");
DEFINE_bool(dns_dnssec, false, "Validate DNSSEC (needs --dns_trust_anchor_file)");
DEFINE_string(dns_trust_anchor_file, "/usr/share/dns/root.key",
              "DNSSEC trust anchor file (DS or DNSKEY records) used with --dns_dnssec");

namespace mailgate::dns {
namespace {

std::string flag_error(const char* flag, const std::string& message) {
  return std::string("--") + flag + ": " + message;
}

}  // namespace

Expected<ResolverConfig, std::string> config_from_flags() {
  ResolverConfig c;
  const std::string& servers = FLAGS_dns_servers;
  if (servers.empty()) {
    c.use_system_resolver = true;
  } else if (servers == "recursive") {
    c.use_system_resolver = false;
    c.recursive = true;
  } else if (servers == "none") {
    c.use_system_resolver = false;
    c.recursive = false;
  } else {
    auto forwarders = parse_forwarders(servers);
    if (!forwarders) return unexpected(flag_error("dns_servers", forwarders.error()));
    c.forwarders = std::move(*forwarders);
    c.use_system_resolver = false;
  }
  if (FLAGS_dns_timeout_ms == 0 || FLAGS_dns_timeout_ms > 300000)
    return unexpected(flag_error("dns_timeout_ms", "must be from 1 to 300000"));
  c.timeout = std::chrono::milliseconds(FLAGS_dns_timeout_ms);
  if (FLAGS_dns_retries < -1 || FLAGS_dns_retries > 100)
    return unexpected(flag_error("dns_retries", "must be from 0 to 100, or -1"));
  if (FLAGS_dns_retries >= 0) c.retries = FLAGS_dns_retries;
  c.local_zones_file = FLAGS_dns_local_zones;
  struct CacheFlag {
    const char* name;
    uint64_t value;
    uint64_t* target;
  };
  for (const CacheFlag& f :
       {CacheFlag{"dns_msg_cache_size", FLAGS_dns_msg_cache_size, &c.msg_cache_size},
        CacheFlag{"dns_rrset_cache_size", FLAGS_dns_rrset_cache_size, &c.rrset_cache_size}}) {
    if (f.value != 0 && (f.value < kMinCacheSize || f.value > kMaxCacheSize))
      return unexpected(flag_error(f.name, "must be 0 (default) or from " +
                                               std::to_string(kMinCacheSize) + " to " +
                                               std::to_string(kMaxCacheSize) + " bytes"));
    *f.target = f.value;
  }
  c.dnssec = FLAGS_dns_dnssec;
  c.trust_anchor_file = FLAGS_dns_trust_anchor_file;
  if (c.dnssec && c.trust_anchor_file.empty())
    return unexpected(flag_error("dns_trust_anchor_file", "must be set with --dns_dnssec"));
  if (auto why = check(c)) return unexpected("--dns_*: " + *why);  // all checked above
  return c;
}

}  // namespace mailgate::dns
