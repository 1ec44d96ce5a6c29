// server/plugin_dns.cc — see plugin_dns.h.
#include "server/plugin_dns.h"

#include <optional>
#include <string>

#include "dns/resolver.h"

namespace mailgate::server {
namespace {

chain::DnsAnswer to_answer(const dns::Result& r) {
  chain::DnsAnswer a;
  // dns::Status and dns::RRType share their numbering with the SDK's enums (dns/result.h).
  a.status = static_cast<mg_dns_status>(r.status);
  a.secure = r.secure;
  a.records.reserve(r.records.size());
  for (const dns::Record& rec : r.records)
    a.records.push_back(chain::DnsAnswer::Record{rec.text, rec.preference, rec.ttl});
  return a;
}

}  // namespace

void use_resolver(chain::HostEnvironment& env, dns::Resolver* resolver) {
  env.dns = [resolver](const std::string& name, mg_dns_type type) {
    return to_answer(resolver->resolve(name, static_cast<dns::RRType>(type)));
  };
  env.dns_cached = [resolver](const std::string& name,
                              mg_dns_type type) -> std::optional<chain::DnsAnswer> {
    std::optional<dns::Result> r = resolver->cached(name, static_cast<dns::RRType>(type));
    if (!r) return std::nullopt;
    return to_answer(*r);
  };
}

}  // namespace mailgate::server
