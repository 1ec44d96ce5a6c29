// obs/sources.cc — see sources.h.
#include "obs/sources.h"

#include <mutex>

namespace mailgate::obs {
namespace {

std::mutex g_mu;
std::function<dns::ResolverMetrics()> g_dns;

}  // namespace

void set_dns_source(std::function<dns::ResolverMetrics()> source) {
  std::lock_guard lock(g_mu);
  g_dns = std::move(source);
}

std::optional<dns::ResolverMetrics> dns_metrics() {
  std::lock_guard lock(g_mu);
  if (!g_dns) return std::nullopt;
  return g_dns();
}

}  // namespace mailgate::obs
